"""Product images: validated in the schema, read by every loader, carried on cards and in JSON, and
shown by the UI only from a local file or (opted in, never in local-only mode) a remote URL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pytest
from assistant_catalog import make_dataset
from PIL import Image

from assistant.plan import card
from assistant.reply import RecommendedItem
from assistant.ui.engines import EngineRegistry, dataset_choices
from assistant.ui.render import card_html, image_html
from assistant.ui.web import ShopUI
from llm.local_only import LOCAL_ONLY_ENV
from retrieval.data import load_dataset
from retrieval.data.schema import DataValidationError, Item, is_remote_image
from retrieval.data.tables import ColumnMapping

FIXTURES = Path(__file__).parent / "fixtures" / "data"
URL = "https://images.example.com/p/1.jpg"


# --- schema ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", [URL, "http://img.example/a b".replace(" ", "%20"), "/srv/img/a.png", "img/a.png"]
)
def test_item_accepts_urls_and_paths(value: str) -> None:
    assert Item("a", "A", image=f"  {value} ").image == value


@pytest.mark.parametrize(
    "value", ["javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://x/a.png", "http://", "a\nb.png", ""]
)
def test_item_refuses_other_schemes_and_junk(value: str) -> None:
    with pytest.raises(DataValidationError, match="image must be an http\\(s\\) URL or a local file path"):
        Item("a", "A", image=value)


def test_is_remote_image() -> None:
    assert is_remote_image(URL) and is_remote_image("HTTP://x.example/a.jpg")
    assert not is_remote_image("/srv/a.png") and not is_remote_image(None)
    assert not is_remote_image("C:\\img\\a.png")  # a Windows drive, not a scheme


# --- loaders --------------------------------------------------------------------------------
def test_amazon_2014_im_url() -> None:
    ds = load_dataset(FIXTURES / "amazon2014")
    assert ds.catalog["B0001"].image == "http://example.invalid/1.jpg"
    assert ds.catalog["B0002"].image is None


def _amazon_2023(tmp_path: Path, images: list[object]) -> Path:
    src = FIXTURES / "amazon2023"
    shutil.copy(src / "Office_Products.jsonl", tmp_path / "Office_Products.jsonl")
    lines = (src / "meta_Office_Products.jsonl").read_text().splitlines()
    out = []
    for line, imgs in zip(lines, images, strict=True):
        rec = json.loads(line)
        rec["images"] = imgs
        out.append(json.dumps(rec))
    (tmp_path / "meta_Office_Products.jsonl").write_text("\n".join(out) + "\n")
    return tmp_path


def test_amazon_2023_first_image_large_then_hi_res_then_thumb(tmp_path: Path) -> None:
    folder = _amazon_2023(
        tmp_path,
        [
            [
                {"thumb": "https://m.example/1t.jpg", "large": "https://m.example/1l.jpg", "hi_res": None},
                {"large": "https://m.example/2l.jpg"},
            ],
            [{"thumb": "https://m.example/t.jpg", "large": None, "hi_res": "https://m.example/h.jpg"}],
            [],
        ],
    )
    ds = load_dataset(folder)
    assert ds.catalog["P100"].image == "https://m.example/1l.jpg"
    assert ds.catalog["P200"].image == "https://m.example/h.jpg"
    assert ds.catalog["P300"].image is None


def test_amazon_2023_bad_image_names_the_line(tmp_path: Path) -> None:
    folder = _amazon_2023(tmp_path, [[], [{"large": "javascript:alert(1)"}], []])
    with pytest.raises(DataValidationError, match=r"image must be an http.*line 2: item 'P200'"):
        load_dataset(folder)


def test_table_image_column_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "items.csv").write_text(
        f"item_id,title,image\na,Alpha,img/a.png\nb,Beta,{URL}\nc,Gamma,\nd,Delta,{tmp_path / 'd.jpg'}\n"
    )
    ds = load_dataset(tmp_path / "items.csv")
    assert ds.catalog["a"].image == str(tmp_path / "img" / "a.png")
    assert ds.catalog["b"].image == URL
    assert ds.catalog["c"].image is None
    assert ds.catalog["d"].image == str(tmp_path / "d.jpg")
    assert "image" not in ds.catalog["a"].attributes


def test_table_image_url_column_and_explicit_mapping(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text(
        json.dumps({"item_id": "a", "title": "Alpha", "image_url": URL}) + "\n"
    )
    assert load_dataset(tmp_path / "items.jsonl").catalog["a"].image == URL
    (tmp_path / "shop.csv").write_text(f"item_id,title,photo\na,Alpha,{URL}\n")
    ds = load_dataset(tmp_path / "shop.csv", mapping=ColumnMapping(image="photo"))
    assert ds.catalog["a"].image == URL
    with pytest.raises(DataValidationError, match="missing columns \\['picture'\\]"):
        load_dataset(tmp_path / "shop.csv", mapping=ColumnMapping(image="picture"))


def test_table_bad_image_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title,image\na,Alpha,ok.png\nb,Beta,ftp://x.example/b.png\n")
    with pytest.raises(DataValidationError, match=r"image must be an http.*line 3: item 'b'"):
        load_dataset(tmp_path / "items.csv")


def test_shared_jsonl_image_field(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": 1, "title": "One", "image": URL}) + "\n")
    (tmp_path / "sequences.jsonl").write_text(json.dumps({"user_id": "u", "item_ids": [1]}) + "\n")
    ds = load_dataset(tmp_path)
    assert ds.catalog["1"].image == URL and "image" not in ds.catalog["1"].attributes


# --- cards and JSON -------------------------------------------------------------------------
def test_card_and_json_carry_the_image() -> None:
    item = Item("a", "Alpha Cream", brand="Olay", image=URL)
    rec = card(item, 1.0, ["why"], {})
    assert rec.image == URL
    assert json.loads(json.dumps(rec.to_dict()))["image"] == URL
    assert card(Item("b", "Beta"), 1.0, [], {}).to_dict()["image"] is None


def test_card_html_image_or_placeholder() -> None:
    item = RecommendedItem("a", 'Alpha "Cream"', brand="olay", categories=("Beauty", "Face"), image=URL)
    shown = card_html(item.to_dict(), 1, image_src="gradio_api/file=/srv/a.png")
    assert '<img class="sa-card-img" src="gradio_api/file=/srv/a.png" alt="Alpha &quot;Cream&quot;"' in shown
    assert "sa-card-img-ph" not in shown
    # No URL the UI may load: the brand's initial on a tinted square, and no <img> at all.
    hidden = card_html(item.to_dict(), 1)
    assert "<img" not in hidden and URL not in hidden
    assert '<div class="sa-card-img-ph" role="img" aria-label="no image">O</div>' in hidden
    no_brand = image_html({"title": "thing", "categories": ["Beauty", "face"]}, None)
    assert ">F</div>" in no_brand
    assert ">T</div>" in image_html({"title": "thing"}, None)
    assert 'src="x&quot;onerror=&quot;a"' in image_html({"title": "t"}, 'x"onerror="a')
    # A catalog without a single image (movies) gets no picture block at all.
    bare = card_html(item.to_dict(), 1, catalog_has_images=False)
    assert "sa-card-img" not in bare and "Alpha" in bare


def test_catalog_has_images() -> None:
    assert make_dataset(images={"B000": "http://example.com/a.jpg"}).catalog.has_images
    assert not make_dataset().catalog.has_images
    assert not load_dataset("movielens-100k").catalog.has_images


# --- what the UI lets the browser load ------------------------------------------------------
@pytest.fixture
def ui() -> ShopUI:
    # The UI's own Blocks (no engine: the factory is never needed to render a card's picture).
    registry = EngineRegistry(dataset_choices({"beauty": make_dataset()}), lambda source: None)
    shop = ShopUI(registry)
    assert isinstance(shop.build(), gr.Blocks) and shop.demo.allowed_paths == []
    return shop


def test_ui_serves_exactly_the_local_file(ui: ShopUI, tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (4, 4), (200, 30, 30)).save(png)
    (tmp_path / "notes.svg").write_text("<svg/>")
    src = ui.image_src({"image": str(png)}, {})
    assert src == f"gradio_api/file={png.resolve()}"
    assert ui.demo.allowed_paths == [str(png.resolve())]  # the file, not its folder
    assert ui.image_src({"image": str(png)}, {}) == src and len(ui.demo.allowed_paths) == 1
    assert ui.image_src({"image": str(tmp_path / "missing.png")}, {}) is None
    assert ui.image_src({"image": str(tmp_path / "notes.svg")}, {}) is None  # not a served type
    assert ui.image_src({"image": str(tmp_path)}, {}) is None
    assert ui.image_src({"image": None}, {}) is None


def test_ui_remote_image_only_when_opted_in_and_never_local_only(
    ui: ShopUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOCAL_ONLY_ENV, raising=False)
    assert ui.image_src({"image": URL}, {"remote_images": False}) is None
    assert ui.image_src({"image": URL}, {"remote_images": True}) == URL
    monkeypatch.setenv(LOCAL_ONLY_ENV, "1")
    assert ui.image_src({"image": URL}, {"remote_images": True}) is None
    state = {"remote_images": False, "cards": [], "dataset": "beauty"}
    ui.set_remote_images(True, state)
    assert state["remote_images"] is False  # the switch cannot turn it on in local-only mode
    monkeypatch.delenv(LOCAL_ONLY_ENV)
    ui.set_remote_images(True, state)
    assert state["remote_images"] is True

"""Every supported file format, on tiny hand-written fixtures (tests/fixtures/data)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from retrieval.data import leave_one_out, load_dataset
from retrieval.data.registry import detect_format
from retrieval.data.tables import ColumnMapping

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SHOP_MAPPING = ColumnMapping(
    item_id="sku",
    title="name",
    brand="maker",
    categories="category",
    price="price",
    description="blurb",
    category_separator="|",
    user="customer",
    item="sku",
    timestamp="when",
    rating="stars",
)


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("folder", "fmt"),
    [
        ("shared", "shared-jsonl"),
        ("amazon2014", "amazon-2014"),
        ("amazon2023", "amazon-2023"),
        ("table_csv", "table"),
        ("table_jsonl", "table"),
    ],
)
def test_format_detection(folder: str, fmt: str) -> None:
    assert detect_format(FIXTURES / folder) == fmt


def test_shared_fixture_order_ties_and_placeholder() -> None:
    before = _tree(FIXTURES)
    ds = load_dataset(FIXTURES / "shared")
    assert _tree(FIXTURES) == before  # loaders are pure readers
    assert ds.name == "shared" and len(ds.catalog) == 5 and len(ds.interactions) == 9
    assert ds.interactions.timed
    # All of user 1's events share one timestamp; the file order decides, not the id.
    assert ds.interactions.sequences()["1"] == ["4", "2", "3"]
    split = leave_one_out(ds.interactions)
    assert split.histories("test") == [("1", ["4", "2"], "3"), ("2", ["5", "1", "2"], "4")]
    assert split.train.sequences()["3"] == ["1", "2"]  # fewer than 3 events: train only
    untitled = ds.catalog["3"]
    assert untitled.title == "Untitled item 3 (Brushes)" and untitled.attributes["title_missing"]
    assert ds.catalog["1"].attributes["asin"] == "A1" and ds.catalog["1"].price == 12.5
    assert "placeholder" in ds.description


def test_shared_fixture_gzipped(tmp_path: Path) -> None:
    for name in ("items", "sequences"):
        data = (FIXTURES / "shared" / f"{name}.jsonl").read_bytes()
        (tmp_path / f"{name}.jsonl.gz").write_bytes(gzip.compress(data))
    ds = load_dataset(tmp_path)
    assert ds.interactions.sequences() == load_dataset(FIXTURES / "shared").interactions.sequences()


def test_shared_out_of_order_timestamps_fall_back_to_sequence_order(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shared" / "items.jsonl", tmp_path / "items.jsonl")
    (tmp_path / "sequences.jsonl").write_text(
        '{"user_id": 1, "item_ids": [1, 2, 3], "timestamps": [30, 10, 20]}\n'
        '{"user_id": 2, "item_ids": [4, 5, 1], "timestamps": [1, 2, 3]}\n'
    )
    ds = load_dataset(tmp_path)
    # Timestamps contradicting the reference order are dropped, never used to reorder.
    assert not ds.interactions.timed
    assert ds.interactions.sequences() == {"1": ["1", "2", "3"], "2": ["4", "5", "1"]}
    assert "1 users had incomplete timestamps or timestamps contradicting" in ds.description


def test_amazon_2014_fixture() -> None:
    ds = load_dataset(FIXTURES / "amazon2014")
    assert ds.name == "Toys" and len(ds.catalog) == 4 and len(ds.interactions) == 6
    train = ds.catalog["B0001"]
    assert train.categories == ("Toys & Games", "Vehicles", "Trains")
    assert train.attributes["category_paths"][1] == ["Toys & Games", "Wooden Toys"]
    assert train.price == 24.99 and train.brand == "Brio"
    assert train.reviews[0] == "Great set. Sturdy and the bridge is fun."
    assert train.rating == pytest.approx(3.5)  # mean of its review stars (5, 2)
    assert ds.catalog["B0003"].attributes["title_missing"]
    assert ds.catalog["B0004"].title == "Rubber Duck édition"
    # R1's two events share a second: file order breaks the tie.
    assert ds.interactions.sequences()["R1"] == ["B0001", "B0003", "B0002"]
    assert ds.interactions.sequences()["R3"] == ["B0001"]


def test_amazon_2014_gzipped_meta_file_path(tmp_path: Path) -> None:
    for src in (FIXTURES / "amazon2014").iterdir():
        (tmp_path / f"{src.name}.gz").write_bytes(gzip.compress(src.read_bytes()))
    ds = load_dataset(tmp_path / "meta_Toys.json.gz")
    assert len(ds.catalog) == 4 and len(ds.interactions) == 6


def test_amazon_2023_fixture() -> None:
    ds = load_dataset(FIXTURES / "amazon2023")
    assert ds.name == "Office_Products" and len(ds.catalog) == 3 and len(ds.interactions) == 4
    pens = ds.catalog["P100"]
    assert pens.brand == "InkJoy" and pens.price == 8.99 and pens.rating == 4.5
    assert pens.categories[-1] == "Pens" and "Quick-drying ink" in pens.description
    stapler = ds.catalog["P200"]
    assert stapler.brand == "Swingline"  # from details when store is null
    assert stapler.categories == ("Office Products",)  # main_category fallback
    assert ds.catalog["P300"].price is None  # the string "None" in the dump
    # Millisecond timestamps become unix seconds.
    assert ds.interactions.frame["timestamp"].iloc[0] == pytest.approx(1588687728.923)
    assert ds.interactions.sequences() == {"U_A": ["P100", "P300"], "U_B": ["P200", "P100"]}


def test_csv_table_with_mapping() -> None:
    ds = load_dataset(
        FIXTURES / "table_csv" / "items.csv",
        interactions=FIXTURES / "table_csv" / "interactions.csv",
        mapping=SHOP_MAPPING,
    )
    assert ds.catalog.ids == ["SKU-1", "SKU-2", "SKU-3"]
    runner = ds.catalog["SKU-1"]
    assert runner.title == "Trail Runner 2, men's" and runner.price == 89.0
    assert runner.categories == ("Shoes", "Running", "Trail")
    assert runner.description == "Grippy outsole; waterproof\nmembrane"
    assert runner.attributes == {"colour": "blue"}
    assert ds.catalog["SKU-2"].price == 1299.5 and ds.catalog["SKU-3"].price is None
    assert ds.interactions.timed
    assert ds.interactions.sequences()["c1"] == ["SKU-1", "SKU-3", "SKU-2"]
    assert ds.interactions.frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-05", tz="UTC").timestamp()
    # Folder form finds items.csv + interactions.csv by itself.
    assert load_dataset(FIXTURES / "table_csv", mapping=SHOP_MAPPING).summary()["interactions"] == 4


def test_jsonl_table_default_mapping_and_parquet(tmp_path: Path) -> None:
    ds = load_dataset(FIXTURES / "table_jsonl")
    assert ds.catalog.ids == ["10", "11"] and ds.catalog["10"].categories == ("Home", "Lighting")
    assert len(ds.interactions) == 2 and ds.interactions.frame["rating"].isna().tolist() == [False, True]
    frame = pd.read_json(FIXTURES / "table_jsonl" / "items.jsonl", lines=True)
    frame.to_parquet(tmp_path / "items.parquet")
    from_parquet = load_dataset(tmp_path / "items.parquet")
    assert from_parquet.catalog.ids == ["10", "11"]
    assert [it.title for it in from_parquet.catalog] == ["Desk Lamp", "Floor Lamp"]
    assert from_parquet.catalog["10"].categories == ("Home", "Lighting")
    assert from_parquet.catalog["11"].price is None and len(from_parquet.interactions) == 0


def test_utf8_bom_csv(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_bytes(b"\xef\xbb\xbfitem_id,title,price\nA,Caf\xc3\xa9 mug,4.5\n")
    ds = load_dataset(tmp_path / "items.csv")
    assert ds.catalog["A"].title == "Café mug" and ds.catalog["A"].price == 4.5


def test_explicit_latin1_encoding(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_bytes("item_id,title\nA,Café mug\n".encode("latin-1"))
    assert load_dataset(tmp_path / "items.csv", encoding="latin-1").catalog["A"].title == "Café mug"

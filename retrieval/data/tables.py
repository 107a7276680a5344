"""Generic catalog / interaction tables (CSV, TSV, JSONL, Parquet) mapped by ``ColumnMapping``.

This is how a shop brings its own data: a catalog file (one product a row) and an
optional interactions file (one event a row). Column names are configurable; a
mapping field left at ``None`` uses the standard name if the file has it, while a
name given explicitly must exist (a typo is an error, not a silently empty field).
Errors name the file and the line (CSV/TSV/JSONL) or row (Parquet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from retrieval.data._build import MissingTitle, as_categories, build_catalog, build_interactions
from retrieval.data._io import iter_json_lines, read_text
from retrieval.data.schema import Dataset, DataValidationError, Interactions

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".jsonl", ".jsonl.gz", ".parquet")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds which field. ``None`` = the standard name, if present."""

    # Catalog file.
    item_id: str = "item_id"
    title: str = "title"
    brand: str | None = None
    categories: str | None = None
    price: str | None = None
    description: str | None = None
    item_rating: str | None = None
    # Review texts shown on a card: a list of strings (JSONL/Parquet) or one text (CSV).
    reviews: str | None = None
    # An http(s) URL or a file path (relative to the catalog file's folder); by default the
    # column ``image``, else ``image_url``.
    image: str | None = None
    category_separator: str | None = ">"
    # Interactions file.
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = None
    rating: str | None = None
    timestamp_unit: Literal["s", "ms"] = "s"

    def catalog_columns(self) -> dict[str, tuple[str, bool]]:
        """field -> (column, required)."""
        optional = {
            "brand": self.brand,
            "categories": self.categories,
            "price": self.price,
            "description": self.description,
            "rating": self.item_rating,
            "reviews": self.reviews,
            "image": self.image,
        }
        out = {"item_id": (self.item_id, True), "title": (self.title, True)}
        for fld, col in optional.items():
            out[fld] = (col, True) if col is not None else ("rating" if fld == "rating" else fld, False)
        return out

    def interaction_columns(self) -> dict[str, tuple[str, bool]]:
        return {
            "user_id": (self.user, True),
            "item_id": (self.item, True),
            "timestamp": (self.timestamp, True) if self.timestamp else ("timestamp", False),
            "rating": (self.rating, True) if self.rating else ("rating", False),
        }


def table_kind(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, kind in (
        (".csv", "csv"),
        (".csv.gz", "csv"),
        (".tsv", "tsv"),
        (".tsv.gz", "tsv"),
        (".jsonl", "jsonl"),
        (".jsonl.gz", "jsonl"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return kind
    return None


def find_table(folder: Path, stem: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_rows(
    path: Path, encoding: str | None = None
) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    """The column names and ``(where, row)`` pairs of a table file."""
    kind = table_kind(path)
    if kind in ("csv", "tsv"):
        text = read_text(path, encoding)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
        try:
            header = next(reader)
        except StopIteration:
            raise DataValidationError(f"{path}: empty file (no header row)") from None
        except csv.Error as exc:
            raise DataValidationError(f"{path}: unreadable CSV header ({exc})") from None
        header = [h.strip() for h in header]

        def csv_rows() -> Iterator[tuple[str, dict[str, Any]]]:
            start = reader.line_num + 1
            try:
                for values in reader:
                    where = f"line {start}"
                    start = reader.line_num + 1
                    if not any(v.strip() for v in values):
                        continue
                    if len(values) != len(header):
                        raise DataValidationError(
                            f"{path}: wrong number of fields",
                            [f"{where}: {len(values)} fields, header has {len(header)}"],
                        )
                    yield where, dict(zip(header, values, strict=True))
            except csv.Error as exc:
                raise DataValidationError(
                    f"{path}: malformed CSV", [f"line {reader.line_num}: {exc}"]
                ) from None

        return header, csv_rows()
    if kind == "jsonl":
        records = list(iter_json_lines(path, encoding=encoding))
        columns = list(dict.fromkeys(k for _, rec in records for k in rec))
        return columns, ((f"line {n}", rec) for n, rec in records)
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise DataValidationError(f"{path}: unreadable Parquet file ({exc})") from None
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return [str(c) for c in frame.columns], ((f"row {i + 1}", rec) for i, rec in enumerate(records))
    raise DataValidationError(f"{path}: unsupported table type; use one of {', '.join(TABLE_SUFFIXES)}")


def _resolve(path: Path, columns: list[str], wanted: dict[str, tuple[str, bool]]) -> dict[str, str]:
    missing = [col for col, required in wanted.values() if required and col not in columns]
    if missing:
        raise DataValidationError(f"{path}: missing columns {missing}; the file has {columns}")
    return {fld: col for fld, (col, _) in wanted.items() if col in columns}


def _as_reviews(value: Any) -> tuple[str, ...]:
    """Review texts from a list (JSONL, Parquet) or a single text (CSV); blanks dropped."""
    if value is None:
        return ()
    if hasattr(value, "tolist"):
        value = value.tolist()
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(str(v).strip() for v in values if v is not None and str(v).strip())


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def load_table_dataset(
    path: str | Path,
    *,
    interactions: str | Path | None = None,
    mapping: ColumnMapping | None = None,
    name: str | None = None,
    encoding: str | None = None,
    missing_title: MissingTitle = "error",
    currency: str | None = "USD",
) -> Dataset:
    """A catalog table (or a folder with ``items.*`` and optional ``interactions.*``)."""
    mapping = mapping or ColumnMapping()
    path = Path(path).expanduser()
    if path.is_dir():
        catalog_path = find_table(path, "items")
        if catalog_path is None:
            raise DataValidationError(f"{path}: no items table (items{{{', '.join(TABLE_SUFFIXES)}}})")
        if interactions is None:
            interactions = find_table(path, "interactions")
    else:
        catalog_path = path
    columns, rows = read_rows(catalog_path, encoding)
    wanted = mapping.catalog_columns()
    if mapping.image is None and "image" not in columns and "image_url" in columns:
        wanted["image"] = ("image_url", False)
    fields = _resolve(catalog_path, columns, wanted)
    used = set(fields.values())
    sep = mapping.category_separator

    def catalog_rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for where, row in rows:
            rec = {fld: (None if _empty(row.get(col)) else row.get(col)) for fld, col in fields.items()}
            rec["categories"] = as_categories(rec.get("categories"), sep)
            rec["reviews"] = _as_reviews(rec.get("reviews"))
            rec["attributes"] = {k: v for k, v in row.items() if k not in used and not _empty(v)}
            yield where, rec

    catalog, _ = build_catalog(catalog_rows(), catalog_path, missing_title=missing_title)
    if interactions is not None:
        inter_path = Path(interactions).expanduser()
        inter_columns, inter_rows = read_rows(inter_path, encoding)
        inter_fields = _resolve(inter_path, inter_columns, mapping.interaction_columns())
        log, _ = build_interactions(
            ((where, {fld: row.get(col) for fld, col in inter_fields.items()}) for where, row in inter_rows),
            inter_path,
            catalog,
            timestamp_unit=mapping.timestamp_unit,
        )
    else:
        log = Interactions(pd.DataFrame({"user_id": [], "item_id": []}))
    description = f"Table catalog {catalog_path.name}: {len(catalog)} items, {len(log)} interactions."
    if not catalog.has_prices:
        description += " No prices in this catalog."
    return Dataset(
        name=name or (path.name if path.is_dir() else catalog_path.name.split(".")[0]),
        catalog=catalog,
        interactions=log,
        description=description,
        currency=currency if catalog.has_prices else None,
        source=str(catalog_path),
    )

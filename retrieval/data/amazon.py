"""Loaders for the raw Amazon review dumps (McAuley lab): the 2014 and the 2023 releases.

2014 (``meta_<Category>.json(.gz)`` + ``reviews_<Category>[_5].json(.gz)``): metadata
lines are Python literals in the original dumps (single quotes), reviews are JSON.
``categories`` is a list of paths; the first becomes ``Item.categories`` and all are
kept in ``attributes["category_paths"]``.

2023 (``meta_<Category>.jsonl(.gz)`` + ``<Category>.jsonl(.gz)``): items are keyed by
``parent_asin``; brand = ``store`` (or ``details["Brand"]``); ``categories`` is one
flat root-first path, falling back to ``main_category``; review ``timestamp`` is in
milliseconds and is converted to unix seconds like every other loader.

Images: ``Item.image`` is the 2014 ``imUrl``, or the 2023 first ``images`` entry's ``large``
(else ``hi_res``, else ``thumb``) URL.

Both: items with no title keep a placeholder title (they occur in reviews); review
texts (summary/title + text, file order, at most ``max_reviews_per_item``) become
``Item.reviews``; ``Item.rating`` is the 2023 ``average_rating``, or (2014, which has
none) the mean star rating of the item's reviews in the file; interactions are the reviews in file order (user, item, rating,
time). A review naming an item missing from the metadata is an error unless
``drop_unknown_items=True`` (then the count goes into ``Dataset.description``).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.data._build import as_categories, build_catalog, build_interactions
from retrieval.data._io import clean_str, iter_json_lines
from retrieval.data.schema import Dataset, DataValidationError

_META_2014 = re.compile(r"^meta_(?P<cat>.+)\.json(\.gz)?$")
_REVIEWS_2014 = re.compile(r"^reviews_(?P<cat>.+?)(_5)?\.json(\.gz)?$")
_META_2023 = re.compile(r"^meta_(?P<cat>.+)\.jsonl(\.gz)?$")
_REVIEWS_2023 = re.compile(r"^(?!meta_)(?P<cat>.+)\.jsonl(\.gz)?$")


def _pairs(
    folder: Path, meta_re: re.Pattern[str], reviews_re: re.Pattern[str]
) -> dict[str, tuple[Path, Path]]:
    """``{category: (meta, reviews)}`` for every category with both files in ``folder``."""
    if not folder.is_dir():
        return {}
    metas: dict[str, Path] = {}
    reviews: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if m := meta_re.match(child.name):
            metas[m["cat"]] = child
        elif (m := reviews_re.match(child.name)) and (
            # Prefer the 5-core file when both the full and the 5-core dumps are present.
            m["cat"] not in reviews or child.name.split(".")[0].endswith("_5")
        ):
            reviews[m["cat"]] = child
    return {cat: (metas[cat], reviews[cat]) for cat in metas if cat in reviews}


def _pick(
    folder: Path, pairs: dict[str, tuple[Path, Path]], category: str | None, kind: str
) -> tuple[Path, Path]:
    if not pairs:
        raise DataValidationError(f"{folder}: no matching metadata + review files for the {kind} format")
    if category is None:
        if len(pairs) > 1:
            raise DataValidationError(
                f"{folder}: several categories found, pass category=... to choose one", sorted(pairs)
            )
        return next(iter(pairs.values()))
    if category not in pairs:
        raise DataValidationError(f"{folder}: no files for category {category!r}", sorted(pairs))
    return pairs[category]


def _peek(path: Path) -> dict[str, Any] | None:
    """The first record of a JSON-lines file, reading only its first line (files can be GBs)."""
    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            line = fh.readline().decode("utf-8-sig", errors="replace")
        record = json.loads(line)
    except (OSError, EOFError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def detect_amazon_format(path: Path) -> str | None:
    """``"amazon-2014"``, ``"amazon-2023"`` or ``None`` for a folder (or a meta file in one)."""
    folder = path if path.is_dir() else path.parent
    if _pairs(folder, _META_2014, _REVIEWS_2014):
        return "amazon-2014"
    pairs = _pairs(folder, _META_2023, _REVIEWS_2023)
    if pairs:
        meta, _ = next(iter(pairs.values()))
        first = _peek(meta)
        if first is not None and "parent_asin" in first:
            return "amazon-2023"
    return None


def _collect_reviews(rows: list[tuple[str, dict[str, Any]]], max_per_item: int) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for _, rec in rows:
        item = rec["item_id"]
        if item is None or not rec.get("text"):
            continue
        bucket = texts.setdefault(str(item).strip(), [])
        if len(bucket) < max_per_item:
            bucket.append(rec["text"])
    return texts


def _flat_text(value: Any, sep: str = " ") -> str | None:
    if isinstance(value, list):
        return clean_str(sep.join(str(v).strip() for v in value if clean_str(v)))
    return clean_str(value)


def _first_image_2023(images: Any) -> Any:
    """The first image's ``large`` / ``hi_res`` / ``thumb`` URL (a malformed value is passed on,
    so the catalog check names the line)."""
    if images is None or images == [] or images == {}:
        return None
    if not isinstance(images, list):
        return images
    for entry in images:
        if not isinstance(entry, dict):
            return entry
        for key in ("large", "hi_res", "thumb"):
            if clean_str(entry.get(key)):
                return entry[key]
    return None


def _review_text(head: Any, body: Any) -> str | None:
    head, body = clean_str(head), clean_str(body)
    if body and head:
        return f"{head.rstrip('.!?')}. {body}"
    return body or head


def _dataset(
    name: str,
    meta: Path,
    reviews: Path,
    meta_rows: Iterator[tuple[str, dict[str, Any]]],
    review_rows: list[tuple[str, dict[str, Any]]],
    drop_unknown_items: bool,
    max_reviews_per_item: int,
    timestamp_unit: str,
    label: str,
) -> Dataset:
    texts = _collect_reviews(review_rows, max_reviews_per_item)
    stars: dict[str, list[float]] = {}
    for _, rec in review_rows:
        if isinstance(rec.get("rating"), int | float) and rec.get("item_id") is not None:
            stars.setdefault(str(rec["item_id"]).strip(), []).append(float(rec["rating"]))

    def with_reviews() -> Iterator[tuple[str, dict[str, Any]]]:
        for where, rec in meta_rows:
            key = str(rec.get("item_id") or "").strip()
            rec["reviews"] = texts.get(key, ())
            if rec.get("rating") is None and stars.get(key):
                # No catalog rating in the dump: the mean of this item's review stars.
                rec["rating"] = round(sum(stars[key]) / len(stars[key]), 2)
            yield where, rec

    catalog, untitled = build_catalog(with_reviews(), meta, missing_title="placeholder")
    interactions, dropped = build_interactions(
        review_rows,
        reviews,
        catalog,
        drop_unknown_items=drop_unknown_items,
        timestamp_unit=timestamp_unit,  # type: ignore[arg-type]
    )
    description = (
        f"{label} '{name}': {len(catalog)} items, {len(interactions.users)} users, "
        f"{len(interactions)} reviews as interactions."
    )
    if untitled:
        description += f" {untitled} items have no title and carry a placeholder 'Untitled item <id>'."
    if dropped:
        description += f" {dropped} reviews of items missing from the metadata were dropped."
    if not catalog.has_prices:
        description += " No prices in this catalog."
    return Dataset(
        name=name,
        catalog=catalog,
        interactions=interactions,
        description=description,
        currency="USD" if catalog.has_prices else None,
        source=str(meta.parent),
    )


# ----------------------------------------------------------------------------- 2014


def _meta_2014_rows(path: Path, encoding: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, rec in iter_json_lines(path, loose=True, encoding=encoding):
        raw = rec.get("categories")
        paths = []
        ok = True
        if raw is not None:
            if not isinstance(raw, list):
                ok = False
            else:
                for entry in raw:
                    cats = as_categories(entry)
                    if cats is None:
                        ok = False
                        break
                    if cats:
                        paths.append(cats)
        attributes: dict[str, Any] = {"asin": rec.get("asin")}
        if len(paths) > 1:
            attributes["category_paths"] = [list(p) for p in paths]
        if isinstance(rec.get("salesRank"), dict):
            attributes["sales_rank"] = rec["salesRank"]
        yield (
            f"line {lineno}",
            {
                "item_id": rec.get("asin"),
                "title": rec.get("title"),
                "brand": rec.get("brand"),
                "price": rec.get("price"),
                "categories": (paths[0] if paths else ()) if ok else None,
                "description": _flat_text(rec.get("description")),
                "image": rec.get("imUrl"),
                "attributes": attributes,
            },
        )


def _reviews_2014_rows(path: Path, encoding: str | None) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"line {lineno}",
            {
                "user_id": rec.get("reviewerID"),
                "item_id": rec.get("asin"),
                "rating": rec.get("overall"),
                "timestamp": rec.get("unixReviewTime"),
                "text": _review_text(rec.get("summary"), rec.get("reviewText")),
            },
        )
        for lineno, rec in iter_json_lines(path, loose=True, encoding=encoding)
    ]


def load_amazon_2014(path: str | Path, **options: Any) -> Dataset:
    """A folder (or a meta file in it) of the 2014 dumps: ``meta_<Cat>.json(.gz)`` + ``reviews_<Cat>.json(.gz)``."""
    return _load_release(path, _RELEASES["2014"], **options)


# ----------------------------------------------------------------------------- 2023


def _meta_2023_rows(path: Path, encoding: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, rec in iter_json_lines(path, encoding=encoding):
        details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
        categories = as_categories(rec.get("categories"))
        if categories == () and clean_str(rec.get("main_category")):
            categories = (clean_str(rec["main_category"]),)
        features = _flat_text(rec.get("features"), "; ")
        description = " ".join(
            t
            for t in (_flat_text(rec.get("description")), f"Features: {features}." if features else None)
            if t
        )
        attributes: dict[str, Any] = {}
        if details:
            attributes["details"] = details
        for key in ("main_category", "rating_number"):
            if rec.get(key) is not None:
                attributes[key] = rec[key]
        yield (
            f"line {lineno}",
            {
                "item_id": rec.get("parent_asin"),
                "title": rec.get("title"),
                "brand": clean_str(rec.get("store")) or clean_str(details.get("Brand")),
                "price": rec.get("price"),
                "categories": categories,
                "description": description or None,
                "rating": rec.get("average_rating"),
                "image": _first_image_2023(rec.get("images")),
                "attributes": attributes,
            },
        )


def _reviews_2023_rows(path: Path, encoding: str | None) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"line {lineno}",
            {
                "user_id": rec.get("user_id"),
                "item_id": rec.get("parent_asin") or rec.get("asin"),
                "rating": rec.get("rating"),
                "timestamp": rec.get("timestamp"),
                "text": _review_text(rec.get("title"), rec.get("text")),
            },
        )
        for lineno, rec in iter_json_lines(path, encoding=encoding)
    ]


def load_amazon_2023(path: str | Path, **options: Any) -> Dataset:
    """A folder (or a meta file in it) of the 2023 release: ``meta_<Cat>.jsonl(.gz)`` + ``<Cat>.jsonl(.gz)``."""
    return _load_release(path, _RELEASES["2023"], **options)


@dataclass(frozen=True)
class _Release:
    """What differs between the public Amazon releases: file names, row readers, time unit."""

    label: str
    meta_pattern: re.Pattern[str]
    reviews_pattern: re.Pattern[str]
    meta_rows: Callable[[Path, str | None], list]
    review_rows: Callable[[Path, str | None], list]
    timestamp_unit: str


_RELEASES = {
    "2014": _Release("2014", _META_2014, _REVIEWS_2014, _meta_2014_rows, _reviews_2014_rows, "s"),
    "2023": _Release("2023", _META_2023, _REVIEWS_2023, _meta_2023_rows, _reviews_2023_rows, "ms"),
}


def _load_release(
    path: str | Path,
    release: _Release,
    *,
    category: str | None = None,
    name: str | None = None,
    encoding: str | None = None,
    drop_unknown_items: bool = False,
    max_reviews_per_item: int = 20,
) -> Dataset:
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    if category is None and path.is_file() and (m := release.meta_pattern.match(path.name)):
        category = m["cat"]
    pairs = _pairs(folder, release.meta_pattern, release.reviews_pattern)
    meta, reviews = _pick(folder, pairs, category, f"Amazon {release.label}")
    review_rows = release.review_rows(reviews, encoding)
    return _dataset(
        name or release.meta_pattern.match(meta.name)["cat"],  # type: ignore[index]
        meta,
        reviews,
        release.meta_rows(meta, encoding),
        review_rows,
        drop_unknown_items,
        max_reviews_per_item,
        release.timestamp_unit,
        f"Amazon reviews {release.label}",
    )

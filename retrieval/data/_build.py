"""Turn loosely typed records into a validated Catalog / Interactions, with line-numbered errors.

Every loader maps its own file format onto the plain field dicts below and lets
these two functions do the checking, so all formats reject the same problems with
the same messages: missing ids, duplicate ids, unusable prices, empty catalogs,
interactions that reference unknown items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from retrieval.data._io import ErrorCollector, clean_str, parse_price
from retrieval.data.schema import (
    Catalog,
    DataValidationError,
    Interactions,
    Item,
    check_image,
    is_remote_image,
    placeholder_title,
)

MissingTitle = Literal["error", "placeholder"]


def as_id(value: Any) -> str | None:
    """Ids become strings; floats that are whole numbers (CSV/pandas artefacts) lose the ``.0``."""
    if value is None or isinstance(value, bool | list | dict | tuple):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return text or None


def as_categories(value: Any, separator: str | None = None) -> tuple[str, ...] | None:
    """A root-first category path from a list or a separated string; ``None`` if unusable."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str):
        parts = value.split(separator) if separator else [value]
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, list | tuple) and all(isinstance(c, str) for c in value):
        return tuple(c.strip() for c in value if c.strip())
    return None


def as_image(value: Any, base: Path | None = None) -> str | None:
    """An item's image: an http(s) URL as is, a local path made absolute against ``base`` (the
    data file's folder); ``None`` when empty. ``ValueError`` for anything else (other schemes,
    numbers, lists)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    if not value.strip():
        return None
    text = check_image(value)
    if is_remote_image(text) or base is None:
        return text
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else Path(base).expanduser().absolute() / path)


def build_catalog(
    rows: Iterable[tuple[str, dict[str, Any]]],
    path: Path | str,
    *,
    missing_title: MissingTitle = "placeholder",
) -> tuple[Catalog, int]:
    """Validate ``(where, fields)`` rows into a Catalog; returns it and the placeholder-title count.

    ``fields`` keys: item_id, title, brand, categories (tuple), price (raw), description,
    reviews, rating, image (URL or path; relative paths are taken from the folder of ``path``),
    attributes. ``where`` is e.g. ``"line 12"`` and ends up in errors.
    """
    base = Path(path).expanduser().parent
    errors = ErrorCollector(path)
    items: list[Item] = []
    seen: dict[str, str] = {}
    untitled = 0
    for where, rec in rows:
        item_id = as_id(rec.get("item_id"))
        if item_id is None:
            errors.add("missing or invalid item ids", f"{where}: {rec.get('item_id')!r}")
            continue
        if item_id in seen:
            errors.add("duplicate item ids", f"{where}: item_id {item_id!r} (first at {seen[item_id]})")
            continue
        seen[item_id] = where
        try:
            price = parse_price(rec.get("price"))
        except ValueError as exc:
            errors.add("unparseable or negative prices", f"{where}: item {item_id!r}: {exc}")
            continue
        categories = rec.get("categories", ())
        if categories is None:
            errors.add("categories must be a list of strings", f"{where}: item {item_id!r}")
            continue
        rating = rec.get("rating")
        try:
            rating = None if rating is None else float(rating)
        except (TypeError, ValueError):
            errors.add("unparseable ratings", f"{where}: item {item_id!r}: {rating!r}")
            continue
        if rating is not None and not math.isfinite(rating):
            rating = None
        try:
            image = as_image(rec.get("image"), base)
        except ValueError as exc:
            errors.add(
                "image must be an http(s) URL or a local file path", f"{where}: item {item_id!r}: {exc}"
            )
            continue
        attributes = dict(rec.get("attributes") or {})
        title = clean_str(rec.get("title"))
        if title is None:
            if missing_title == "error":
                errors.add("missing titles", f"{where}: item {item_id!r}")
                continue
            title = placeholder_title(item_id, categories)
            attributes["title_missing"] = True
            untitled += 1
        items.append(
            Item(
                item_id=item_id,
                title=title,
                brand=clean_str(rec.get("brand")),
                categories=categories,
                price=price,
                description=clean_str(rec.get("description")),
                reviews=tuple(rec.get("reviews") or ()),
                rating=rating,
                attributes=attributes,
                image=image,
            )
        )
    errors.raise_if_any()
    if not items:
        raise DataValidationError(f"{path}: empty catalog (no items)")
    return Catalog(items), untitled


def to_seconds(value: Any, unit: Literal["s", "ms"] = "s") -> float:
    """Unix seconds from a number (seconds or milliseconds) or a date string; NaN when empty.

    Raises ``ValueError`` for text that is not a date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float | np.integer | np.floating):
        out = float(value)
        if math.isnan(out):
            return out
        return out / 1000.0 if unit == "ms" else out
    text = str(value).strip()
    try:
        return to_seconds(float(text), unit)
    except ValueError:
        pass
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ValueError(f"not a timestamp: {value!r}") from None
    if stamp is pd.NaT:
        return math.nan
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


def build_interactions(
    rows: Iterable[tuple[str, dict[str, Any]]],
    path: Path | str,
    catalog: Catalog,
    *,
    drop_unknown_items: bool = False,
    timestamp_unit: Literal["s", "ms"] = "s",
) -> tuple[Interactions, int]:
    """Validate ``(where, {user_id, item_id, timestamp, rating})`` rows, kept in given order.

    Returns the interactions and how many events were dropped for naming items not
    in the catalog (only with ``drop_unknown_items=True``; otherwise that is an error).
    """
    errors = ErrorCollector(path)
    users: list[str] = []
    items: list[str] = []
    stamps: list[float] = []
    ratings: list[float] = []
    dropped = 0
    for where, rec in rows:
        user = as_id(rec.get("user_id"))
        item = as_id(rec.get("item_id"))
        if user is None or item is None:
            errors.add(
                "missing user or item ids",
                f"{where}: user {rec.get('user_id')!r}, item {rec.get('item_id')!r}",
            )
            continue
        if item not in catalog:
            if drop_unknown_items:
                dropped += 1
            else:
                errors.add("interactions reference items not in the catalog", f"{where}: item_id {item!r}")
            continue
        try:
            stamp = to_seconds(rec.get("timestamp"), timestamp_unit)
        except ValueError as exc:
            errors.add("unparseable timestamps", f"{where}: {exc}")
            continue
        raw_rating = rec.get("rating")
        try:
            rating = math.nan if raw_rating is None or raw_rating == "" else float(raw_rating)
        except (TypeError, ValueError):
            errors.add("unparseable ratings", f"{where}: {raw_rating!r}")
            continue
        users.append(user)
        items.append(item)
        stamps.append(stamp)
        ratings.append(rating)
    errors.raise_if_any()
    frame = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": np.asarray(stamps, dtype=float),
            "rating": np.asarray(ratings, dtype=float),
            "order": np.arange(len(users), dtype=np.int64),
        }
    )
    return Interactions(frame), dropped

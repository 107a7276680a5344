"""Loader for the shared Amazon JSONL format (``items.jsonl.gz`` + ``sequences.jsonl.gz``).

This is the format of the evaluation datasets in ``../shared/datasets`` (Beauty,
Office, Scientific). Conventions, chosen so splits reproduce the published protocol:

* item ids become strings (``str(item_id)``); user ids likewise;
* the order of ``item_ids`` in a sequence is the reference order. Every event's
  ``order`` is its global position in the file (users in file order, each user's
  events in sequence order), so ``Interactions.chronological`` never reorders a
  sequence: timestamps are kept only for users whose timestamps are non-decreasing
  along the sequence (ties then fall back to ``order``). A user with out-of-order
  or partly missing timestamps loses all timestamps, which makes the whole log untimed (sequence
  order is used everywhere, temporal splits refuse to run); the count is reported
  in ``Dataset.description``. None of the three shared datasets has such a user;
  Beauty has many same-day ties, which ``order`` resolves in sequence order;
* items with no title are kept (they occur in sequences and the protocol ranks over
  all items) under a placeholder title ``"Untitled item <id> (<leaf category>)"``
  and ``attributes["title_missing"] = True``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrieval.data._build import as_categories, build_catalog
from retrieval.data._io import ErrorCollector, iter_json_lines
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions

ITEM_FIELDS = ("item_id", "title", "brand", "price", "categories", "description", "image")


def find_file(folder: Path, stem: str) -> Path | None:
    for suffix in (".jsonl.gz", ".jsonl"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def is_shared_jsonl(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and find_file(path, "items") is not None and find_file(path, "sequences") is not None


def _rows(path: Path, encoding: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, rec in iter_json_lines(path, encoding=encoding):
        categories = as_categories(rec.get("categories"))
        yield (
            f"line {lineno}",
            {
                "item_id": rec.get("item_id"),
                "title": rec.get("title"),
                "brand": rec.get("brand"),
                "price": rec.get("price"),
                "categories": categories,
                "description": rec.get("description"),
                "image": rec.get("image"),
                "attributes": {k: v for k, v in rec.items() if k not in ITEM_FIELDS and v is not None},
            },
        )


def load_catalog(path: Path, encoding: str | None = None) -> tuple[Catalog, int]:
    """Read ``items.jsonl(.gz)``; returns the catalog and the number of placeholder titles."""
    return build_catalog(_rows(path, encoding), path, missing_title="placeholder")


def nan_run(n: int) -> list[float]:
    return [math.nan] * n


def load_sequences(path: Path, catalog: Catalog, encoding: str | None = None) -> tuple[Interactions, int]:
    """Read ``sequences.jsonl(.gz)``; returns interactions and the number of users whose
    timestamps were dropped because they are incomplete or contradict the sequence order."""
    errors = ErrorCollector(path)
    users: list[str] = []
    items: list[str] = []
    stamps: list[float] = []
    seen_users: dict[str, int] = {}
    known = set(catalog.ids)
    dropped = 0
    for lineno, rec in iter_json_lines(path, encoding=encoding):
        user = rec.get("user_id")
        seq = rec.get("item_ids")
        if user is None or str(user).strip() == "":
            errors.add("missing user_id", f"line {lineno}")
            continue
        user = str(user).strip()
        if user in seen_users:
            errors.add(
                "duplicate user ids", f"line {lineno}: user_id {user!r} (first on line {seen_users[user]})"
            )
            continue
        seen_users[user] = lineno
        if not isinstance(seq, list) or not seq:
            errors.add("item_ids must be a non-empty list", f"line {lineno}: {seq!r}")
            continue
        seq_ids = [i.strip() if isinstance(i, str) else str(i) for i in seq]
        if not known.issuperset(seq_ids):
            unknown = next(i for i in seq_ids if i not in known)
            errors.add(
                "interactions reference items not in the catalog", f"line {lineno}: item_id {unknown!r}"
            )
            continue
        ts = rec.get("timestamps")
        n = len(seq_ids)
        if ts is not None:
            if not isinstance(ts, list) or len(ts) != n:
                errors.add(
                    "timestamps must be null or a list as long as item_ids",
                    f"line {lineno}: {len(ts) if isinstance(ts, list) else ts!r} vs {n}",
                )
                continue
            if any(t is not None and (isinstance(t, bool) or not isinstance(t, int | float)) for t in ts):
                errors.add("timestamps must be numbers", f"line {lineno}: {ts[:3]!r}...")
                continue
            # Only timestamps that agree with the reference (sequence) order are kept.
            complete = all(t is not None and t == t for t in ts)
            if not complete or any(a > b for a, b in itertools.pairwise(ts)):
                dropped += int(any(t is not None for t in ts))
                ts = nan_run(n)
        else:
            ts = nan_run(n)
        users.extend([user] * n)
        items.extend(seq_ids)
        stamps.extend(ts)
    errors.raise_if_any()
    frame = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": np.asarray(stamps, dtype=float),
            "order": np.arange(len(users), dtype=np.int64),
        }
    )
    return Interactions(frame), dropped


def load_shared_jsonl(path: str | Path, *, name: str | None = None, encoding: str | None = None) -> Dataset:
    """Load a folder holding ``items.jsonl(.gz)`` and ``sequences.jsonl(.gz)``."""
    folder = Path(path).expanduser()
    items_path = find_file(folder, "items")
    seq_path = find_file(folder, "sequences")
    if items_path is None or seq_path is None:
        raise DataValidationError(
            f"{folder}: expected items.jsonl(.gz) and sequences.jsonl(.gz) in this folder"
        )
    catalog, untitled = load_catalog(items_path, encoding)
    interactions, dropped = load_sequences(seq_path, catalog, encoding)
    timing = (
        "timestamps kept (non-decreasing along each sequence; same-time ties keep sequence order)"
        if interactions.timed
        else "events ordered by sequence position (no usable timestamps"
        + (
            f"; {dropped} users had incomplete timestamps or timestamps contradicting their sequence order"
            if dropped
            else ""
        )
        + ")"
    )
    description = (
        f"Amazon 5-core sequences from {folder.name}: {len(catalog)} items, "
        f"{len(interactions.users)} users, {len(interactions)} interactions; {timing}."
    )
    if untitled:
        description += f" {untitled} items have no title and carry a placeholder 'Untitled item <id>'."
    if not catalog.has_prices:
        description += " No prices in this catalog."
    return Dataset(
        name=name or folder.name,
        catalog=catalog,
        interactions=interactions,
        description=description,
        currency="USD" if catalog.has_prices else None,
        source=str(folder),
    )

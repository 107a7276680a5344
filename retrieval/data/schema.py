"""Typed data contracts shared by every layer: products, interactions, datasets.

Item ids and user ids are strings everywhere in the public API (Chroma ids are
strings and user catalogs use SKUs); numeric row indices exist only inside the
scorers, through ``Catalog.index_of``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating")
MAX_ROWS_IN_ERROR = 5


class DataValidationError(ValueError):
    """Input data is malformed; the message lists the first offending rows."""

    def __init__(self, message: str, rows: Sequence[Any] = ()):
        self.rows = list(rows)[:MAX_ROWS_IN_ERROR]
        if self.rows:
            shown = "; ".join(str(r) for r in self.rows)
            more = f" (and {len(rows) - len(self.rows)} more)" if len(rows) > len(self.rows) else ""
            message = f"{message}: {shown}{more}"
        super().__init__(message)


# A catalog sells made products when at least this share of its items names a brand (a few stray
# brands on a movie catalog do not make it one).
BRANDED_SHARE = 0.2

# A scheme prefix ("https:", "data:", "javascript:"); one letter is a Windows drive ("C:\\...").
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):")
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


def is_remote_image(image: str | None) -> bool:
    """An http(s) URL (fetched by the shopper's browser only when remote images are allowed)."""
    return bool(image) and _URL.match(image or "") is not None


def check_image(value: str) -> str:
    """``value`` stripped, if it is an http(s) URL or a local file path; else ``ValueError``.

    Any other scheme (``data:``, ``file:``, ``javascript:``) and text with control characters
    are refused, so a card can put the value in ``<img src>`` (after the UI's own checks)."""
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    text = value.strip()
    if not text:
        raise ValueError("empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError(f"control characters in {text[:80]!r}")
    if _SCHEME.match(text) and not _URL.match(text):
        raise ValueError(f"not an http(s) URL or a local path: {text[:80]!r}")
    return text


def placeholder_title(item_id: str, categories: tuple[str, ...]) -> str:
    """Honest stand-in for a product the source lists without a name."""
    leaf = f" ({categories[-1]})" if categories else ""
    return f"Untitled item {item_id}{leaf}"


@dataclass(frozen=True)
class Item:
    """One product. ``categories`` is a path from the root ("Beauty" > "Makeup" > ...)."""

    item_id: str
    title: str
    brand: str | None = None
    categories: tuple[str, ...] = ()
    price: float | None = None
    description: str | None = None
    reviews: tuple[str, ...] = ()
    rating: float | None = None
    in_stock: bool = True
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # The product photo: an http(s) URL or a local file path (loaders resolve relative paths
    # against the data file's folder). Not part of the indexed text or any fingerprint.
    image: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.item_id, str) or not self.item_id.strip():
            raise DataValidationError("item_id must be a non-empty string", [repr(self.item_id)])
        if not isinstance(self.title, str) or not self.title.strip():
            raise DataValidationError("title must be a non-empty string", [f"item {self.item_id!r}"])
        if self.price is not None and (
            not isinstance(self.price, int | float) or not math.isfinite(self.price) or self.price < 0
        ):
            raise DataValidationError(
                "price must be a finite number >= 0 or None", [f"item {self.item_id!r}: {self.price!r}"]
            )
        if self.image is not None:
            try:
                object.__setattr__(self, "image", check_image(self.image))
            except ValueError as exc:
                raise DataValidationError(
                    "image must be an http(s) URL or a local file path", [f"item {self.item_id!r}: {exc}"]
                ) from None
        if not isinstance(self.categories, tuple):
            object.__setattr__(self, "categories", tuple(self.categories))
        if not isinstance(self.reviews, tuple):
            object.__setattr__(self, "reviews", tuple(self.reviews))

    @property
    def untitled(self) -> bool:
        """The source gave no name: the title is the loader's stand-in, which names nothing."""
        return self.title == placeholder_title(self.item_id, self.categories)

    @property
    def category_path(self) -> str:
        return " > ".join(self.categories)

    @property
    def paths(self) -> tuple[tuple[str, ...], ...]:
        """Every category path the item is in: ``categories``, then one per sibling label a
        catalog lists beside it (MovieLens keeps a film's first genre in ``categories`` and all of
        them in ``attributes["genres"]``: Toy Story is a Comedy too). Filters read these."""
        labels = self.attributes.get("genres")
        if not self.categories or not isinstance(labels, list | tuple):
            return (self.categories,)
        parent = self.categories[:-1]
        extra = tuple(
            (*parent, g)
            for g in dict.fromkeys(labels)
            if isinstance(g, str) and g and g != self.categories[-1]
        )
        return (self.categories, *extra)

    def text(self, max_reviews: int = 2) -> str:
        """The text embedded and indexed for search: what a shopper would read on a card."""
        parts = [self.title]
        if self.brand:
            parts.append(f"Brand: {self.brand}")
        if self.categories:
            parts.append(f"Category: {self.category_path}")
        if self.description:
            parts.append(self.description[:500])
        parts.extend(r[:300] for r in self.reviews[:max_reviews])
        return "\n".join(parts)


class Catalog:
    """An ordered, id-unique collection of items with a stable row index for scorers."""

    def __init__(self, items: Iterable[Item]):
        self._items: list[Item] = list(items)
        self._index: dict[str, int] = {}
        dupes = []
        for i, item in enumerate(self._items):
            if item.item_id in self._index:
                dupes.append(f"row {i}: item_id {item.item_id!r}")
            self._index[item.item_id] = i
        if dupes:
            raise DataValidationError("duplicate item ids", dupes)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __getitem__(self, item_id: str) -> Item:
        try:
            return self._items[self._index[item_id]]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def get(self, item_id: str) -> Item | None:
        i = self._index.get(item_id)
        return None if i is None else self._items[i]

    def at(self, index: int) -> Item:
        return self._items[index]

    def index_of(self, item_id: str) -> int:
        try:
            return self._index[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    @property
    def ids(self) -> list[str]:
        return [it.item_id for it in self._items]

    @property
    def has_prices(self) -> bool:
        return any(it.price is not None for it in self._items)

    @property
    def has_images(self) -> bool:
        return any(it.image for it in self._items)

    @property
    def has_brands(self) -> bool:
        """True when at least ``BRANDED_SHARE`` of the items name a maker: a catalog of made
        products, whose titles describe them ("Olay Regenerist Micro-Sculpting Cream"). Without
        (movies, books) the titles are names of works, and a word in one says little about it."""
        n = len(self._items)
        return n > 0 and sum(1 for it in self._items if it.brand and it.brand.strip()) >= BRANDED_SHARE * n

    def brands(self) -> list[str]:
        return sorted({it.brand for it in self._items if it.brand})

    def category_paths(self) -> list[tuple[str, ...]]:
        """Every distinct category path prefix, so filters can target any level."""
        seen: set[tuple[str, ...]] = set()
        for it in self._items:
            for depth in range(1, len(it.categories) + 1):
                seen.add(it.categories[:depth])
        return sorted(seen)

    def prices(self) -> np.ndarray:
        return np.array([np.nan if it.price is None else it.price for it in self._items], dtype=float)


class Interactions:
    """User-item events in file order; the order column is the neutral tie-breaker.

    Backed by a DataFrame with columns user_id (str), item_id (str), timestamp
    (float or NaN), rating (float or NaN) and ``order`` (0..n-1, the order the
    events were given in). Sorting by time always breaks ties by ``order``,
    never by item id, so no split favours low or high ids.
    """

    def __init__(self, frame: pd.DataFrame, catalog: Catalog | None = None):
        missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"interactions are missing columns {missing}; got {list(frame.columns)}"
            )
        df = pd.DataFrame(
            {
                "user_id": frame["user_id"].astype(str),
                "item_id": frame["item_id"].astype(str),
                "timestamp": pd.to_numeric(frame["timestamp"], errors="coerce")
                if "timestamp" in frame
                else np.nan,
                "rating": pd.to_numeric(frame["rating"], errors="coerce") if "rating" in frame else np.nan,
            }
        )
        df["order"] = (
            np.arange(len(df), dtype=np.int64) if "order" not in frame else frame["order"].to_numpy()
        )
        empty = df.index[(df["user_id"].str.strip() == "") | (df["item_id"].str.strip() == "")]
        if len(empty):
            raise DataValidationError("empty user_id or item_id", [f"row {i}" for i in empty])
        if catalog is not None:
            unknown = df.index[~df["item_id"].isin(set(catalog.ids))]
            if len(unknown):
                raise DataValidationError(
                    "interactions reference items not in the catalog",
                    [f"row {i}: item_id {df.at[i, 'item_id']!r}" for i in unknown],
                )
        self.frame = df.reset_index(drop=True)
        # One rule for the whole log: time order only when every event has a time.
        self.timed = bool(len(df)) and bool(df["timestamp"].notna().all())

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], catalog: Catalog | None = None) -> Interactions:
        return cls(pd.DataFrame.from_records(list(records), columns=list(INTERACTION_COLUMNS)), catalog)

    @classmethod
    def from_sequences(
        cls, sequences: dict[str, Sequence[str]], timestamps: dict[str, Sequence[float]] | None = None
    ) -> Interactions:
        """Build from ``{user: [item, ...]}`` in chronological order (the reference order)."""
        rows = []
        for user, items in sequences.items():
            ts = (timestamps or {}).get(user)
            for k, item in enumerate(items):
                rows.append({"user_id": user, "item_id": item, "timestamp": None if ts is None else ts[k]})
        return cls(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def users(self) -> list[str]:
        return pd.unique(self.frame["user_id"]).tolist()  # first-seen order

    @property
    def items(self) -> list[str]:
        return pd.unique(self.frame["item_id"]).tolist()  # first-seen order

    def chronological(self) -> pd.DataFrame:
        """Events sorted by (user, time, given order); missing timestamps keep the given order."""
        keys = ["user_id", "timestamp", "order"] if self.timed else ["user_id", "order"]
        return self.frame.sort_values(keys, kind="stable")

    def sequences(self) -> dict[str, list[str]]:
        """Each user's items in chronological order (users in first-seen order)."""
        df = self.chronological()
        if df.empty:
            return {}
        # chronological() sorts by user first, so each user's events are one contiguous run.
        users = df["user_id"].to_numpy()
        items = df["item_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        grouped = {users[a]: items[a:b].tolist() for a, b in zip(starts, ends, strict=True)}
        return {u: grouped[u] for u in self.users}

    def history(self, user_id: str) -> list[str]:
        df = self.frame[self.frame["user_id"] == user_id]
        if df.empty:
            return []
        keys = ["timestamp", "order"] if self.timed else ["order"]
        return df.sort_values(keys, kind="stable")["item_id"].tolist()

    def subset(self, mask: np.ndarray | pd.Series) -> Interactions:
        """The masked events. A part of a log with missing timestamps keeps the given order even
        where its own rows all happen to be timed, so every part orders events as the log did."""
        part = Interactions(self.frame[np.asarray(mask)].reset_index(drop=True))
        part.timed = part.timed and self.timed
        return part

    def without_users(self, user_ids: Iterable[str]) -> Interactions:
        return self.subset(~self.frame["user_id"].isin(set(user_ids)))


@dataclass
class Dataset:
    """A catalog plus its interaction log, as loaded by ``retrieval.data.load_dataset``."""

    name: str
    catalog: Catalog
    interactions: Interactions
    description: str = ""
    currency: str | None = "USD"
    source: str = ""

    @property
    def has_prices(self) -> bool:
        return self.catalog.has_prices

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "items": len(self.catalog),
            "users": len(self.interactions.users),
            "interactions": len(self.interactions),
            "has_prices": self.has_prices,
            "source": self.source,
        }

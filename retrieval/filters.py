"""Typed hard constraints on products, and their two compiled forms.

The dialogue layer produces a ``Constraints``; retrieval applies it *inside*
the search (a Chroma ``where`` clause and a boolean mask over the catalog), so a
selective filter never yields an empty page after a top-k cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from retrieval.data.schema import Catalog, Item

MAX_CATEGORY_DEPTH = 6  # category levels stored as metadata keys cat_0..cat_5

# A standing price wish, weighed in ranking and never filtered on: the low end, the high end, or
# the middle of what matches ("mid-range").
PricePreference = Literal["low", "mid", "high"]


def _casefold_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)


@dataclass(frozen=True)
class Constraints:
    """Hard filters a shown item must satisfy. Empty fields mean "no constraint".

    ``categories`` is any-of: an item qualifies when its category path starts
    with one of the given paths. Brand comparisons ignore case.
    """

    price_min: float | None = None
    price_max: float | None = None
    brands_in: tuple[str, ...] = ()
    brands_out: tuple[str, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()
    categories_out: tuple[tuple[str, ...], ...] = ()
    in_stock: bool | None = None
    exclude_items: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("price_min", "price_max"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or math.isnan(v) or v < 0):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(f"price_min {self.price_min} is above price_max {self.price_max}")
        for name in ("brands_in", "brands_out", "exclude_items"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("categories", "categories_out"):
            paths = tuple(tuple(p) if not isinstance(p, str) else (p,) for p in getattr(self, name))
            if any(len(p) == 0 or len(p) > MAX_CATEGORY_DEPTH for p in paths):
                raise ValueError(f"{name} paths must have 1..{MAX_CATEGORY_DEPTH} levels, got {paths!r}")
            object.__setattr__(self, name, paths)

    @property
    def is_empty(self) -> bool:
        return self == Constraints()

    @property
    def has_price(self) -> bool:
        return self.price_min is not None or self.price_max is not None

    def merged(self, **changes: Any) -> Constraints:
        return replace(self, **changes)

    def excluding(self, item_ids: Iterable[str]) -> Constraints:
        """These constraints with ``item_ids`` also excluded (order kept, no repeats); ``self``
        when nothing is new."""
        drop = tuple(dict.fromkeys((*self.exclude_items, *item_ids)))
        return self if drop == self.exclude_items else replace(self, exclude_items=drop)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            k: (list(map(list, v)) if k.startswith("categories") else list(v) if isinstance(v, tuple) else v)
            for k, v in d.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Constraints:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown constraint fields {sorted(unknown)}; expected {sorted(known)}")
        return cls(
            **{
                k: (
                    tuple(tuple(p) for p in v)
                    if k.startswith("categories")
                    else tuple(v)
                    if isinstance(v, list)
                    else v
                )
                for k, v in data.items()
            }
        )

    # --- evaluation ---------------------------------------------------------------
    def matches(self, item: Item) -> bool:
        """The reference semantics; the Chroma and mask forms must agree with this."""
        if self.has_price:
            if item.price is None:
                return False
            if self.price_min is not None and item.price < self.price_min:
                return False
            if self.price_max is not None and item.price > self.price_max:
                return False
        brand = (item.brand or "").casefold()
        if self.brands_in and brand not in _casefold_set(self.brands_in):
            return False
        if self.brands_out and brand in _casefold_set(self.brands_out):
            return False
        paths = item.paths
        if self.categories and not any(q[: len(p)] == p for p in self.categories for q in paths):
            return False
        if self.categories_out and any(q[: len(p)] == p for p in self.categories_out for q in paths):
            return False
        if self.in_stock is not None and item.in_stock != self.in_stock:
            return False
        return item.item_id not in self.exclude_items

    def mask(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over catalog rows (catalog order)."""
        return np.fromiter((self.matches(it) for it in catalog), dtype=bool, count=len(catalog))

    def to_chroma_where(self) -> dict[str, Any] | None:
        """The Chroma ``where`` form of ``matches`` (None when unconstrained); see ``to_chroma_where``."""
        return to_chroma_where(self)


# --- compiled forms: Chroma metadata + where clause ------------------------------------------------
# One place defines the metadata keys, so the stored metadata and the compiled
# where clause cannot drift apart. Chroma's ``$ne``/``$nin`` also match records
# that LACK the key, so every key a negative operator touches is always stored
# ("" for a missing brand or category level), and price carries an explicit
# ``has_price`` flag: an item without a price fails every price constraint.
META_ITEM_ID = "item_id"
META_PRICE = "price"
META_HAS_PRICE = "has_price"
META_BRAND = "brand"
META_BRAND_LC = "brand_lc"
META_CAT_DEPTH = "cat_depth"
META_IN_STOCK = "in_stock"
META_RATING = "rating"
META_POPULARITY = "popularity"


def cat_key(level: int) -> str:
    return f"cat_{level}"


def also_key(path: tuple[str, ...]) -> str:
    """The metadata flag of a path an item is in besides its own (``Item.paths``)."""
    return "also:" + " > ".join(path)


def chroma_metadata(item: Item, popularity: float | None = None) -> dict[str, Any]:
    """The metadata record stored beside an item's vector (what ``to_chroma_where`` filters on)."""
    meta: dict[str, Any] = {
        META_ITEM_ID: item.item_id,
        META_HAS_PRICE: item.price is not None,
        META_BRAND: item.brand or "",
        META_BRAND_LC: (item.brand or "").casefold(),
        META_CAT_DEPTH: len(item.categories),
        META_IN_STOCK: bool(item.in_stock),
    }
    if item.price is not None:
        meta[META_PRICE] = float(item.price)
    for level in range(MAX_CATEGORY_DEPTH):
        meta[cat_key(level)] = item.categories[level] if level < len(item.categories) else ""
    for path in item.paths[1:]:  # sibling labels (a film's other genres): one flag per path
        meta[also_key(path)] = True
    if item.rating is not None:
        meta[META_RATING] = float(item.rating)
    if popularity is not None:
        meta[META_POPULARITY] = float(popularity)
    if item.attributes.get("synthetic"):  # generated test data (bench.scale) stays recognisable
        meta["synthetic"] = True
    return meta


def _and(clauses: list[dict[str, Any]]) -> dict[str, Any] | None:
    # Chroma rejects ``$and``/``$or`` with fewer than two operands.
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _or(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _under_path(path: tuple[str, ...]) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{META_CAT_DEPTH: {"$gte": len(path)}}]
    clauses += [{cat_key(level): {"$eq": name}} for level, name in enumerate(path)]
    # ... or the path is one of the item's sibling labels (only whole paths are flagged: a
    # sibling path is a leaf, so no longer constraint path can lie under it).
    return {"$or": [{"$and": clauses}, {also_key(path): {"$eq": True}}]}


def _not_under_path(path: tuple[str, ...]) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{META_CAT_DEPTH: {"$lt": len(path)}}]
    clauses += [{cat_key(level): {"$ne": name}} for level, name in enumerate(path)]
    return {"$and": [{"$or": clauses}, {also_key(path): {"$ne": True}}]}


def to_chroma_where(constraints: Constraints) -> dict[str, Any] | None:
    """Compile constraints to a Chroma ``where`` filter (None = no filter), same semantics as ``matches``."""
    clauses: list[dict[str, Any]] = []
    if constraints.has_price:
        clauses.append({META_HAS_PRICE: {"$eq": True}})
        if constraints.price_min is not None:
            clauses.append({META_PRICE: {"$gte": float(constraints.price_min)}})
        if constraints.price_max is not None:
            clauses.append({META_PRICE: {"$lte": float(constraints.price_max)}})
    if constraints.brands_in:
        clauses.append({META_BRAND_LC: {"$in": sorted(_casefold_set(constraints.brands_in))}})
    if constraints.brands_out:
        clauses.append({META_BRAND_LC: {"$nin": sorted(_casefold_set(constraints.brands_out))}})
    if constraints.categories:
        clauses.append(_or([_under_path(p) for p in constraints.categories]))
    for path in constraints.categories_out:
        clauses.append(_not_under_path(path))
    if constraints.in_stock is not None:
        clauses.append({META_IN_STOCK: {"$eq": bool(constraints.in_stock)}})
    if constraints.exclude_items:
        clauses.append({META_ITEM_ID: {"$nin": sorted(set(constraints.exclude_items))}})
    return _and(clauses)


class FilterIndex:
    """Vectorised ``Constraints.mask`` over a fixed catalog (numpy, no per-item Python).

    ``Constraints.mask`` calls ``matches`` item by item (~10 ms on 12k items);
    hybrid search needs the mask on every query, so the columns are
    precomputed once. Results equal ``Constraints.mask`` exactly.
    """

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.ids = np.array(catalog.ids, dtype=object)
        prices = catalog.prices()
        self.has_price = ~np.isnan(prices)
        self.price = np.where(self.has_price, prices, 0.0)
        # Brands and category-path prefixes as integer codes: a filter is then an integer
        # comparison over the catalog (np.isin on 1M Python strings costs ~0.5 s per query).
        self._brand_code: dict[str, int] = {}
        self.brand = np.fromiter(
            (
                self._brand_code.setdefault((it.brand or "").casefold(), len(self._brand_code))
                for it in catalog
            ),
            dtype=np.int32,
            count=len(catalog),
        )
        self.in_stock = np.array([bool(it.in_stock) for it in catalog], dtype=bool)
        self._prefix_code: dict[tuple[str, ...], int] = {}
        self._depth = np.array([len(it.categories) for it in catalog], dtype=np.int32)
        self._levels = [
            np.fromiter(
                (
                    self._prefix_code.setdefault(it.categories[: d + 1], len(self._prefix_code))
                    if len(it.categories) > d
                    else -1
                    for it in catalog
                ),
                dtype=np.int32,
                count=len(catalog),
            )
            for d in range(int(self._depth.max(initial=0)))
        ]
        self._path_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._also: dict[tuple[str, ...], list[int]] = {}  # sibling-label path -> rows (Item.paths)
        for row, it in enumerate(catalog):
            for path in it.paths[1:]:
                self._also.setdefault(path, []).append(row)

    def __len__(self) -> int:
        return len(self.ids)

    def under(self, path: tuple[str, ...]) -> np.ndarray:
        """Rows whose category path starts with ``path`` (memoised: paths repeat across turns)."""
        hit = self._path_cache.get(path)
        if hit is None:
            code = self._prefix_code.get(tuple(path))
            if code is None or not path:
                hit = np.zeros(len(self.ids), dtype=bool)
            else:
                hit = self._levels[len(path) - 1] == code
            if tuple(path) in self._also:
                hit = hit.copy()
                hit[self._also[tuple(path)]] = True
            self._path_cache[path] = hit
        return hit

    def _brands(self, brands: Iterable[str]) -> np.ndarray:
        codes = [self._brand_code[b] for b in _casefold_set(brands) if b in self._brand_code]
        return np.isin(self.brand, np.array(codes, dtype=np.int32))

    def mask(self, constraints: Constraints) -> np.ndarray:
        m = np.ones(len(self.ids), dtype=bool)
        if constraints.has_price:
            m &= self.has_price
            if constraints.price_min is not None:
                m &= self.price >= constraints.price_min
            if constraints.price_max is not None:
                m &= self.price <= constraints.price_max
        if constraints.brands_in:
            m &= self._brands(constraints.brands_in)
        if constraints.brands_out:
            m &= ~self._brands(constraints.brands_out)
        if constraints.categories:
            any_of = np.zeros(len(self.ids), dtype=bool)
            for path in constraints.categories:
                any_of |= self.under(path)
            m &= any_of
        for path in constraints.categories_out:
            m &= ~self.under(path)
        if constraints.in_stock is not None:
            m &= self.in_stock == constraints.in_stock
        if constraints.exclude_items:
            rows = [self.catalog.index_of(i) for i in set(constraints.exclude_items) if i in self.catalog]
            m[rows] = False
        return m

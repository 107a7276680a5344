"""Typed hard constraints on products, and their two compiled forms.

The dialogue layer produces a ``Constraints``; retrieval applies it *inside*
the search (a Chroma ``where`` clause and a boolean mask over the catalog), so a
selective filter never yields an empty page after a top-k cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from retrieval.data.schema import Catalog, Item

MAX_CATEGORY_DEPTH = 6  # category levels stored as metadata keys cat_0..cat_5


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
        if self.categories and not any(item.categories[: len(p)] == p for p in self.categories):
            return False
        if self.categories_out and any(item.categories[: len(p)] == p for p in self.categories_out):
            return False
        if self.in_stock is not None and item.in_stock != self.in_stock:
            return False
        return item.item_id not in self.exclude_items

    def mask(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over catalog rows (catalog order)."""
        return np.fromiter((self.matches(it) for it in catalog), dtype=bool, count=len(catalog))

"""Constraints set from outside the chat (UI chips, a budget field), checked against the catalog.
``ConstraintEditor.validated(base, changes) -> Constraints``."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

import numpy as np

from retrieval.data.schema import Catalog
from retrieval.filters import Constraints


class ConstraintEditor:
    def __init__(self, catalog: Catalog, brand_names: Iterable[str]):
        self.catalog = catalog
        self.brand_names = list(brand_names)

    @cached_property
    def category_paths(self) -> frozenset[tuple[str, ...]]:
        """Every category path of the catalog and each of its prefixes."""
        return frozenset(
            tuple(it.categories[:n]) for it in self.catalog for n in range(1, len(it.categories) + 1)
        )

    def validated(self, base: Constraints | dict[str, Any], changes: dict[str, Any]) -> Constraints:
        """``base`` + ``changes`` as catalog-checked ``Constraints``, or a ValueError that says what is wrong."""
        fields = sorted(Constraints.__dataclass_fields__)
        if isinstance(base, dict):
            base = Constraints.from_dict(base)  # names unknown fields itself
        if not isinstance(base, Constraints):
            raise TypeError(f"constraints must be a Constraints or a dict, got {type(base).__name__}")
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown constraint fields {unknown}; expected some of {fields}")
        values = {f: getattr(base, f) for f in fields}
        for name, v in changes.items():
            if name in ("price_min", "price_max"):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float | str)):
                    raise ValueError(f"{name} must be a number or None, got {v!r}")
                if isinstance(v, str):
                    try:
                        v = float(v.strip().lstrip("$€£¥").replace(",", ""))
                    except ValueError:
                        raise ValueError(f"{name} must be a number or None, got {v!r}") from None
            elif name == "in_stock":
                if v is not None and not isinstance(v, bool):
                    raise ValueError(f"in_stock must be True, False or None, got {v!r}")
            elif name in ("categories", "categories_out"):
                v = (v,) if isinstance(v, str) else tuple(v or ())
                v = tuple(tuple(p.split(" > ")) if isinstance(p, str) else tuple(p) for p in v)
            else:  # brands_in, brands_out, exclude_items: a single string is one value, not its letters
                v = (v,) if isinstance(v, str) else tuple(v or ())
            values[name] = v
        for name in ("price_min", "price_max"):
            v = values[name]
            if v is not None and not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 or None, got {v!r}")
        by_key = {b.casefold(): b for b in self.brand_names}
        for name in ("brands_in", "brands_out"):
            spelled = []
            for b in values[name]:
                if not isinstance(b, str) or b.casefold() not in by_key:
                    close = [k for k in by_key if isinstance(b, str) and b.casefold()[:3] in k][:5]
                    hint = f"; similar: {[by_key[k] for k in close]}" if close else ""
                    raise ValueError(f"{name}: {b!r} is not a brand in this catalog{hint}")
                spelled.append(by_key[b.casefold()])
            values[name] = tuple(dict.fromkeys(spelled))
        paths = self.category_paths
        for name in ("categories", "categories_out"):
            for p in values[name]:
                if not all(isinstance(x, str) for x in p) or tuple(p) not in paths:
                    raise ValueError(
                        f"{name}: {' > '.join(map(str, p))!r} is not a category path in this catalog "
                        "(give it from the top, e.g. ('Beauty', 'Skin Care'), or as 'Beauty > Skin Care')"
                    )
        missing = [i for i in values["exclude_items"] if not isinstance(i, str) or i not in self.catalog]
        if missing:
            raise ValueError(f"exclude_items: unknown item ids {missing[:5]}")
        return Constraints(**values)  # checks price_min <= price_max

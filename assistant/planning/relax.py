"""Relaxing the hard filters of a turn that match no item: ``relax(constraints, matches, ...)``
drops (or, for prices, widens) one group of filters at a time, least certain first, until
something matches, and says which groups it loosened.

The order: the brands asked for (``brands_in``: often a loose reading of a name), price bounds
that came from relative words ("cheaper", "too expensive"), the release years, price bounds the
shopper stated, and last the category. What the shopper ruled out (``brands_out``,
``categories_out``, ``exclude_items``: disliked, already bought or shown) is never relaxed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retrieval.filters import Constraints

# The groups ``relax`` may loosen, in order (the names it returns).
BRANDS = "brands_in"
RELATIVE_PRICE = "price_relative"
YEARS = "years"
PRICE = "price"
CATEGORY = "categories"
ORDER = (BRANDS, RELATIVE_PRICE, YEARS, PRICE, CATEGORY)


def relax(
    constraints: Constraints,
    matches: Callable[[Constraints], bool],
    *,
    prices: Callable[[Constraints], Sequence[float]] | None = None,
    relative_price: bool = False,
    years_out: Sequence[str] = (),
    page: int = 5,
) -> tuple[Constraints, list[str]]:
    """The loosest-needed constraints that match something, and the groups loosened (``ORDER``).

    ``constraints``: the turn's filters with this page's exclusions, but without the items outside
    the wanted release years, which come as ``years_out`` (the years group). ``matches``: whether
    any item passes. ``prices``: the prices of the priced items that pass; with it a price bound is
    widened to take in the ``page`` nearest prices instead of dropped. ``relative_price``: the
    price bounds came from relative words. Returns the constraints to search with (the years'
    exclusions included unless loosened) and the groups loosened, in order; when even the
    loosest allowed matches nothing, the constraints as given (with the years) and ``[]``.
    """
    with_years = constraints.excluding(years_out)
    if matches(with_years):
        return with_years, []
    current, years, dropped = constraints, tuple(years_out), []
    for group in ORDER:
        present = {
            BRANDS: bool(current.brands_in),
            RELATIVE_PRICE: relative_price and current.has_price,
            YEARS: bool(years),
            PRICE: not relative_price and current.has_price,
            CATEGORY: bool(current.categories),
        }[group]
        if not present:
            continue
        if group == BRANDS:
            current = current.merged(brands_in=())
        elif group == YEARS:
            years = ()
        elif group == CATEGORY:
            current = current.merged(categories=())
        else:
            lo, hi = _widened(current.excluding(years), matches, prices, page)
            current = current.merged(price_min=lo, price_max=hi)
        dropped.append(group)
        candidate = current.excluding(years)
        if matches(candidate):
            return candidate, dropped
    return with_years, []


def _widened(
    constraints: Constraints,
    matches: Callable[[Constraints], bool],
    prices: Callable[[Constraints], Sequence[float]] | None,
    page: int,
) -> tuple[float | None, float | None]:
    """The price bounds moved out just far enough to take in the ``page`` priced items nearest to
    them (the cheapest above a ceiling, the dearest below a floor); dropped when nothing priced
    would pass. The years' exclusions in ``constraints`` only narrow the prices looked at."""
    lo, hi = constraints.price_min, constraints.price_max
    free = constraints.merged(price_min=None, price_max=None)
    found = sorted(prices(free)) if prices is not None else []
    if not found:
        return None, None

    def gap(p: float) -> float:
        return max((lo or 0.0) - p, p - hi if hi is not None else 0.0, 0.0)

    near = sorted(found, key=gap)[: max(1, page)]
    bounds = (None if lo is None else min(lo, *near), None if hi is None else max(hi, *near))
    return bounds if matches(free.merged(price_min=bounds[0], price_max=bounds[1])) else (None, None)

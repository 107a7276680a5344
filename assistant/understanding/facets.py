"""What a catalog lets a shopper choose by, so clarifying questions ask only about that.

A movie catalog has genres and release years but no brands, colours or prices; a beauty catalog
has brands, prices and product types. ``CatalogFacets.from_catalog`` reads this from the items
themselves (brands present, prices present, release years, colour words in titles, the category
names under the root). ``splitting`` keeps the facets on which the current candidates really
differ (a budget question is pointless when every candidate costs about the same), and
``question`` / ``opening_question`` word the question from ``prompts/templates/questions``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import prompts
from assistant.understanding import lexicon
from assistant.understanding.tokens import normalize
from retrieval.data.schema import Catalog, Item

__all__ = ["FACETS", "CatalogFacets", "Facet"]

Facet = Literal["kind", "price", "brand", "decade", "colour"]
# In the order a question names them: what it is first, then what it costs, then who makes it.
FACETS: tuple[Facet, ...] = ("kind", "price", "brand", "decade", "colour")
# A facet counts when at least this share of items carries it (a few stray brands on a movie
# catalog do not make brands a facet).
MIN_FACET_SHARE = 0.2
MAX_EXAMPLES = 3
# A facet splits the candidates when at least half of them carry it and no single value covers
# more than this share of those (a question whose every answer keeps ~all candidates narrows nothing).
MAX_MAJORITY = 0.8
# Prices split the candidates when the upper quartile is at least this multiple of the lower one.
PRICE_SPREAD = 1.5
MAX_FACETS_ASKED = 2  # one short question


@dataclass(frozen=True)
class CatalogFacets:
    """The facets a catalog's items carry; ``kinds`` are the most common category names at
    ``kind_depth`` (below a single root such as "Beauty" or "Movies")."""

    has_brands: bool = True
    has_prices: bool = True
    has_colours: bool = True
    has_years: bool = False
    latest_year: int | None = None  # the newest release year (a work named after it is "newer")
    kinds: tuple[str, ...] = ()
    kind_depth: int = 0

    def __post_init__(self) -> None:
        if not all(isinstance(k, str) and k for k in self.kinds):
            raise ValueError("kinds must be non-empty category names")
        if self.kind_depth < 0:
            raise ValueError(f"kind_depth must be >= 0, got {self.kind_depth}")

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogFacets:
        items = list(catalog)
        n = max(1, len(items))
        coloured = sum(1 for it in items if _colour(it) is not None)
        released = [y for it in items if isinstance(y := it.attributes.get("release_year"), int)]
        years = len(released)
        roots = {it.categories[0] for it in items if it.categories}
        depth = 1 if len(roots) == 1 else 0  # a single root ("Beauty", "Movies") names nothing
        kinds = Counter(it.categories[depth] for it in items if len(it.categories) > depth)
        has_brands = catalog.has_brands
        return cls(
            has_brands=has_brands,
            has_prices=catalog.has_prices,
            # Colour is a made product's facet: in a catalog of titles without makers (movies,
            # books), "Red" or "Blue" in a title names no colour to choose by.
            has_colours=has_brands and coloured >= 0.05 * n,
            has_years=years >= MIN_FACET_SHARE * n,
            latest_year=max(released) if released else None,
            kinds=tuple(k for k, _ in kinds.most_common(MAX_EXAMPLES)),
            kind_depth=depth,
        )

    @property
    def available(self) -> tuple[Facet, ...]:
        """The facets this catalog's items carry, in question order."""
        has = {
            "kind": bool(self.kinds),
            "price": self.has_prices,
            "brand": self.has_brands,
            "decade": self.has_years,
            "colour": self.has_colours,
        }
        return tuple(f for f in FACETS if has[f])

    def splitting(self, candidates: Sequence[Item], wanted: Sequence[str]) -> tuple[Facet, ...]:
        """Those of ``wanted`` (facets the conversation left open) on which ``candidates`` differ
        enough for an answer to narrow them, at most ``MAX_FACETS_ASKED``, in question order."""
        out: list[Facet] = []
        for facet in FACETS:
            if facet in wanted and facet in self.available and self._splits(facet, candidates):
                out.append(facet)
        return tuple(out[:MAX_FACETS_ASKED])

    def _splits(self, facet: Facet, candidates: Sequence[Item]) -> bool:
        if facet == "price":
            prices = sorted(it.price for it in candidates if it.price is not None and it.price > 0)
            if len(prices) < max(2, len(candidates) / 2):
                return False
            return prices[(3 * len(prices)) // 4] >= PRICE_SPREAD * prices[len(prices) // 4]
        values = [self._value(facet, it) for it in candidates]
        known = [v for v in values if v is not None]
        if len(known) < max(2, len(candidates) / 2):
            return False
        return Counter(known).most_common(1)[0][1] <= MAX_MAJORITY * len(known)

    def _value(self, facet: Facet, item: Item) -> Hashable | None:
        if facet == "kind":
            return item.categories[self.kind_depth] if len(item.categories) > self.kind_depth else None
        if facet == "brand":
            return normalize(item.brand) if item.brand and item.brand.strip() else None
        if facet == "decade":
            year = item.attributes.get("release_year")
            return year // 10 if isinstance(year, int) else None
        return _colour(item)

    def question(self, facets: Sequence[Facet], lang: str, candidates: Sequence[Item] = ()) -> str | None:
        """The short question after a reply's items, naming ``facets`` (None when there are none);
        a kind question gives the candidates' most common kinds as examples."""
        if not facets:
            return None
        strings = prompts.load_strings("questions", lang)
        counts = Counter(self._value("kind", it) for it in candidates)
        counts.pop(None, None)
        examples = tuple(str(k) for k, _ in counts.most_common(MAX_EXAMPLES)) or self.kinds
        return strings.format("narrow", facets=self._phrases(facets, strings, _named(examples, lang)))

    def opening_question(self, lang: str, ask_budget: bool) -> str:
        """What to ask a shopper who named nothing searchable: the catalog's own facets."""
        strings = prompts.load_strings("questions", lang)
        facets = [f for f in self.available if f in ("kind", "brand", "decade") or (f == "price" and ask_budget)]
        kinds = _named(self.kinds, lang)
        if self.has_brands:  # products, not titles: a type, a brand, who it is for, a budget
            phrases = self._phrases(facets, strings, kinds, recipient=True)
            return strings.format("open_products", facets=phrases)
        return strings.format("open_titles", facets=self._phrases(facets, strings, kinds))

    def _phrases(
        self, facets: Sequence[Facet], strings: prompts.ReplyStrings, examples: Sequence[str], recipient: bool = False
    ) -> str:
        parts = []
        for f in facets:
            if f == "kind":
                ex = strings.format("examples", examples=_or_list(examples, strings)) if examples else ""
                parts.append(strings.format("facet_type" if self.has_brands else "facet_kind", examples=ex))
            else:
                parts.append(strings.format(f"facet_{f}"))
            if f == "brand" and recipient:
                parts.append(strings.format("facet_recipient"))
        return _or_list(parts, strings)


def _named(kinds: Sequence[str], lang: str) -> tuple[str, ...]:
    """Category names as the shopper's language says them: in Chinese the first Chinese alias
    the vocabulary gives a node ("Comedy" -> 喜剧), else the catalog's own name."""
    if lang != "zh":
        return tuple(kinds)
    zh: dict[str, str] = {}
    for alias, targets in lexicon.aliases("vocabulary", "category_aliases_zh").items():
        for target in targets:
            zh.setdefault(target.casefold(), alias)
    return tuple(zh.get(k.casefold(), k) for k in kinds)


def _or_list(parts: Sequence[str], strings: prompts.ReplyStrings) -> str:
    """ "a, b or c" in the strings' language."""
    if len(parts) <= 1:
        return "".join(parts)
    sep, last = strings.strings["or_sep"], strings.strings["or_last"]
    return sep.join(parts[:-1]) + last + parts[-1]


def _colour(item: Item) -> str | None:
    """The first colour word of an item's title, if any."""
    colours = lexicon.words("vocabulary", "colour_words")
    return next((w for w in normalize(item.title).split() if w in colours), None)

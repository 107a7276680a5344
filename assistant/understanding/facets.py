"""What a catalog lets a shopper choose by, so clarifying questions ask only about that.

A movie catalog has genres and release years but no brands, colours or prices; a beauty catalog
has brands, prices and product types. ``CatalogFacets.from_catalog`` reads this from the items
themselves (brands present, prices present, release years, colour words in titles, the category
names under the root), and ``question`` words the "what else would help" question from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from assistant.understanding import lexicon
from assistant.understanding.tokens import normalize
from retrieval.data.schema import Catalog

__all__ = ["CatalogFacets"]

# A facet counts when at least this share of items carries it (a few stray brands on a movie
# catalog do not make brands a facet).
MIN_FACET_SHARE = 0.2
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class CatalogFacets:
    """The facets a catalog's items carry; ``kinds`` are the most common category names below the root."""

    has_brands: bool = True
    has_prices: bool = True
    has_colours: bool = True
    has_years: bool = False
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not all(isinstance(k, str) and k for k in self.kinds):
            raise ValueError("kinds must be non-empty category names")

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogFacets:
        items = list(catalog)
        n = max(1, len(items))
        colours = lexicon.words("vocabulary", "colour_words")
        coloured = sum(1 for it in items if colours & set(normalize(it.title).split()))
        years = sum(1 for it in items if isinstance(it.attributes.get("release_year"), int))
        roots = {it.categories[0] for it in items if it.categories}
        depth = 1 if len(roots) == 1 else 0  # a single root ("Beauty", "Movies") names nothing
        kinds = Counter(it.categories[depth] for it in items if len(it.categories) > depth)
        return cls(
            has_brands=sum(1 for it in items if it.brand and it.brand.strip()) >= MIN_FACET_SHARE * n,
            has_prices=catalog.has_prices,
            has_colours=coloured >= 0.05 * n,
            has_years=years >= MIN_FACET_SHARE * n,
            kinds=tuple(k for k, _ in kinds.most_common(MAX_EXAMPLES)),
        )

    def _examples(self, zh: bool) -> str:
        if not self.kinds:
            return ""
        if zh:
            return "(例如" + "、".join(self.kinds) + ")"
        head = ", ".join(self.kinds[:-1])
        return f" (e.g. {head} or {self.kinds[-1]})" if head else f" (e.g. {self.kinds[-1]})"

    def opening_question(self, zh: bool, ask_budget: bool) -> str:
        """What to ask a shopper who named nothing yet: the catalog's own facets."""
        if self.has_brands:
            if zh:
                return "您想买什么类型的商品?可以告诉我品类、品牌或者送给谁。" + (
                    "大概预算是多少?" if ask_budget else ""
                )
            return "What are you shopping for? Tell me a product type, a brand, or who it's for" + (
                ", and roughly your budget." if ask_budget else "."
            )
        if zh:
            decade = "或年代" if self.has_years else ""
            return f"您想找什么样的?可以告诉我类型{self._examples(True)}{decade}。" + (
                "大概预算是多少?" if ask_budget else ""
            )
        decade = " or a decade" if self.has_years else ""
        budget = ", and roughly your budget." if ask_budget else "."
        return f"What are you in the mood for? Tell me a kind{self._examples(False)}{decade}" + budget

    def detail_question(self, zh: bool) -> str:
        """What to ask a shopper who named a type: the facets left to choose by."""
        if self.has_brands:
            if zh:
                return "主要用途是什么?有没有偏好的品牌、" + ("颜色或" if self.has_colours else "") + "功效?"
            listed = "brand, colour or feature" if self.has_colours else "brand or feature"
            return f"What will you use it for, and do you prefer any {listed}?"
        if zh:
            return "有什么特别想要的吗?比如" + ("年代、" if self.has_years else "") + "风格或主题?"
        return (
            "Anything in particular, like " + ("a decade, " if self.has_years else "") + "a mood or a theme?"
        )

"""What the rules read from one utterance: ``ParsedUtterance`` and the types it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.understanding.matches import Ambiguous, Mention
from assistant.understanding.mentions import ItemMention
from prompts.loader import load_strings
from retrieval.filters import PricePreference
from retrieval.text import Language

__all__ = [
    "AROUND_BAND",
    "MAX_PARSE_CHARS",
    "MAX_SANE_PRICE",
    "Era",
    "Issue",
    "LLMFallback",
    "Language",
    "ParsedUtterance",
    "PriceSpec",
    "Reference",
]

MAX_PARSE_CHARS = 2000
AROUND_BAND = 0.25
MAX_SANE_PRICE = 1e9
# A release-era lean (``leanings.extract_era``): a direction ("newer", "older") or the black-and-white era.
Era = Literal["newer", "older", "classic"]

LLMFallback = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Issue:
    """Something the assistant should tell or ask the shopper; ``clarify`` ones block the edit."""

    code: str
    message: str
    message_zh: str
    severity: Literal["clarify", "info"] = "clarify"

    @classmethod
    def note(
        cls,
        code: str,
        severity: Literal["clarify", "info"] = "clarify",
        *,
        key: str | None = None,
        **values: Any,
    ) -> Issue:
        """The issue with both texts rendered from the ``notes`` strings (``key``, default ``code``);
        both, because the state stores the note and the language may change on a later turn."""
        en, zh = (load_strings("notes", lang).format(key or code, **values) for lang in ("en", "zh"))
        return cls(code, en, zh, severity)

    def text(self, language: str = "en") -> str:
        return self.message_zh if language == "zh" else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "message_zh": self.message_zh,
            "severity": self.severity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Issue:
        return cls(d["code"], d["message"], d["message_zh"], d.get("severity", "clarify"))


@dataclass(frozen=True)
class PriceSpec:
    """A validated price bound as stated (no conversion); ``currency`` is an ISO code or None."""

    low: float | None
    high: float | None
    op: Literal["max", "min", "range", "around"]
    currency: str | None = None
    surface: str = ""


@dataclass(frozen=True)
class Reference:
    """Items of the last shown list the shopper points at, as 0-based positions or a selector."""

    kind: Literal["index", "first_n", "last_n", "this", "cheapest", "priciest", "all"]
    positions: tuple[int, ...] = ()
    count: int = 0
    surface: str = ""


@dataclass(frozen=True)
class ParsedUtterance:
    """Everything one utterance says about constraints; ``DialogueState.apply`` folds it in."""

    text: str
    language: Language = "en"
    language_confident: bool = False
    price: PriceSpec | None = None
    relative_price: Literal["lower", "higher"] | None = None  # than the page shown: becomes a bound
    price_preference: PricePreference | None = None  # a standing wish: weighed in ranking only
    currency: str | None = None
    brands_in: tuple[str, ...] = ()
    brands_out: tuple[str, ...] = ()
    categories_in: tuple[tuple[str, ...], ...] = ()
    categories_out: tuple[tuple[str, ...], ...] = ()
    weak_categories: tuple[tuple[str, ...], ...] = ()
    only: bool = False
    additive: bool = False
    exclude_shown: bool = False
    similar: bool = False
    other_brand: bool = False  # "a different brand": the brands last shown are ruled out
    references: tuple[Reference, ...] = ()
    feedback: Literal["like", "dislike"] | None = None
    query: str = ""
    # Soft preferences: what the shopper said that is no filter ("disposable", "multi cap", a
    # brand-like word without brand context, a typo'd brand's catalog spelling); ranking scores
    # them and explanations may cite them. Every word of them is also in ``query``.
    preferences: tuple[str, ...] = ()
    # The catalog brands / category paths among them (a plain-word brand without context, a typo'd
    # brand or product type; not a word the titles use for other categories): for a ranker's soft
    # facets (``retrieval.ranker`` ``preferences=Constraints(...)``), never for filters.
    soft_brands: tuple[str, ...] = ()
    soft_categories: tuple[tuple[str, ...], ...] = ()
    # Product types the shopper would rather not see but did not rule out ("不要太恐怖的电影",
    # "nothing too scary"): a ranking penalty, never a filter.
    avoided_categories: tuple[tuple[str, ...], ...] = ()
    # Plain words under a negation ("not yellow", "nothing plastic"): they leave the query, and an
    # item whose name carries one is ranked down (a penalty, never a filter).
    avoided_words: tuple[str, ...] = ()
    years: tuple[int, int] | None = None  # release years, inclusive ("the 1990s" -> (1990, 1999))
    era: Era | None = None  # "something recent", "old movies", "black and white": a ranking lean
    niche: bool = False  # "something less known", "hidden gems": popularity counts against an item
    ambiguities: tuple[Ambiguous, ...] = ()
    issues: tuple[Issue, ...] = ()
    unresolved: tuple[str, ...] = ()
    source: Literal["rules", "rules+llm"] = "rules"
    mentions: tuple[Mention, ...] = field(default=(), compare=False, repr=False)
    # Catalog items the shopper named ("I loved Toy Story", "not the Olay"), with their polarity:
    # ``DialogueState.apply`` folds them in as likes, dislikes and items not to show again.
    item_mentions: tuple[ItemMention, ...] = ()

    @property
    def n_constraints(self) -> int:
        """How many distinct hard constraints this utterance gave (price, brand, category...)."""
        return sum(
            bool(x)
            for x in (
                self.price is not None
                or self.relative_price is not None
                or self.price_preference is not None,
                self.brands_in or self.brands_out,
                self.categories_in,
                self.categories_out,
            )
        )

    @property
    def has_reading(self) -> bool:
        """Did the rules read a wish beyond plain words to search: a filter, a reference, a page
        rejected, a kind or era leaned to, a named item ("hey! any silent movies?" leaves no word)?"""
        return bool(
            self.n_constraints
            or self.references
            or self.exclude_shown
            or self.weak_categories
            or self.years
            or self.era
            or self.niche
            or self.soft_categories
            or self.avoided_categories
            or self.item_mentions
        )

    @property
    def has_content(self) -> bool:
        """Did the rules understand anything shopping-related (a reading, or words to search or avoid)?"""
        return bool(self.has_reading or self.query or self.avoided_words)

    @property
    def needs_llm(self) -> bool:
        return bool(self.unresolved)

"""Typed results of one assistant turn: the reply, its product cards and the stream events.

Cards (``RecommendedItem``) are copied from the catalog, never from LLM tokens,
so a UI can render them before the first text token arrives and they can never
carry a hallucinated price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from retrieval.filters import Constraints

Intent = Literal["recommend", "search", "compare", "details", "bundle", "clarify", "smalltalk", "refuse"]
INTENTS: tuple[str, ...] = (
    "recommend",
    "search",
    "compare",
    "details",
    "bundle",
    "clarify",
    "smalltalk",
    "refuse",
)


@dataclass
class RecommendedItem:
    """One product card: catalog facts plus why it was chosen."""

    item_id: str
    title: str
    price: float | None = None
    brand: str | None = None
    categories: tuple[str, ...] = ()
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    # Per-signal contributions from the fused ranker (signal name -> share of the score).
    contributions: dict[str, float] = field(default_factory=dict)
    rating: float | None = None
    in_stock: bool = True
    # The catalog's image: an http(s) URL or a local file path (``Item.image``); a client shows
    # a local one itself and fetches a remote one only if its user allows it.
    image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d


@dataclass
class ComparisonRow:
    """One catalog attribute across the compared items (``None`` = not in the catalog)."""

    attribute: str
    values: list[Any]


@dataclass
class Comparison:
    """Side-by-side table of catalog facts for two or more items."""

    item_ids: list[str]
    titles: list[str]
    rows: list[ComparisonRow]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        header = "| | " + " | ".join(self.titles) + " |"
        sep = "|---" * (len(self.titles) + 1) + "|"
        lines = [header, sep]
        for row in self.rows:
            cells = ["–" if v is None or v == "" else str(v) for v in row.values]
            lines.append(f"| {row.attribute} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


@dataclass
class Bundle:
    """Items meant to be bought together, with the catalog total and the budget it respects."""

    item_ids: list[str]
    total_price: float | None
    budget: float | None = None
    anchor_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GroundingViolation:
    """One unsupported statement found in the LLM output."""

    kind: Literal[
        "non_candidate_product",
        "unknown_product",
        "unknown_id",
        "price_mismatch",
        "brand_mismatch",
        "prompt_leak",  # the reply repeats the system prompt or the prompt's labels
        "wrong_language",  # a sentence not in the shopper's language
    ]
    text: str
    detail: str = ""


@dataclass
class GroundingReport:
    """What the grounding check found, and what was done about it."""

    violations: list[GroundingViolation] = field(default_factory=list)
    regenerated: bool = False
    fallback: bool = False
    checked: bool = True

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reply:
    """Everything one ``ShoppingAssistant.chat`` turn produced."""

    text: str
    items: list[RecommendedItem]
    constraints: Constraints
    intent: str
    session_id: str
    user_id: str | None = None
    comparison: Comparison | None = None
    bundle: Bundle | None = None
    grounding: GroundingReport = field(default_factory=GroundingReport)
    language: str = "en"
    # A clarifying question: the whole ``text`` of a "clarify" reply, else the end of ``text``
    # after the items (at most one per reply), so a client can both show the items and ask.
    question: str | None = None
    # Timings (seconds), which LLM ran, the parser's notes... Free-form, for logs and benchmarks.
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "items": [it.to_dict() for it in self.items],
            "constraints": self.constraints.to_dict(),
            "intent": self.intent,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "bundle": None if self.bundle is None else self.bundle.to_dict(),
            "grounding": self.grounding.to_dict(),
            "language": self.language,
            "question": self.question,
            "meta": self.meta,
        }


# --- streaming events ------------------------------------------------------------------
@dataclass
class ItemsEvent:
    """First event of a stream: the cards and the constraints in force (from data, not tokens)."""

    items: list[RecommendedItem]
    constraints: Constraints
    intent: str
    comparison: Comparison | None = None
    bundle: Bundle | None = None
    type: Literal["items"] = "items"


@dataclass
class TextDelta:
    """A piece of reply text, in order."""

    text: str
    type: Literal["text"] = "text"


@dataclass
class TextReset:
    """The text streamed so far failed the grounding check and is replaced by ``text``."""

    text: str
    type: Literal["reset"] = "reset"


@dataclass
class DoneEvent:
    """Last event: the complete, grounded reply (same as ``chat`` would return)."""

    reply: Reply
    type: Literal["done"] = "done"


StreamEvent = ItemsEvent | TextDelta | TextReset | DoneEvent


def event_to_dict(event: StreamEvent) -> dict[str, Any]:
    """One stream event as JSON-ready data; ``type`` is ``items``, ``text``, ``reset`` or ``done``
    (the HTTP API's server-sent events and ``ShoppingAssistant.as_runnable().stream``)."""
    if isinstance(event, DoneEvent):
        return {"type": event.type, "reply": event.reply.to_dict()}
    if isinstance(event, ItemsEvent):
        return {
            "type": event.type,
            "items": [it.to_dict() for it in event.items],
            "constraints": event.constraints.to_dict(),
            "intent": event.intent,
            "comparison": None if event.comparison is None else event.comparison.to_dict(),
            "bundle": None if event.bundle is None else event.bundle.to_dict(),
        }
    return asdict(event)

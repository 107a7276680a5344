"""What a turn will say, decided from data before any token is generated (the planning stage's
output, the generation stage's input), and the card every planner builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.grounding import GroundingContext
from assistant.reply import Bundle, Comparison, RecommendedItem
from retrieval.data.schema import Item
from retrieval.filters import Constraints


@dataclass
class Plan:
    """What a turn will say, decided from data before any token is generated."""

    intent: str
    items: list[RecommendedItem] = field(default_factory=list)
    comparison: Comparison | None = None
    bundle: Bundle | None = None
    messages: list[Any] | None = None  # LLM prompt; None = template reply only
    repair_values: dict[str, Any] | None = None
    fallback: str = ""
    # A short clarifying question: the whole reply of a "clarify" plan, else said after the items.
    question: str | None = None
    # Sentences the reply opens with, whichever answers (template or LLM): e.g. which filter was
    # loosened to find anything (``RecommendPlanner``).
    said: list[str] = field(default_factory=list)
    # The filters the cards satisfy when not the turn's: those a relaxed search kept.
    constraints: Constraints | None = None
    grounding: GroundingContext | None = None
    card_lines: list[str] = field(default_factory=list)  # prompt card lines (the prose guard checks copies)
    max_sentences: int | None = None  # this reply's sentence cap, when tighter than the assistant's
    meta: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)  # stage seconds + LLM token counts


def card(item: Item, score: float, reasons: list[str], contributions: dict[str, float]) -> RecommendedItem:
    return RecommendedItem(
        item_id=item.item_id,
        title=item.title,
        price=item.price,
        brand=item.brand,
        categories=item.categories,
        score=float(score),
        reasons=list(reasons),
        contributions={k: round(float(v), 4) for k, v in contributions.items()},
        rating=item.rating,
        in_stock=item.in_stock,
        image=item.image,
    )

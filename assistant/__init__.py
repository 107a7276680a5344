"""The conversational shopping assistant: dialogue state, grounded LLM replies, explanations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant.reply import (
    INTENTS,
    Bundle,
    Comparison,
    ComparisonRow,
    DoneEvent,
    GroundingReport,
    GroundingViolation,
    ItemsEvent,
    RecommendedItem,
    Reply,
    StreamEvent,
    TextDelta,
    TextReset,
)

if TYPE_CHECKING:
    from assistant.profile import UserProfile
    from assistant.shopping_assistant import ShoppingAssistant

__all__ = [
    "INTENTS",
    "Bundle",
    "Comparison",
    "ComparisonRow",
    "DoneEvent",
    "GroundingReport",
    "GroundingViolation",
    "ItemsEvent",
    "RecommendedItem",
    "Reply",
    "ShoppingAssistant",
    "StreamEvent",
    "TextDelta",
    "TextReset",
    "UserProfile",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing a light submodule (assistant.reply, assistant.privacy) must not load
    # Chroma, torch and the retrieval stack.
    if name == "ShoppingAssistant":
        from assistant.shopping_assistant import ShoppingAssistant

        return ShoppingAssistant
    if name == "UserProfile":
        from assistant.profile import UserProfile

        return UserProfile
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")

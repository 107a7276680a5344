"""The conversational shopping assistant: dialogue state, grounded LLM replies, explanations."""

from __future__ import annotations

import os as _os
import sys as _sys

if "torch" not in _sys.modules:  # before torch loads: see llm/models.py (OpenMP spin-wait cliff)
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import TYPE_CHECKING, Any

# Local-only mode ($SHOPASSIST_LOCAL_ONLY=1) sets the offline/telemetry variables and the socket
# guard here, at the package's first import, before anything loads transformers or gradio.
from assistant.privacy import apply_local_only_from_env

apply_local_only_from_env()

from assistant.reply import (  # noqa: E402
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
    # Lazy: importing a light submodule (assistant.reply, llm.models) must not load
    # Chroma, torch and the retrieval stack.
    if name == "ShoppingAssistant":
        from assistant.shopping_assistant import ShoppingAssistant

        return ShoppingAssistant
    if name == "UserProfile":
        from assistant.profile import UserProfile

        return UserProfile
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")

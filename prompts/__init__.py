"""Versioned prompt templates (EN + ZH) and their loader."""

from __future__ import annotations

from prompts.loader import (
    LANGUAGES,
    TEMPLATE_DIR,
    PromptError,
    PromptTemplate,
    ReplyStrings,
    available,
    load,
    load_strings,
)

__all__ = [
    "LANGUAGES",
    "TEMPLATE_DIR",
    "PromptError",
    "PromptTemplate",
    "ReplyStrings",
    "available",
    "load",
    "load_strings",
]

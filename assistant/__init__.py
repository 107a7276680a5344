"""The conversational shopping assistant: dialogue state, grounded LLM replies, explanations."""

from __future__ import annotations

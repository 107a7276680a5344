"""Text clean-up and the claimed-span mask shared by the extractors.

Each extractor marks the characters it consumed in a ``taken`` bytearray, so a later one never
reads them again ("the first two" is a reference, not a price of two).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Sequence

from assistant.understanding.utterance import MAX_PARSE_CHARS, Issue

__all__ = ["clean", "mask", "overlaps", "scan_cues", "take"]


def clean(text: str) -> tuple[str, list[Issue]]:
    """NFKC text cut to ``MAX_PARSE_CHARS``, control and format characters as spaces (offsets kept)."""
    issues: list[Issue] = []
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_PARSE_CHARS:
        text = text[:MAX_PARSE_CHARS]
        issues.append(
            Issue(
                "truncated",
                f"Your message is long; I only read its first {MAX_PARSE_CHARS} characters for filters.",
                f"消息太长,我只读取了前{MAX_PARSE_CHARS}个字符来理解筛选条件。",
                "info",
            )
        )
    with contextlib.suppress(ValueError, TypeError):
        text = unicodedata.normalize("NFKC", text)
    if len(text) > MAX_PARSE_CHARS * 2:
        text = text[: MAX_PARSE_CHARS * 2]
    chars = [" " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") else c for c in text]
    return "".join(chars), issues


def overlaps(taken: bytearray, a: int, b: int) -> bool:
    """Is any character of ``[a, b)`` already claimed?"""
    return any(taken[a:b])


def take(taken: bytearray, a: int, b: int) -> None:
    """Claim ``[a, b)``."""
    taken[a:b] = b"\x01" * (b - a)


def mask(text: str, taken: bytearray, spans: Sequence[tuple[int, int]] = ()) -> str:
    """The text with claimed characters, and those of ``spans``, blanked (offsets unchanged)."""
    out = "".join(" " if taken[i] else c for i, c in enumerate(text))
    for a, b in spans:
        out = out[:a] + " " * (b - a) + out[b:]
    return out


def scan_cues(pattern: re.Pattern[str], text: str, taken: bytearray) -> list[tuple[int, int]]:
    """Spans of ``pattern`` that do not touch claimed characters."""
    return [m.span() for m in pattern.finditer(text) if not overlaps(taken, *m.span())]

"""The streaming guard: checks on reply text as it streams (a looping phrase, a copied prompt
card, an echoed system prompt) and the end-of-reply tidying."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from assistant.grounding import GroundingViolation
from assistant.llm_setup import chunk_text
from retrieval.text import HAN_RE, sentence_ends

_PROMPT_LABELS = re.compile(r"^\s*(?:CANDIDATES|Shopper|Filters|SCHEMA)\s*[:：]", re.MULTILINE)


def prompt_echo(text: str, messages: Sequence[Any]) -> list[GroundingViolation]:
    """Violations for reply text that repeats a system-prompt sentence (>= 24 chars) or starts a
    line with a prompt label ("CANDIDATES:", "Shopper:"): the model is leaking its instructions."""
    out = []
    folded = " ".join(text.split()).casefold()
    for msg in messages[:1]:  # the system message
        system = chunk_text(msg)
        for sent in re.split(r"(?<=[.!?。！？])\s*|\n+", system):
            sent = " ".join(sent.split())
            if len(sent) >= 24 and sent.casefold() in folded:
                out.append(GroundingViolation("prompt_leak", sent[:80], "repeats the system prompt"))
                break
    m = _PROMPT_LABELS.search(text)
    if m:
        out.append(GroundingViolation("prompt_leak", m.group(0).strip(), "repeats the prompt's scaffolding"))
    return out


def wrong_language(text: str, language: str) -> list[GroundingViolation]:
    """A violation for the first sentence not in the shopper's language: one without a Chinese
    character in a reply to a Chinese shopper ("The Wizard of Oz (1939) is a great choice", from a
    small model that drifted to English), or one with Chinese in a reply to an English shopper.
    Titles stay as the catalog spells them, so a Chinese sentence may carry English words."""
    starts = [0, *sentence_ends(text)]
    for sent in (text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)):
        if sent.strip() and bool(HAN_RE.search(sent)) != (language == "zh"):
            return [
                GroundingViolation(
                    "wrong_language", sent.strip()[:80], f"not in the shopper's language ({language})"
                )
            ]
    return []


_CARD_TAG = re.compile(
    r"\[id=|^\s*(?:\d{1,2}\.|[-*•])\s+\S|\s\|\s|\bwhy(?: it fits)?:|\bbest match:|\bother options:",
    re.MULTILINE | re.IGNORECASE,
)
_FACTS_PAREN = re.compile(r"\([^()]*,[^()]*\)")  # "(Drama, rated 3.6)": a v1 card's facts


REPEAT_NGRAM = 6
"""Words a phrase must share with an earlier one, not overlapping it, to count as a loop."""
_WORD_SPAN = re.compile(r"\S+")


def repeated_phrase_start(text: str, n: int = REPEAT_NGRAM) -> int | None:
    """Character offset where ``text`` starts repeating an earlier ``n``-word phrase, or None.

    Greedy decoding of a small model sometimes loops on a clause; the reply is cut there.
    Six words keeps two similarly named products in one sentence apart from a loop."""
    spans = [(m.start(), re.sub(r"[^\w$]", "", m.group().casefold())) for m in _WORD_SPAN.finditer(text)]
    first: dict[tuple[str, ...], int] = {}
    for i in range(len(spans) - n + 1):
        gram = tuple(w for _, w in spans[i : i + n])
        if i - first.setdefault(gram, i) >= n:
            return spans[i][0]
    return None


def card_copy(text: str, card_lines: Sequence[str]) -> bool:
    """True when reply ``text`` reproduces a prompt card line instead of writing a sentence.

    Copying shows as the card's scaffolding (``[id=`` tags, list markers, ``|`` separators,
    ``why:``), its facts verbatim ("(Drama, rated 3.6)") or its reasons verbatim in the card's
    order ("matches what you asked for; in Drama"). Naming a title or using one reason in a
    sentence is what the prompt asks for, so those do not count.
    """
    if _CARD_TAG.search(text):
        return True
    folded = " ".join(text.split()).casefold()
    return any(marker in folded for line in card_lines for marker in _copy_markers(line))


def _copy_markers(line: str) -> list[str]:
    line = " ".join(line.split()).casefold()
    out: list[str] = []
    if " | " in line:  # v2 card: "- title | facts... | why: r1; r2"
        why = next((f[4:].strip() for f in line.split(" | ") if f.startswith("why:")), "")
    elif "why it fits: " in line:  # recommend v2 best match: "title, a drama ...; why it fits: r1; r2"
        why = line.split("why it fits: ", 1)[1]
    else:  # v1 compact "1. [id=x] title (facts): r1; r2" or full "... (facts). why: r1; r2"
        out += _FACTS_PAREN.findall(line)
        why = (
            line.split("): ", 1)[1]
            if "): " in line
            else line.split("why: ", 1)[-1]
            if "why: " in line
            else ""
        )
    if ";" in why:  # two or more reasons, verbatim and in order
        out.append(why.strip())
    return [m for m in out if len(m) >= 12]


def whole_sentences(text: str) -> str:
    """``text`` up to its last finished sentence ("" if none): a reply stopped by the token budget
    then ends cleanly instead of mid-clause with an ellipsis."""
    text = text.strip()
    if not text or (re.search(r"[.!?。！？…]$", text) and not re.search(r"\d\.$", text)):
        return text  # finished (a final "4." may be the start of "4.5": not finished)
    ends = [m.end() for m in re.finditer(r"(?<!\b\d)(?<!\b\d\d)[.!?](?=\s)|[。！？]", text)]
    return text[: ends[-1]].strip() if ends else ""


def tidy(text: str) -> str:
    """Trim whitespace; a reply cut by the token limit ends with an ellipsis, not half a word."""
    text = text.strip()
    if text and not re.search(r"[.!?。！？…)\]\"”]$", text):
        text = text + "…"
    return text

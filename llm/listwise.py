"""Prompt formats shared by data generation, training, evaluation and the reranker.

One module renders every prompt so that what the adapter is trained on is byte-for-byte
what evaluation and the live reranker feed it (a drift here silently ruins a verbalizer).
Item ids are never rendered: candidates are named by a letter and a (shortened) title,
so the only way to find the answer is to read the history and the cards.

A listwise candidate line puts its letter AFTER the title (``Dove Soap Bar (A)``), not before
it as LlamaRec prints it. In a causal LM the letter token can then attend to its own title, so
"which line matches the history" and "which letter to say" meet in one position; with the
letter first, a small model has to bind them in two hops and does not learn to in a CPU run
(SmolLM2-135M, LoRA top-8, the same 372 examples of "the answer's title repeats a history
title": letter after -> dev R@1 0.91, letter first -> 0.03; see finetune/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.data.schema import Item
from retrieval.text import format_money

LETTERS = "ABCDEFGHIJKLMNOPQRST"
"""LlamaRec-style labels: 20 candidates, each a single token for every tokenizer we use."""

TITLE_CHARS = 60
ADAPTER_DATA_MANIFEST = "data_manifest.json"
"""The training data's manifest, copied beside every adapter: its config holds the prompt shape
(``max_history``, ``title_chars``) that the reranker must render for that adapter."""
"""Rendered titles are cut here: 20 candidates x ~15 tokens keeps a listwise prompt < 600 tokens."""

SYSTEM_LISTWISE = (
    "You are a recommender for an online shop. Given a shopper's purchase history, pick the "
    "candidate product they are most likely to buy next. Answer with the candidate's letter only."
)
SYSTEM_SHOPPER = (
    "You are a shopping assistant. Recommend only products from the candidate list, and give "
    "reasons based only on the facts shown on their cards and in the shopper's history."
)

_SPACE = re.compile(r"\s+")


def short_title(title: str, max_chars: int = TITLE_CHARS) -> str:
    """Whitespace-normalised title cut at a word boundary (ellipsis when cut)."""
    text = _SPACE.sub(" ", title).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
    return cut.rstrip(" ,;:-") + "..."


def format_price(price: float | None) -> str | None:
    return None if price is None else format_money(price)


def render_card(item: Item, label: str, max_chars: int = TITLE_CHARS) -> str:
    """One candidate card: label, title and the facts reasons may cite (brand, category, price)."""
    parts = [f"[{label}] {short_title(item.title, max_chars)}"]
    if item.brand:
        parts.append(f"Brand: {item.brand}")
    if item.categories:
        parts.append(f"Category: {' > '.join(item.categories[1:] or item.categories)}")
    price = format_price(item.price)
    if price:
        parts.append(f"Price: {price}")
    return " | ".join(parts)


HISTORY_HEADER = "Purchase history (oldest first):"
CANDIDATES_HEADER = "Candidates:"
_HISTORY_LINE = re.compile(r"^\d+\. (.*)$")
_CANDIDATE_LINE = re.compile(r"^(.*) \(([A-T])\)$")


def candidate_line(letter: str, title: str) -> str:
    """One listwise candidate: the (shortened) title, then its letter."""
    return f"{title} ({letter})"


def parse_listwise_prompt(user_message: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(shown history titles, [(letter, title), ...]) read back from a ``listwise_messages``
    user message: what the leakage check, the reference rankers and the teacher see."""
    head, _, cands = user_message.partition(CANDIDATES_HEADER)
    history = [m.group(1) for m in map(_HISTORY_LINE.match, head.splitlines()) if m]
    candidates = [(m.group(2), m.group(1)) for m in map(_CANDIDATE_LINE.match, cands.splitlines()) if m]
    return history, candidates


def listwise_messages(
    history_titles: Sequence[str],
    candidate_titles: Sequence[str],
    max_history: int = 10,
    max_chars: int = TITLE_CHARS,
) -> list[dict[str, str]]:
    """System + user messages of a listwise ranking prompt (answer: one letter).

    Only the last ``max_history`` purchases are shown (recency matters most, and prompt
    length is the CPU cost).
    """
    if not candidate_titles:
        raise ValueError("a listwise prompt needs at least one candidate")
    if len(candidate_titles) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} candidates (A-T), got {len(candidate_titles)}")
    shown = list(history_titles)[-max_history:] if max_history > 0 else []
    lines = [HISTORY_HEADER]
    lines += [f"{i}. {short_title(t, max_chars)}" for i, t in enumerate(shown, start=1)] or ["(none)"]
    lines += ["", CANDIDATES_HEADER]
    lines += [candidate_line(LETTERS[i], short_title(t, max_chars)) for i, t in enumerate(candidate_titles)]
    last = LETTERS[len(candidate_titles) - 1]
    lines += ["", f"Which candidate will the shopper buy next? Answer with one letter (A-{last})."]
    return [
        {"role": "system", "content": SYSTEM_LISTWISE},
        {"role": "user", "content": "\n".join(lines)},
    ]

"""Prompt formats shared by data generation, training, evaluation and the reranker.

One module renders every prompt so that what the adapter is trained on is byte-for-byte
what evaluation and the live reranker feed it (a drift here silently ruins a verbalizer).
Item ids are never rendered: candidates are named by a letter and a (shortened) title,
so the only way to find the answer is to read the history and the cards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.data.schema import Item

LETTERS = "ABCDEFGHIJKLMNOPQRST"
"""LlamaRec-style labels: 20 candidates, each a single token for every tokenizer we use."""

TITLE_CHARS = 60
"""Rendered titles are cut here: 20 candidates x ~15 tokens keeps a listwise prompt < 600 tokens."""

SYSTEM_LISTWISE = (
    "You are a recommender for an online shop. Given a shopper's purchase history, pick the "
    "candidate product they are most likely to buy next. Answer with the candidate's letter only."
)
SYSTEM_SHOPPER = (
    "You are a shopping assistant. Recommend only products from the candidate list, and give "
    "reasons based only on the facts shown on their cards and in the shopper's history."
)
SYSTEM_CONSTRAINTS = (
    "Extract the shopper's hard product constraints as one JSON object. Allowed keys: "
    "price_min, price_max (numbers, USD), brands_in, brands_out (lists of brand names), "
    "categories, categories_out (lists of category paths from the catalog root), in_stock "
    "(true/false). Omit keys the shopper did not constrain. Output the JSON only."
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
    return None if price is None else f"${price:,.2f}"


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
    lines += [f"({LETTERS[i]}) {short_title(t, max_chars)}" for i, t in enumerate(candidate_titles)]
    last = LETTERS[len(candidate_titles) - 1]
    lines += ["", f"Which candidate will the shopper buy next? Answer with one letter (A-{last})."]
    return [
        {"role": "system", "content": SYSTEM_LISTWISE},
        {"role": "user", "content": "\n".join(lines)},
    ]


def constraint_messages(utterance: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_CONSTRAINTS},
        {"role": "user", "content": utterance},
    ]

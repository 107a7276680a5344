"""Superlative questions about the items on show: "which of these is the cheapest", "which one is
the newest?", "what's the most popular of those", "the cheapest one?", "哪个最便宜",
"这几个里面哪个最新", "哪一款最受欢迎", "评分最高的是哪个". ``page_superlative(text)`` reads the
attribute asked (price, release year, popularity, rating) and its direction, or None.

A superlative counts as a question about the page only when the message points at it: "which",
"of these / those / them", "the ones you showed", "哪个", "这几个里", "其中"; or when it says
nothing but the superlative ("the cheapest one?", "最便宜的那个"). "what's the cheapest
moisturizer" points at nothing shown: a search (the parser reads a wish for low prices), and so is
a question about the whole shop ("the cheapest lipstick you have", "你们店里最便宜的"). Whether
anything is on show is the caller's to check: with nothing shown every superlative is a search.
Cue phrases: ``data/superlative_cues.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from assistant.understanding import lexicon

__all__ = ["Attribute", "Superlative", "page_superlative"]

Attribute = Literal["price", "year", "popularity", "rating"]
_ATTRIBUTES: tuple[Attribute, ...] = ("price", "year", "popularity", "rating")
_TOKEN = re.compile(r"[a-z0-9']+|[^\W\d_]", re.I)


@dataclass(frozen=True)
class Superlative:
    """The attribute a question ranks the shown items by; ``highest``: the most of it (priciest,
    newest, most popular, best rated), else the least (cheapest, oldest...)."""

    attribute: Attribute
    highest: bool
    surface: str = ""


def _cue(key: str) -> re.Pattern[str]:
    return lexicon.cue("superlative_cues", key)


def _asked(text: str) -> tuple[Superlative, int, int] | None:
    """The first superlative said, with its span."""
    found: list[tuple[int, int, Superlative]] = []
    for attribute in _ATTRIBUTES:
        for highest in (True, False):
            m = _cue(f"{attribute}_{'high' if highest else 'low'}").search(text)
            if m:
                found.append((m.start(), -m.end(), Superlative(attribute, highest, m.group())))
    if not found:
        return None
    start, neg_end, asked = min(found, key=lambda f: (f[0], f[1]))
    return asked, start, -neg_end


def _bare(rest: str) -> bool:
    """Nothing but filler words around the superlative, asked ("the newest?") or of an item ("the
    cheapest one", "最便宜的那个"): a bare "newest" or "cheapest please" is a wish for a new page.
    "show me the cheapest one" points at one item on show; "show me the newest ones" asks for more."""
    tokens = [t.casefold() for t in _TOKEN.findall(rest)]
    zh_nouns = set("".join(lexicon.word_sequence("superlative_cues", "bare_zh_nouns")))
    nouns = lexicon.words("superlative_cues", "bare_nouns") | zh_nouns
    fillers = lexicon.words("superlative_cues", "bare_words") | nouns
    fillers |= set("".join(lexicon.word_sequence("superlative_cues", "bare_zh")))
    if nouns & set(tokens) - {"ones", "items", "products", "options"}:  # "show me the cheapest one"
        fillers |= lexicon.words("superlative_cues", "bare_pointing")
    if not all(t in fillers for t in tokens):
        return False
    return bool(re.search(r"[?？]", rest)) or bool(nouns & set(tokens))


def page_superlative(text: str) -> Superlative | None:
    """The superlative ``text`` asks of the items on show, or None (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text[:500]
    found = _asked(text)
    if found is None:
        return None
    asked, start, end = found
    rest = text[:start] + " " + text[end:]
    if _cue("catalog_wide").search(rest):
        return None
    if _cue("page").search(rest) or _bare(rest):
        return asked
    return None

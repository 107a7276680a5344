"""Everyday words -> soft category preferences ("family night" -> Children's / Animation / Comedy).

The curated table ``data/everyday_words.yaml`` maps mood, occasion and need words to category
names per domain; an entry applies to a catalog only through the targets that are its category
nodes, so one table serves every catalog and a missing target costs nothing. The result is
evidence for ranking (``ParsedUtterance.soft_categories``), never a filter. Method and limits:
docs/understanding.md.
"""

from __future__ import annotations

import re
from functools import cache

from assistant.understanding.lexicon import aliases
from assistant.understanding.matches import drop_descendants
from assistant.understanding.spans import overlaps, take
from retrieval.text import HAN_RE, LATIN_WORD

__all__ = ["everyday_categories"]

_SECTIONS = ("movies", "beauty", "office", "zh")


@cache
def _entries() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """(pattern, target names) per key, longest key first so "family night" wins over "family"."""
    table: dict[str, list[str]] = {}
    for section in _SECTIONS:
        for key, targets in aliases("everyday_words", section).items():
            table.setdefault(key.casefold(), []).extend(targets)
    out = []
    for key in sorted(table, key=len, reverse=True):
        body = re.escape(key).replace(r"\ ", r"[\s-]+")
        # an English key is a whole word, also inside Chinese text ("想要wrinkles的")
        pat = body if HAN_RE.search(key) else rf"(?<!{LATIN_WORD}){body}(?!{LATIN_WORD})"
        out.append((re.compile(pat, re.I), tuple(dict.fromkeys(table[key]))))
    return tuple(out)


def everyday_categories(
    text: str,
    taken: bytearray,
    nodes: dict[str, tuple[tuple[str, ...], ...]],
    negated: bytearray,
    claim: bool = False,
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """(wanted, avoided): category paths (of ``nodes``: name -> paths) that the everyday words of
    ``text`` point at, and those of everyday words under a negation (``negated``: "nothing too
    scary", "不要太恐怖的" -> Horror is avoided, a ranking penalty).

    Other spans already read as something else (``taken``: a price, a negated mention) are
    skipped. The wanted words stay in the retrieval query (a shop's titles describe the goods:
    "for oily skin") unless ``claim``: where titles are names (films, books), "date night" or "a
    true story" in the query finds *Twelfth Night* and *Toy Story*, so the words that found
    categories are taken (the parser searches the categories' names instead).
    """
    by_name = {name.casefold(): paths for name, paths in nodes.items()}
    used = bytearray(len(text))
    found: list[tuple[str, ...]] = []
    avoided: list[tuple[str, ...]] = []
    for pat, targets in _entries():
        for m in pat.finditer(text):
            if overlaps(used, *m.span()):
                continue
            is_negated = overlaps(negated, *m.span())
            if overlaps(taken, *m.span()) and not is_negated:
                continue
            take(used, *m.span())
            if claim and not is_negated and any(t.casefold() in by_name for t in targets):
                take(taken, *m.span())
            (avoided if is_negated else found).extend(
                p for t in targets for p in by_name.get(t.casefold(), ())
            )
    return drop_descendants(found), drop_descendants(avoided)

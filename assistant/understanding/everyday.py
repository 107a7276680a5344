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

_SECTIONS = ("movies", "beauty", "office", "zh", "needs")


@cache
def _entries() -> tuple[tuple[re.Pattern[str], tuple[str, ...], str | None], ...]:
    """(pattern, target names, search words) per key, longest key first so "family night" wins
    over "family". A need (section ``needs``: "breaking out", "goes flat") names a problem, not the
    goods, so titles do not say it ("flat" finds flat irons): its words leave the query and its
    ``needs_search`` words ("acne", "volume") are searched instead; other keys have none."""
    table: dict[str, list[str]] = {}
    for section in _SECTIONS:
        for key, targets in aliases("everyday_words", section).items():
            table.setdefault(key.casefold(), []).extend(targets)
    needs = {k.casefold() for k in aliases("everyday_words", "needs")}
    search = {k.casefold(): " ".join(v) for k, v in aliases("everyday_words", "needs_search").items()}
    if needs - set(search):
        raise ValueError(f"everyday_words.yaml: needs without needs_search: {sorted(needs - set(search))}")
    out = []
    for key in sorted(table, key=len, reverse=True):
        body = re.escape(key).replace(r"\ ", r"[\s-]+")
        # an English key is a whole word, also inside Chinese text ("想要wrinkles的")
        pat = body if HAN_RE.search(key) else rf"(?<!{LATIN_WORD}){body}(?!{LATIN_WORD})"
        out.append((re.compile(pat, re.I), tuple(dict.fromkeys(table[key])), search.get(key)))
    return tuple(out)


def everyday_categories(
    text: str,
    taken: bytearray,
    nodes: dict[str, tuple[tuple[str, ...], ...]],
    negated: bytearray,
    claim: bool = False,
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """(wanted, avoided, searched): category paths (of ``nodes``: name -> paths) that the everyday
    words of ``text`` point at, those of everyday words under a negation (``negated``: "nothing too
    scary", "不要太恐怖的" -> Horror is avoided, a ranking penalty), and the words to search in
    place of the words that found them.

    Other spans already read as something else (``taken``: a price, a negated mention) are
    skipped. The wanted words stay in the retrieval query (a shop's titles describe the goods:
    "for oily skin") unless they are a need or ``claim``: where titles are names (films, books),
    "date night" or "a true story" in the query finds *Twelfth Night* and *Toy Story*, so the
    words that found categories are taken and the categories' names are searched instead.
    """
    by_name = {name.casefold(): paths for name, paths in nodes.items()}
    used = bytearray(len(text))
    found: list[tuple[str, ...]] = []
    avoided: list[tuple[str, ...]] = []
    searched: list[str] = []
    for pat, targets, search in _entries():
        for m in pat.finditer(text):
            if overlaps(used, *m.span()):
                continue
            is_negated = overlaps(negated, *m.span())
            if overlaps(taken, *m.span()) and not is_negated:
                continue
            take(used, *m.span())
            paths = [p for t in targets for p in by_name.get(t.casefold(), ())]
            if (claim or search) and not is_negated and paths:
                take(taken, *m.span())
                searched += [search] if search else [p[-1] for p in paths]
            (avoided if is_negated else found).extend(paths)
    return drop_descendants(found), drop_descendants(avoided), tuple(dict.fromkeys(searched))

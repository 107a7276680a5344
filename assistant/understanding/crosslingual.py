"""Chinese words -> the English words of an English catalog (``data/query_words.yaml``).

The shipped catalogs and the default embedder are English: "控油的洗面奶" searched for "控油"
and matched nothing, so a Chinese shopper's wishes never reached ranking. Each curated key found
in the text (longest first, outside spans already read as something else: a negated word, a
price) is replaced in the retrieval query by its English words; product types are named by the
vocabulary's category aliases instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from assistant.understanding.lexicon import aliases
from assistant.understanding.spans import overlaps, take

__all__ = ["english_for", "english_words"]


@cache
def _pattern() -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    table = {k.casefold(): v for k, v in aliases("query_words", "zh").items()}
    keys = sorted(table, key=len, reverse=True)
    return re.compile("|".join(re.escape(k) for k in keys), re.I), table


# Degree words between a negation and what it negates: "不要容易晕的" is "不晕" (smudge-proof).
_DEGREE = re.compile(r"^(?:容易|太|很|那么|会|易)+")


def english_for(words: str) -> tuple[str, ...]:
    """The English words of the curated Chinese words in ``words`` ("黄色的" -> yellow), in order."""
    pattern, table = _pattern()
    return tuple(dict.fromkeys(w for m in pattern.finditer(words) for w in table[m.group().casefold()]))


def english_words(text: str, taken: bytearray, negated: Sequence[tuple[int, int]] = ()) -> list[str]:
    """English words for the curated Chinese words of ``text``; their spans are claimed in
    ``taken`` so the Chinese leaves the query. ``negated``: spans of words under a negation; one
    whose negation is itself a curated wish ("不油腻", "不要容易晕的", "不含香精") is searched as that wish."""
    pattern, table = _pattern()
    out: list[str] = []
    for a, b in negated:
        core = _DEGREE.sub("", text[a:b])
        words = table.get("不" + core) or table.get("无" + core, ())  # "不含香精": 无香精, fragrance free
        out.extend(w for w in words if w not in out)
    for m in pattern.finditer(text):
        if overlaps(taken, *m.span()):
            continue
        take(taken, *m.span())
        out.extend(w for w in table[m.group().casefold()] if w not in out)
    return out

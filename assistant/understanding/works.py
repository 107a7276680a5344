"""Titled works said with their year: "Avengers: Infinity War (2018)", "Freddy vs. Jason (2003)".

A film, book or album named with its year in brackets is a name whatever words it holds: the
parser does not read its "War" as a kind nor "vs." as a request to compare, and a work the
catalog lacks names no item. ``titled_works`` finds them: the capitalised words (and the small
words between them) right before a bracketed year.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["TitledWork", "blank_titled_works", "titled_works"]

_WORK_YEAR = re.compile(r"\(\s*((?:18|19|20)\d\d)\s*\)")
_WORK_JOINERS = frozenset("of the a an and in on to at for with from by or is it me my you we & - vs".split())  # noqa: SIM905


_ABBREVIATIONS = frozenset({"vs.", "mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "no."})


class TitledWork(NamedTuple):
    start: int
    end: int  # after the bracketed year
    year: int
    year_at: int  # where the bracketed year starts


def titled_works(text: str) -> list[TitledWork]:
    """Each "Title Words (YYYY)" of ``text``, in order."""
    spans = []
    for y in _WORK_YEAR.finditer(text):
        start = None
        for k, w in enumerate(reversed(list(re.finditer(r"\S+", text[: y.start()])))):
            word = w.group()
            if (
                word[-1] in ".!?;,…"
                and not (k == 0 and (word[-1] in "?!…" or word.endswith("...")))
                and word.casefold() not in _ABBREVIATIONS
            ):
                break  # a sentence ends before the title ("What About Bob? (1991)", "Say Anything... (1989)" are one)
            head = word.lstrip("'\"‘’“”")[:1]  # "The 'Burbs (1989)", "“Heat” (1995)"
            if head.isupper() or head.isdigit():
                start = w.start()
            elif word.casefold().rstrip(".") not in _WORK_JOINERS:
                break
        if start is not None:
            spans.append(TitledWork(start, y.end(), int(y.group(1)), y.start()))
    return spans


def blank_titled_works(text: str) -> str:
    """``text`` with every titled work replaced by spaces (offsets kept)."""
    chars = list(text)
    for w in titled_works(text):
        chars[w.start : w.end] = " " * (w.end - w.start)
    return "".join(chars)

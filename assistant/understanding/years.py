"""Release years: a decade ("the 1990s", "the '80s", "the nineties", "90年代", "九十年代") or a year
("released in 1995", "a movie from 2015")."""

from __future__ import annotations

import re

from assistant.understanding.spans import overlaps, take

__all__ = ["extract_years"]

_RELEASED = r"(?:\b(?:released|came\s+out|made|filmed|published|from)\s+(?:in\s+)?)?"
_DECADE = re.compile(
    _RELEASED
    + r"\b(?:the\s+)?(?P<full>1[89]\d0|20[0-9]0)'?s\b|"
    + _RELEASED
    + r"(?:\bthe\s+'?(?P<short>\d0)'?s\b|(?<![\w$])'(?P<apos>\d0)s\b)|"
    r"(?P<zh>(?:1[89]|20)?\d0)\s*年代|"
    r"(?P<zhn>[一二三四五六七八九])十\s*年代|"
    + _RELEASED
    + r"\b(?:the\s+)?(?P<word>twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b",
    re.I,
)
# Decades said in words: "the nineties", "九十年代" (the tens digit as a Chinese numeral).
_DECADE_WORDS = {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ["twenties", "thirties", "forties", "fifties", "sixties", "seventies", "eighties", "nineties"]
    )
}
_ZH_DIGITS = {c: i + 1 for i, c in enumerate("一二三四五六七八九")}
# "from 2015" is a year, not a price floor (a range "from 2000 to 3000" and money words stay prices).
_RELEASE_YEAR = re.compile(
    r"\b(?:released|came\s+out|made|filmed|published|from)\s+(?:in\s+)?(?:the\s+year\s+)?"
    r"(?P<y>1[89]\d\d|20[0-4]\d)\b(?!\s*(?:[$€£¥元块]|dollars?|bucks|euros?|usd|yuan|rmb|(?:-|–|to|and)\s*\d))|"
    r"(?P<zy>1[89]\d\d|20[0-4]\d)\s*年(?:上映|出品|发行|出版|的)",
    re.I,
)


def extract_years(text: str, taken: bytearray) -> tuple[int, int] | None:
    """Release years: a decade ("the 1990s", "the '80s", "90年代") or a year ("released in 1995").

    Read for catalogs with a release year (films, books, music); the last mention wins.
    """
    found: tuple[int, int] | None = None
    for pat in (_DECADE, _RELEASE_YEAR):
        for m in pat.finditer(text):
            if overlaps(taken, *m.span()):
                continue
            g = m.groupdict()
            if g.get("y") or g.get("zy"):
                y = int(g.get("y") or g["zy"])
                found = (y, y)
            else:
                if g.get("word"):
                    d = _DECADE_WORDS[g["word"].lower()]
                elif g.get("zhn"):
                    d = 10 * _ZH_DIGITS[g["zhn"]]
                else:
                    d = int(g.get("full") or g.get("short") or g.get("apos") or g.get("zh") or "")
                if d < 100:  # "the 90s" -> 1990s, "the 00s"/"10s" -> 2000s/2010s
                    d += 2000 if d < 20 else 1900
                found = (d, d + 9)
            take(taken, *m.span())
    return found

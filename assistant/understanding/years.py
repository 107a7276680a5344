"""Release years: a decade ("the 1990s", "the '80s", "the nineties", "90年代", "九十年代"), a year
("released in 1995", "a movie from 2015"), or an open or closed range of them ("after 2012",
"before the 80s", "1995 or later", "between 1990 and 1995", "2012年以后", "90年代以前").

An open end is ``OPEN_FROM`` / ``OPEN_TO`` (a window no release year leaves): "after 2012" is
``(2013, OPEN_TO)``. ``year_words`` says a window back to the shopper."""

from __future__ import annotations

import re

from assistant.understanding.spans import overlaps, take

__all__ = ["OPEN_FROM", "OPEN_TO", "extract_years", "year_words"]

OPEN_FROM, OPEN_TO = 1800, 2199

_RELEASED = r"(?:\b(?:released|came\s+out|made|filmed|published|from)\s+(?:in\s+)?)?"
_DECADE = re.compile(
    _RELEASED
    + r"\b(?:the\s+)?(?P<full>1[89]\d0|20[0-9]0)'?s\b|"
    + _RELEASED
    + r"(?:\bthe\s+'?(?P<short>\d0)'?s\b|(?<![\w$])'(?P<apos>\d0)s\b)|"
    # "I'm into 90's films", "any 80s horror?": a bare decade before a kind of film or at the end of
    # a sentence; not an age ("in her 60s") nor a size or price
    r"(?<![\w$'])(?<!her\s)(?<!his\s)(?<!their\s)(?<!my\s)(?<!our\s)(?<!your\s)(?P<bare>[2-9]0)'?s\b"
    r"(?=\s+(?:movies?|films?|flicks?|ones?|stuff|classics?|cinema|music|shows?|comed\w*|action|horror|"
    r"romance|rom-?coms?|thrillers?|dramas?|cartoons?|animated|westerns?|sci-?fi|kids?)\b|\s*(?:[.!?,;]|$))|"
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
_YEAR = r"(?:1[89]\d\d|20[0-4]\d)"
# A number that is money, not a year: "from 2000 to 3000 dollars" stays a price.
_NOT_MONEY = r"(?!\s*(?:[$€£¥元块]|dollars?|bucks|euros?|usd|yuan|rmb))"
# "from 2015" is a year, not a price floor (a range "from 2000 to 3000" and money words stay prices).
_RELEASE_YEAR = re.compile(
    r"\b(?:released|came\s+out|made|filmed|published|from)\s+(?:in\s+)?(?:the\s+year\s+)?"
    rf"(?P<y>{_YEAR})\b(?!\s*(?:[$€£¥元块]|dollars?|bucks|euros?|usd|yuan|rmb|(?:-|–|to|and)\s*\d))|"
    rf"(?P<zy>{_YEAR})\s*年(?:上映|出品|发行|出版|的)",
    re.I,
)
# Open and closed ranges. The bound is a year or a decade ("after the 90s" is 2000 on).
_BOUND = rf"(?:the\s+)?(?:'?(?P<{{g}}d>\d0)'?s|(?P<{{g}}y>{_YEAR})(?P<{{g}}s>'?s)?)\b{_NOT_MONEY}"
_RANGE = re.compile(
    r"\b(?:(?P<strict_a>after|post|newer\s+than|later\s+than|more\s+recent\s+than)|since)[\s-]+"
    + _BOUND.format(g="a")
    + r"|\b(?P<strict_b>before|pre|prior\s+to|older\s+than|earlier\s+than)[\s-]+"
    + _BOUND.format(g="b")
    + rf"|\b(?P<ol>{_YEAR})\s+(?:(?:or|and)\s+(?:later|newer|after|up)|on(?:wards?)?|onwards?)\b"
    rf"|\b(?P<oe>{_YEAR})\s+(?:or|and)\s+(?:earlier|older|before)\b"
    rf"|\bbetween\s+(?P<lo>{_YEAR})\s+and\s+(?P<hi>{_YEAR})\b{_NOT_MONEY}"
    rf"|(?P<zay>{_YEAR})\s*年?\s*(?:以后|之后|以来|后|起)"
    rf"|(?P<zby>{_YEAR})\s*年?\s*(?:以前|之前|前)"
    r"|(?P<zad>(?:1[89]|20)?\d0)\s*年代\s*(?:以后|之后|以来|后)"
    r"|(?P<zbd>(?:1[89]|20)?\d0)\s*年代\s*(?:以前|之前|前)",
    re.I,
)


# "nothing older than the 80s", "no movies before 1990", "不要90年代以前的": the window's other side.
_NEGATED = re.compile(
    r"(?:\b(?:nothing|no|not|none|never|cannot|\w+n['’]t|dont|doesnt|didnt|wont|cant)\b(?:\s+\w+){0,3}\s+"
    r"|不要|别|不想要)$",
    re.I,
)


def _flipped(window: tuple[int, int]) -> tuple[int, int]:
    lo, hi = window
    if hi >= OPEN_TO:
        return OPEN_FROM, lo - 1
    return (hi + 1, OPEN_TO) if lo <= OPEN_FROM else window  # "not between 1990 and 1995": as said


def _decade(digits: str) -> int:
    d = int(digits)
    if d < 100:  # "the 90s" -> 1990s, "the 00s"/"10s" -> 2000s/2010s
        d += 2000 if d < 20 else 1900
    return d


def _range(g: dict[str, str | None]) -> tuple[int, int]:
    """The window of one ``_RANGE`` match. A decade bound leaves the decade out ("after the 90s"
    is 2000 on, "before the 80s" and "90年代以前" end in 1979 / 1989; "90年代以后" starts in 1990);
    "after 2012" / "before 1990" leave the year out; "since 2012", "2012 or later" and Chinese
    以后/以前 keep it (以后 is inclusive in everyday use)."""
    for side in "ab":
        decade = g[f"{side}d"] or (g[f"{side}y"] if g[f"{side}s"] else None)
        year = g[f"{side}y"]
        if decade is None and year is None:
            continue
        after = side == "a"
        if decade is not None:
            d = _decade(decade)
            return (d + 10, OPEN_TO) if after else (OPEN_FROM, d - 1)
        y = int(year or 0)
        strict = 1 if g[f"strict_{side}"] else 0
        return (y + strict, OPEN_TO) if after else (OPEN_FROM, y - strict)
    if g["lo"]:
        lo, hi = sorted((int(g["lo"]), int(g["hi"] or 0)))
        return lo, hi
    if g["ol"] or g["zay"]:
        return int(g["ol"] or g["zay"] or 0), OPEN_TO
    if g["oe"] or g["zby"]:
        return OPEN_FROM, int(g["oe"] or g["zby"] or 0)
    if g["zad"]:
        return _decade(g["zad"]), OPEN_TO
    return OPEN_FROM, _decade(g["zbd"] or "") - 1


def extract_years(text: str, taken: bytearray, ranges: bool = True) -> tuple[int, int] | None:
    """Release years: a range ("after 2012"), a decade ("the 1990s", "90年代") or a year
    ("released in 1995"); the last mention wins.

    ``ranges`` only for catalogs whose items carry a release year: in a shop with prices "a
    printer between 1500 and 2000" or "since 2010" is no window of years.
    """
    found: list[tuple[int, tuple[int, int]]] = []
    for m in _RANGE.finditer(text) if ranges else ():
        if not overlaps(taken, *m.span()):
            window = _range(m.groupdict())
            negated = _NEGATED.search(text[max(0, m.start() - 30) : m.start()])
            found.append((m.start(), _flipped(window) if negated else window))
            take(taken, *m.span())
    for pat in (_DECADE, _RELEASE_YEAR):
        for m in pat.finditer(text):
            if overlaps(taken, *m.span()):
                continue
            g = m.groupdict()
            if g.get("y") or g.get("zy"):
                y = int(g.get("y") or g["zy"])
                found.append((m.start(), (y, y)))
            else:
                if g.get("word"):
                    d = _decade(str(_DECADE_WORDS[g["word"].lower()]))
                elif g.get("zhn"):
                    d = _decade(str(10 * _ZH_DIGITS[g["zhn"]]))
                else:
                    d = _decade(g.get("full") or g.get("short") or g.get("apos") or g.get("bare") or g.get("zh") or "")
                found.append((m.start(), (d, d + 9)))
            take(taken, *m.span())
    return max(found)[1] if found else None


def year_words(years: tuple[int, int], lang: str) -> str:
    """A window said back: "2015", "1990–1999", "2013 on", "up to 1989"; "2015 年", "2013 年以后"."""
    lo, hi = years
    zh = lang == "zh"
    if hi >= OPEN_TO:
        return f"{lo} 年及以后" if zh else f"{lo} on"
    if lo <= OPEN_FROM:
        return f"{hi} 年及以前" if zh else f"up to {hi}"
    span = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return f"{span} 年" if zh else span

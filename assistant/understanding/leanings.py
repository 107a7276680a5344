"""Leanings said in words, for the ranker (never filters): recency ("something recent", "old
movies", "不要太老的"; "a classic" is praise more than an age: ReDial seekers call films of every
decade classics), the black-and-white era ("old black and white films", "silent movies", "黑白的")
and popularity ("something less known", "hidden gems", "冷门").

``DialogueState`` keeps them for the topic; ``FusedRanker`` turns them into a lean within its
preference signal (newer / older release years) and its popularity signal (reversed for "less
known"): a shopper who asks for an underrated film should not get the five most-watched ones.
"""

from __future__ import annotations

import re

from assistant.understanding.spans import scan_cues, take
from assistant.understanding.utterance import Era

__all__ = ["Era", "extract_era", "extract_niche"]

_NEWER = re.compile(
    r"\b(?:recent(?:ly)?|newer|newest|latest|modern|contemporary|new(?:er)?\s+(?:movies?|films?|releases?|stuff)|"
    r"(?:not|nothing)\s+(?:too\s+|so\s+|very\s+|that\s+)?old)\b|"
    r"最新|新一点|新一些|新片|新电影|新的电影|近几年|近年|(?:不要|别|不能)太(?:老|旧)|不太(?:老|旧)",
    re.I,
)
# "nothing too recent", "不要太新": a newer word negated is a lean to older (read before _NEWER).
_NOT_NEWER = re.compile(
    r"\b(?:not|nothing|none)\s+(?:too\s+|so\s+|very\s+|that\s+)?(?:recent|new|modern)\b|"
    r"(?:不要|别|不能)太新|不太新",
    re.I,
)
_OLDER = re.compile(
    r"\b(?:older|oldies|vintage|old[\s-]school|golden\s+age|old\s+(?:movies?|films?|ones?|stuff|classics?|hollywood)|"
    r"old[\s-]timey?)\b|"
    r"老电影|老片|老一点|怀旧",
    re.I,
)
# Black and white, silent: an era with an end ("classic" to the ranker), not only "older than most".
_CLASSIC = re.compile(
    r"\b(?:old\s+)?(?:black[\s-](?:and|&|n)[\s-]white|b\s*&\s*w|silent\s+(?:movies?|films?|era|ones?))\b|"
    r"黑白(?:电影|片|的)?|默片",
    re.I,
)


def extract_era(text: str, taken: bytearray) -> Era | None:
    """ "something recent", "not too old", "不要太老的" -> "newer"; "old movies", "older", "老电影"
    -> "older"; "black and white", "silent films", "黑白的" -> "classic"; the last one said wins
    (an "older" beside a "classic" is that classic). Read for catalogs with release years."""
    found: list[tuple[int, Era]] = []
    for pat, era in ((_NOT_NEWER, "older"), (_CLASSIC, "classic"), (_NEWER, "newer"), (_OLDER, "older")):
        for a, b in scan_cues(pat, text, taken):
            found.append((a, era))  # type: ignore[arg-type]
            take(taken, a, b)
    if not found:
        return None
    last = max(found)[1]
    # "黑白的那种老电影", "black and white, old stuff": the era with an end is the narrower wish
    return "classic" if last == "older" and any(e == "classic" for _, e in found) else last


_NICHE = re.compile(
    r"\b(?:less|lesser|not\s+(?:so\s+|very\s+|that\s+)?(?:well|widely))[\s-]+known|"
    r"hidden\s+gems?|underrated|under[\s-]the[\s-]radar|obscure|off\s+the\s+beaten\s+(?:path|track)|"
    r"(?:not|nothing|less)\s+(?:so\s+|too\s+|that\s+)?(?:mainstream|popular|famous|obvious)|"
    r"冷门|小众|不太有名|没那么有名|不那么热门|不要太热门",
    re.I,
)


def extract_niche(text: str, taken: bytearray) -> bool:
    """ "something less known", "hidden gems", "nothing too mainstream", "小众的": the shopper wants
    what fewer people have (the popularity signal reverses)."""
    spans = scan_cues(_NICHE, text, taken)
    for a, b in spans:
        take(taken, a, b)
    return bool(spans)

"""Control phrases and cue words: "something else", "more like", negation ("not OPI"), "only",
"also", and the filler removed from the retrieval query (``data/query_filler.yaml``)."""

from __future__ import annotations

import re
from functools import cache

from assistant.understanding import lexicon
from assistant.understanding.matches import Mention
from assistant.understanding.spans import scan_cues, take

__all__ = ["assign_polarity", "build_query", "control_phrases", "cue"]


def cue(key: str) -> re.Pattern[str]:
    """A cue of the parser (``data/parser_cues.yaml``): "negation", "only", "additive", "similar"..."""
    return lexicon.cue("parser_cues", key)


# Up to four filler words between a cue and the brand/category it governs.
_FILLER_GAP = re.compile(
    r"^[\s\"'“”‘’]*(?:(?:anything|any|stuff|products?|items?|things?|more|from|by|of|the|a|an|brand|brands|"
    r"those|that|these|like|something|made|either|want|show|me|with|buy|see|get|any\s+more|的|牌子|品牌|"
    r"任何|要|买|看|用)[\s\"'“”‘’]*){0,4}$",
    re.I,
)
_LIST_GAP = re.compile(
    r"^[\s\"'“”‘’]*(?:(?:,|/|&|\bor\b|\band\b|\bnor\b|或者|或|和|跟|、|以及|还有|and\s+also)[\s\"'“”‘’]*)+$",
    re.I,
)


@cache
def _filler_words() -> re.Pattern[str]:
    en = lexicon.word_sequence("query_filler", "en")
    zh = lexicon.word_sequence("query_filler", "zh")
    return re.compile(r"\b(?:" + "|".join(en) + r")\b|" + "|".join(zh), re.I)


def control_phrases(text: str, taken: bytearray) -> tuple[bool, bool]:
    """(similar, exclude_shown): "more like the second one" is both; "something else" excludes."""
    similar = False
    for a, b in scan_cues(cue("similar"), text, taken):
        similar = True
        take(taken, a, b)
    exclude_shown = similar
    for a, b in scan_cues(cue("exclude_shown"), text, taken):
        exclude_shown = True
        take(taken, a, b)
    return similar, exclude_shown


def assign_polarity(
    text: str, mentions: list[Mention], neg: list[tuple[int, int]], only: list[tuple[int, int]]
) -> tuple[list[bool], list[bool], set[int]]:
    """Which mentions are negated / under "only"; and which cue spans governed something."""
    negated = [False] * len(mentions)
    onlyed = [False] * len(mentions)
    used_cues: set[int] = set()
    for cues, flags in ((neg, negated), (only, onlyed)):
        for cue_start, cue_end in cues:
            for i, m in enumerate(mentions):
                if m.start < cue_end:
                    continue
                gap = text[cue_end : m.start]
                if _FILLER_GAP.match(gap):
                    flags[i] = True
                    used_cues.add(cue_start)
                    # The scope runs on through a list: "not OPI, Essie or China Glaze".
                    for j in range(i + 1, len(mentions)):
                        if _LIST_GAP.match(text[mentions[j - 1].end : mentions[j].start]):
                            flags[j] = True
                        else:
                            break
                break
    for i in range(len(mentions)):
        if negated[i] and onlyed[i]:
            onlyed[i] = False  # "not only OPI" reads as negation's business; keep it simple: negate
    return negated, onlyed, used_cues


def build_query(text: str, taken: bytearray) -> str:
    """What is left for retrieval: unclaimed text minus filler words and stray punctuation."""
    rest = "".join(" " if taken[i] else c for i, c in enumerate(text))
    rest = _filler_words().sub(" ", rest)
    rest = re.sub(r"[^\w\s'&-]+", " ", rest)
    rest = re.sub(r"(?<!\w)['&-]+|['&-]+(?!\w)", " ", rest)
    return " ".join(rest.split())[:300]

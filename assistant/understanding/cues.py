"""Control phrases and cue words: "something else", "more like", negation ("not OPI"), "only",
"also", and the filler removed from the retrieval query (``data/query_filler.yaml``)."""

from __future__ import annotations

import re
from functools import cache

from assistant.understanding import lexicon
from assistant.understanding.matches import Mention
from assistant.understanding.spans import scan_cues, take

__all__ = [
    "ADD_CUE",
    "EXCLUDE_SHOWN",
    "NEG_CUE",
    "ONLY_CUE",
    "SIMILAR",
    "assign_polarity",
    "build_query",
    "control_phrases",
]

EXCLUDE_SHOWN = re.compile(
    r"\b(?:something|anything|some\s*thing)\s+(?:else|different)\b|\bother\s+(?:options|ones|choices|suggestions|"
    r"products|items|stuff)\b|\bdifferent\s+(?:ones|options|products|items|choices)\b|\bmore\s+(?:options|results|"
    r"suggestions|ideas|choices)\b|\bshow\s+(?:me\s+)?(?:some\s+)?more\b|\bnext\s+(?:page|ones|few|batch)\b|"
    r"\bnone\s+of\s+(?:these|those|them)\b|\bnew\s+(?:ones|options)\b|^\W*(?:some\s+|any\s+)?more(?:\s+please)?\W*$|"
    r"\b(?:don'?t|do\s+not)\s+like\s+(?:any\s+of\s+)?(?:these|those|them)\b|\bnot\s+(?:these|those)\b|"
    r"换一个|换一批|换个|换一些|换几个|还有别的|还有其他|还有其它|别的|其他的|其它的|不要这些|都不喜欢|再来几个|"
    r"更多|看看别的|下一页",
    re.I,
)
SIMILAR = re.compile(
    r"\b(?:more|something|anything|others?|ones?|stuff)\s+(?:like|similar\s+to)\b|\bsimilar\s+(?:to|ones|items)\b|"
    r"类似|差不多的|相似|一样的",
    re.I,
)
NEG_CUE = re.compile(
    r"\b(?:not|no|never|without|except(?:\s+for)?|excluding|exclude|besides|other\s+than|anything\s+but|"
    r"but\s+not|avoid(?:ing)?|hate|instead\s+of|rather\s+than|apart\s+from|aside\s+from|minus|skip|"
    r"(?:don'?t|do\s+not|doesn'?t|didn'?t|never)\s+(?:really\s+)?(?:want|like|need|show(?:\s+me)?|"
    r"care\s+for|love)|no\s+more|none\s+of|nothing\s+(?:made\s+)?(?:from|by)|anything\s+(?:other\s+than|except))\b|"
    r"不要|不想要|不想|除了|别|不喜欢|不用|排除|不含|不买|不考虑|讨厌|去掉|去除|非(?!常)",
    re.I,
)
ONLY_CUE = re.compile(
    r"\b(?:only|just|exclusively|solely|nothing\s+but|stick\s+(?:to|with)|limit\s+(?:it\s+)?to|strictly)\b|"
    r"只要|只看|只想要|只想看|只买|仅限|仅|只",
    re.I,
)
ADD_CUE = re.compile(
    r"^\W*(?:and|or|plus)\b|\b(?:also|too|as\s+well|in\s+addition|additionally)\b|也|还有|或者", re.I
)
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
    for a, b in scan_cues(SIMILAR, text, taken):
        similar = True
        take(taken, a, b)
    exclude_shown = similar
    for a, b in scan_cues(EXCLUDE_SHOWN, text, taken):
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

"""Control phrases and cue words: "something else", "more like", negation ("not OPI"), "only",
"also", and the filler removed from the retrieval query (``data/query_filler.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from assistant.understanding import lexicon
from assistant.understanding.matches import BrandMatch, CategoryMatch, Mention
from assistant.understanding.spans import overlaps, scan_cues, take
from retrieval.text import STOPWORDS

__all__ = [
    "Controls",
    "NegatedWord",
    "assign_polarity",
    "build_query",
    "claim_negations",
    "contrast_cues",
    "control_phrases",
    "cue",
    "harm_cues",
    "negated_words",
    "small_talk_sentences",
]


def cue(key: str) -> re.Pattern[str]:
    """A cue of the parser (``data/parser_cues.yaml``): "negation", "only", "additive", "similar"..."""
    return lexicon.cue("parser_cues", key)


# Up to four filler words between a cue and the brand/category it governs.
_FILLER_GAP = re.compile(
    r"^[\s\"'“”‘’]*(?:(?:anything|any|stuff|products?|items?|things?|more|from|by|of|the|a|an|brand|brands|"
    r"those|that|these|like|something|made|either|want|show|me|with|buy|see|get|any\s+more|的|牌子|品牌|"
    r"任何|要|买|看|用|too|so|overly|太|那么|过于|big|huge|much\s+of\s+a|much|many|lots?|my|our|old|usual|current|regular)"
    r"[\s\"'“”‘’]*){0,4}$",
    re.I,
)
_LIST_GAP = re.compile(
    r"^[\s\"'“”‘’]*(?:(?:,|/|&|\bor\b|\band\b|\bnor\b|或者|或|和|跟|、|以及|还有|and\s+also)[\s\"'“”‘’]*)+$",
    re.I,
)


@cache
def _filler_words() -> re.Pattern[str]:
    # Longest first: a regex alternation takes the first alternative that fits, and "a lot",
    # "of course" must not leave "lot", "course" behind after "a", "of".
    en = sorted(lexicon.word_sequence("query_filler", "en"), key=len, reverse=True)
    zh = sorted(lexicon.word_sequence("query_filler", "zh"), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(en) + r")\b|" + "|".join(zh), re.I)


class Controls(NamedTuple):
    similar: bool  # "more like the second one"
    exclude_shown: bool  # "something else", "a different one": not the page shown again
    other_brand: bool  # "a different brand", "换个牌子": not the page's brands either


_SENTENCE = re.compile(r"[^.!?;。！？；\n]+[.!?;。！？；\n]*")


def small_talk_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences that are only small talk: "Hi, how are you?", "I'm fine thanks!",
    "have a good night", "Thanks for the suggestions." (the ``smalltalk`` cues of
    ``data/intent_cues.yaml``, then nothing but filler). Their words describe no item: "fine" in
    "I'm fine thanks" is no "fine lines", "night" in "good night" no night cream."""
    greeting, out = lexicon.cue("intent_cues", "smalltalk"), []
    for s in _SENTENCE.finditer(text):
        at, sentence = 0, s.group()
        while (m := greeting.match(sentence[at:])) is not None and m.end() > 0:  # "thanks, have a good night"
            at += m.end()
        if at == 0:
            continue
        rest = _filler_words().sub(" ", sentence[at:])
        if all(w.casefold() in STOPWORDS for w in re.findall(r"[^\W_]+", rest)):
            out.append(s.span())
    return out


def control_phrases(text: str, taken: bytearray) -> Controls:
    """The page-level requests: "more like the second one" is similar and excludes the page;
    "something else" excludes it; "a different brand" excludes it and its brands. Sentences of
    small talk are claimed too: they ask for nothing."""
    found = {}
    for key in ("other_brand", "similar", "exclude_shown"):  # 换个牌子 before 换个
        found[key] = False
        for a, b in scan_cues(cue(key), text, taken):
            found[key] = True
            take(taken, a, b)
    for a, b in small_talk_sentences(text):  # "thx, nah" still rejects the page
        if not overlaps(taken, a, b):
            take(taken, a, b)
    return Controls(found["similar"], any(found.values()), found["other_brand"])


def assign_polarity(
    text: str, masked: str, mentions: list[Mention], taken: bytearray
) -> tuple[list[bool], list[bool], list[tuple[int, int]]]:
    """Which mentions are negated / under "only", and the negation cues' spans; the cues that
    governed a mention are claimed in ``taken``. Cues are read in ``text``, the words as said,
    where nothing claimed them ("cheaper than HP": "cheaper" was read as a price wish and still
    makes "than" a cue); the words between a cue and its mention in ``masked``."""
    neg, only = negation_cues(text, taken), scan_cues(cue("only"), text, taken)
    negated = [False] * len(mentions)
    onlyed = [False] * len(mentions)
    used_cues: set[int] = set()
    for cues, flags in ((neg, negated), (only, onlyed)):
        for cue_start, cue_end in cues:
            for i, m in enumerate(mentions):
                if m.start < cue_end:
                    continue
                gap = masked[cue_end : m.start]
                if _FILLER_GAP.match(gap):
                    flags[i] = True
                    used_cues.add(cue_start)
                    # The scope runs on through a list of the same kind: "not OPI, Essie or China
                    # Glaze"; "不想要OPI,洗发水" negates the brand, not the shampoo.
                    for j in range(i + 1, len(mentions)):
                        same_kind = type(mentions[j].resolved) is type(mentions[j - 1].resolved)
                        if same_kind and _LIST_GAP.match(masked[mentions[j - 1].end : mentions[j].start]):
                            flags[j] = True
                        else:
                            break
                break
    for i, m in enumerate(mentions):
        if not negated[i] and isinstance(m.resolved, BrandMatch) and _moved_away(text, m):
            negated[i] = True  # "I tried Neutrogena and it didn't do much": not that brand again
    harmed, harm_spans = _harmed(masked, mentions, negated, harm_cues(text, taken))
    for i in harmed:
        negated[i] = True  # "an unscented lotion, perfume gives me headaches": no perfume
    for a, b in harm_spans:  # read with its kind, wanted or not: no word before it is avoided
        take(taken, a, b)
    had = [isinstance(m.resolved, CategoryMatch) and _already_had(masked, m) for m in mentions]
    wanted = any(isinstance(m.resolved, CategoryMatch) and not h for m, h in zip(mentions, had, strict=True))
    for i, m in enumerate(mentions):
        if had[i] and (wanted or _NEED_AFTER.search(text, m.end)):
            negated[i] = True  # "I already have a printer, I need ink": not printers this time
    for i in range(len(mentions)):
        if negated[i] and onlyed[i]:
            onlyed[i] = False  # "not only OPI" reads as negation's business; keep it simple: negate
    for a, b in neg + only:
        if a in used_cues:
            take(taken, a, b)
    return negated, onlyed, neg


_HARM_ADVERBS = r"always|usually|often|just|really|totally|literally|all|kinda|also|seems?\s+to|tends?\s+to|can|will|would|does|do"
# Between a thing and what it does to the shopper: "perfume always gives me headaches".
_HARM_GAP = re.compile(
    r"^(?:\s*(?:&|/|\band\b|\bor\b)\s*[A-Za-z][\w'-]*)?"  # "fragrance and alcohol irritate my skin"
    rf"(?:\s*\b(?:{_HARM_ADVERBS})\b)*\s*$",
    re.I,
)
# Before it: "most sunscreens", "any of the".
_HARM_LEAD = re.compile(rf"\b(?:{_HARM_ADVERBS}|most|any|every|the|that)\s*$", re.I)
_WORD_BEFORE = re.compile(r"\b([A-Za-z][\w'-]*)\s*$")
_ZH_NOT = re.compile(r"[不没无别]")
_ZH_BODY = frozenset(["皮肤", "肌肤", "脸", "脸部", "头皮", "头发", "眼睛", "嘴唇", "身体", "我"])
# The thing before a Chinese harm: "我对香精过敏" -> 香精, "这款面霜让我长痘" -> 面霜.
_ZH_BEFORE = re.compile(r"(?:^|[对的用是了把])?([\u4e00-\u9fff]{1,4})\s*$")
_NOT_HARM = re.compile(r"(?:n'?t|^not|^never|^no)$", re.I)
_LIST_BEFORE = re.compile(r"(?:,|\band\b|\bor\b|&)\s*$", re.I)


def harm_cues(text: str, taken: bytearray) -> list[tuple[int, int]]:
    """Spans of what a thing does to the shopper, said after the thing ("gives me headaches",
    "过敏"); "不会过敏", "没有让我长痘" say what it does not do."""
    return [
        (a, b) for a, b in scan_cues(cue("harm"), text, taken) if not _ZH_NOT.search(text[max(0, a - 2) : a])
    ]


def _harmed(
    masked: str, mentions: list[Mention], negated: list[bool], harms: list[tuple[int, int]]
) -> tuple[list[int], list[tuple[int, int]]]:
    """The kinds said to harm the shopper (ruled out only when another kind is what they want),
    and the harm cues about them."""
    hit: dict[int, tuple[int, int]] = {}
    unread = bytearray(len(masked))  # the words around a kind were read with it
    for i, m in enumerate(mentions):
        if isinstance(m.resolved, CategoryMatch):
            for a, b in harms:
                if a >= m.end and _HARM_GAP.match(masked[m.end : a]):
                    # with the words around it: "coconut oil breaks me out", "fragrance and alcohol irritate ..."
                    hit[i] = (
                        min((w for w, _ in _words_before(masked, m.start, unread)), default=m.end),
                        b,
                    )
                    break
    wanted = any(
        isinstance(m.resolved, CategoryMatch) and not negated[i] and i not in hit
        for i, m in enumerate(mentions)
    )
    return (list(hit) if wanted else []), sorted(set(hit.values()))


def _words_before(text: str, end: int, taken: bytearray) -> list[tuple[int, int]]:
    """The words a harm cue is about ("coconut oil breaks me out": coconut, oil) and a list before
    them ("fragrance and alcohol dry out my skin"), skipping degree and quantity words."""
    out: list[tuple[int, int]] = []
    before = text[:end]
    if (zh := _ZH_BEFORE.search(before)) is not None:
        a, b = zh.span(1)
        a = max([a, *(i + 1 for i in range(a, b) if before[i] in "对的用是了把我")])
        a -= a > 0 and before[a - 1] == "对"  # "对香精过敏": 对 goes with the word
        body = before[a:b].lstrip("对") in _ZH_BODY  # "我皮肤容易过敏": sensitive skin, not skin avoided
        return [(a, b)] if a < b and not body and not any(taken[a:b]) else []
    while (lead := _HARM_LEAD.search(before)) is not None:
        before = before[: lead.start()]
    compound = 0
    while (word := _WORD_BEFORE.search(before)) is not None and not any(taken[word.start(1) : word.end(1)]):
        if word.group(1).casefold() in STOPWORDS or _NOT_HARM.search(word.group(1)) or compound == 3:
            break  # "a perfume that won't give me a headache" avoids nothing
        out.append(word.span(1))
        compound += 1
        before = before[: word.start(1)]
        if (joint := _LIST_BEFORE.search(before)) is not None:
            before, compound = before[: joint.start()], 0
    return out


_HAD_BEFORE = re.compile(
    r"\b(?:tried|used|bought|had|using|switched\s+from|swears?\s+by|swore\s+by|stuck\s+with|loyal\s+to|"
    r"(?:always|usually)\s+(?:use|buy|get))\s+(?:the\s+|some\s+|a\s+|an\s+|my\s+)?$|"
    r"(?:用过|买过|试过|一直用|一直在用)$",
    re.I,
)


_ALREADY_HAD = re.compile(
    r"\b(?:already\s+(?:have|own|got|use|using|tried|bought|ordered)|(?:have|'ve|i)\s+already\s+"
    r"(?:got|tried|bought|ordered))\s+(?:(?:a|an|the|some|my|one|two|several|plenty\s+of|lots\s+of)\s+)?"
    r"(?:(?!(?:this|that|these|those)\b)[\w'-]+\s+)?$|已经有(?:了)?(?:一个|一款|一支|一台)?$",
    re.I,
)
# What the shopper needs, said after what they have: "..., I need ink for it", "...，想要妆前乳".
_NEED_AFTER = re.compile(r"\b(?:need|want|looking\s+for|shopping\s+for|after)\b|想要|需要|想买|找", re.I)


def _already_had(text: str, m: Mention) -> bool:
    """A product type the shopper says they already have ("I already have a printer")."""
    return bool(_ALREADY_HAD.search(text[max(0, m.start - 40) : m.start]))


def _moved_away(text: str, m: Mention) -> bool:
    """A brand the shopper had, with a complaint in the same sentence ("I tried X and it didn't
    help", "used X but it broke me out") or a wish to move on after it ("been using X for years,
    want to try something different", "my mom swears by X but it's too pricey")."""
    if not _HAD_BEFORE.search(text[max(0, m.start - 24) : m.start]):
        return False
    sentence = re.split(r"[.!?;。！？；]", text[m.end :], maxsplit=1)[0]
    return bool(
        lexicon.cue("mention_cues", "dislike_after").search(sentence)
        or lexicon.cue("mention_cues", "moving_on").search(text, m.end)
    )


def build_query(text: str, taken: bytearray) -> str:
    """What is left for retrieval: unclaimed text minus filler words and stray punctuation."""
    rest = "".join(" " if taken[i] else c for i, c in enumerate(text))
    rest = _filler_words().sub(" ", rest)
    rest = re.sub(r"[^\w\s'&-]+", " ", rest)
    rest = re.sub(r"(?<!\w)['&-]+|['&-]+(?!\w)", " ", rest)
    return " ".join(rest.split())[:300]


# --- negated plain words: "nothing too scary", "without parabens", "不要太恐怖的", "不含酒精" -----
# A negated word is never evidence for an item: it leaves the query (the parser scores a negated
# everyday word's kinds as avoided, a penalty, whether or not a degree such as "too" / "太" softens it).
_NEG_CUE = re.compile(
    # longer phrases first: the alternation takes the first that matches ("not" before "not a fan of")
    r"\b(?:not\s+(?:a\s+)?(?:big\s+)?fan\s+of|not|no(?!\s+matter\b)|nothing|never|without|isn'?t|aren'?t|wasn'?t|nor|"
    r"except(?:\s+for)?|other\s+than|anything\s+but|apart\s+from|aside\s+from|rather\s+than|"
    r"instead\s+of|hates?|hated|dislikes?|can'?t\s+stand|(?:very\s+|really\s+|super\s+|highly\s+)?allergic\s+to|"
    # "less violent", "it was too long": a wish away from the word, not for it ("less than $20"
    # and "less known" were read before this)
    r"less(?!\s+than)|too|"
    r"(?:don'?t|do\s+not|doesn'?t|didn'?t)\s+(?:really\s+)?(?:want|like|need|love))\b"
    # not the questions "有没有" (is there), "要不要", "是不是", "能不能"; "但是不要" is a negation
    # ("但是不要太血腥"); 别 inside 特别 (especially), 区别, 分别, 级别, 性别, 类别, 个别 is none, and
    # neither is 太 in 太空 (space), 太阳 (sun), 太太 (wife), 太极
    r"|(?<![不别要])太(?=[\u4e00-\u9fff])(?![空阳太极])|不想要|(?:(?<=[但可还就只]是)|(?<![要是]))不要|不含|(?<!有)没有|(?<!能)不能|(?<!会)不会"
    r"|(?<![特区分级性类个])别|已经有(?:很多|好多|不少|太多|一堆|一大堆)"
    r"|(?:(?<=[但可还就只]是)|(?<![要是好能会可有]))不(?=[\u4e00-\u9fff])(?![是错同过])",
    re.I,
)
_NEG_GAP = re.compile(
    # "I hate the smell of coconut", "nothing that smells girly": the sense is no word of the thing hated
    r"(?:\s*(?:\b(?:(?:that|which)\s+(?:smells?|looks?|feels?|tastes?)|too|so|very|really|overly|a|an|the|any|"
    r"anything|something|of|with|that|much|many|(?:a\s+)?lot\s+of|lots\s+of|(?:smell|scent|taste|texture|feel)\s+of)\b|太|很|那么|过于|含|带|有))*\s*",
    re.I,
)
_NEG_WORD = re.compile(r"[A-Za-z][\w'-]*|[\u4e00-\u9fff]{1,4}")
_NEG_LIST = re.compile(r"\s*,?\s*(?:\bor\b|\bnor\b|、|或者?)\s*", re.I)
_ZH_WORD_END = re.compile(r"[的了吧呢啊呀]")


# "I'd prefer a cream over a concealer", "rather a thriller than a horror": the word after "over" /
# "than" is what the shopper turns away from, but only in a clause that states a preference ("over
# $20" and "more than 3" are prices and counts). Chinese: "比起遮瑕膏更想要面霜", "面霜而不是遮瑕膏".
_PREFERENCE = re.compile(r"\b(?:prefer(?:s|red|ring)?|rather|favou?r(?:s|ed)?|go\s+for|pick|choose)\b", re.I)
_CONTRAST = re.compile(r"\b(?:over|than)\b(?!\s*(?:[$€£¥]|\d))", re.I)
_ZH_CONTRAST = re.compile(r"比起|而不是|而非")
_CLAUSE_END = re.compile(r"[,.;!?，。；！？]|\bbut\b", re.I)


def contrast_cues(text: str, taken: bytearray) -> list[tuple[int, int]]:
    """Spans of "over" / "than" that follow a preference word in the same clause, and the Chinese
    比起 / 而不是: cues that negate the mention after them, as "not" does."""
    out = scan_cues(_ZH_CONTRAST, text, taken)
    for pref in _PREFERENCE.finditer(text):
        clause_end = _CLAUSE_END.search(text, pref.end())
        stop = clause_end.start() if clause_end else len(text)
        m = _CONTRAST.search(text, pref.end(), stop)
        if m is not None and not overlaps(taken, *m.span()):
            out.append(m.span())
    return sorted(set(out))


def negation_cues(text: str, taken: bytearray) -> list[tuple[int, int]]:
    """Spans of the cues that negate a brand or category mention: "not", "without", 不要... and
    the contrast of a stated preference ("a cream over a concealer")."""
    return sorted({*scan_cues(cue("negation"), text, taken), *contrast_cues(text, taken)})


@dataclass(frozen=True, slots=True)
class NegatedWord:
    """One word under a negation cue: its span and its cue's (before the word, or after it:
    "perfume gives me headaches")."""

    start: int
    end: int
    cue_start: int
    cue_end: int

    @property
    def claim(self) -> tuple[int, int]:
        """The span of the word with its cue."""
        return min(self.start, self.cue_start), max(self.end, self.cue_end)


def negated_words(text: str, taken: bytearray) -> list[NegatedWord]:
    """The words that negation cues govern in ``text`` (one word after the cue and its degree or
    filler words, and the words a list continues with: "not too dark or violent"), skipping
    spans already read as something else (a negated brand, a price, a rejected page)."""
    out: list[NegatedWord] = []
    spans = [m.span() for m in _NEG_CUE.finditer(text)] + contrast_cues(text, taken)
    for cue_start, cue_end in sorted(spans):
        if any(taken[cue_start:cue_end]):
            continue
        gap = _NEG_GAP.match(text, cue_end)
        pos = gap.end() if gap else cue_end
        while (word := _NEG_WORD.match(text, pos)) is not None:
            start, end = word.span()
            if cut := _ZH_WORD_END.search(word.group()):  # "恐怖的电影": the word ends at 的
                end = start + cut.start()
            if end > start and not any(taken[start:end]):
                out.append(NegatedWord(start, end, cue_start, cue_end))
            cont = _NEG_LIST.match(text, end)
            if cont is None or cont.end() == end:
                break
            pos = cont.end()
    for cue_start, cue_end in harm_cues(text, taken):
        out += [NegatedWord(a, b, cue_start, cue_end) for a, b in _words_before(text, cue_start, taken)]
    return out


def claim_negations(text: str, taken: bytearray, governed: list[NegatedWord]) -> None:
    """Claim the negated words with their cues, and what a thing does to the shopper ("it gives me
    a rash") although no word before it was left to avoid: none of it is a search word."""
    for w in governed:
        take(taken, *w.claim)
    for a, b in harm_cues(text, taken):
        take(taken, a, b)

"""How a ``free`` shopper says a planned turn: the surface of a chat message, not its content.

The simulated shopper (``bench.simulator.DescribeShopper``) decides *what* to say in a turn (the
product type, an attribute word, a budget ceiling, a reaction to what was shown, the brand when
asked): a tuple of ``PlanPart``. The ``describe`` mode renders those parts with a few fixed
templates; ``Voice.say`` renders the same parts the way people write in a shop's chat box:
openers and little stories ("my sister's birthday is next week and ..."), questions as well as
statements, hedges, politeness, run-on sentences, lower case without punctuation, budgets as
"twenty bucks max" or "不超过二十块", and now and then a typo.

The wording here was written from how people write shopping requests, not from the assistant's
parser, so the bench can tell whether the assistant understands people who talk freely. Two
rules keep the bench measuring something: a fact (type phrase, attribute word, brand, budget
number) is always said whole (its words may be inflected, singular for plural, or a number
spelled out, never misspelt), and noise (typos, dropped apostrophes) only ever touches filler.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PlanPart", "PlanTurn", "Voice", "VoiceConfig", "number_words", "number_words_zh", "singular"]

# What a plan part means (the keys of ``bench.simulator.DESCRIBE_TEMPLATES``).
PART_KEYS = frozenset(
    {"open", "open_attr", "attr", "budget_soft", "budget_cap", "no_budget", "brand", "no_brand"}
    | {"cheaper", "premium", "more_like", "reject", "more"}
)


@dataclass(frozen=True)
class PlanPart:
    """One thing the shopper says in a turn, as facts (no wording).

    ``variant`` is the index of the ``describe`` template drawn for it: the plan draws it from
    the shopper's seeded stream whatever the mode, so both modes share one plan per seed.
    """

    key: str
    variant: int = 0
    type_phrase: str = ""  # open / open_attr: the product type in everyday words
    attribute: str = ""  # open_attr / attr: one attribute word, or the era phrase
    decade: int | None = None  # set when ``attribute`` is the era ("from the 1990s")
    budget: float | None = None  # budget_cap: the round ceiling
    brand: str = ""  # brand: the target's brand
    position: int | None = None  # more_like: 0-based position of the shown item it resembles

    def __post_init__(self) -> None:
        if self.key not in PART_KEYS:
            raise ValueError(f"unknown plan part {self.key!r}; one of {sorted(PART_KEYS)}")
        if self.key in ("open", "open_attr") and not self.type_phrase:
            raise ValueError(f"{self.key} needs a type_phrase")
        if self.key in ("open_attr", "attr") and not self.attribute:
            raise ValueError(f"{self.key} needs an attribute")
        if self.key == "budget_cap" and (self.budget is None or self.budget <= 0):
            raise ValueError(f"budget_cap needs a budget > 0, got {self.budget}")
        if self.key == "brand" and not self.brand:
            raise ValueError("brand needs a brand")
        if self.key == "more_like" and (self.position is None or self.position < 0):
            raise ValueError(f"more_like needs a position >= 0, got {self.position}")


@dataclass(frozen=True)
class PlanTurn:
    """Everything the shopper says in one turn. ``media``: the catalog is films/books/music/games
    (a birthday present story fits both, "my old one broke" does not)."""

    parts: tuple[PlanPart, ...]
    number: int = 0  # 0 = the opening message
    media: bool = False


@dataclass(frozen=True)
class VoiceConfig:
    """How chatty and how sloppy the voice is; shares are per message."""

    language: str = "en"
    opener_share: float = 0.55  # a greeting or a story before the first request
    chitchat_share: float = 0.25  # thanks / please / "lol" around a later message
    lowercase_share: float = 0.4  # all lower case (facts are lower case anyway, brands stay)
    bare_share: float = 0.3  # no final full stop
    hedge_share: float = 0.3  # "i guess", "maybe", "kinda" on a fact
    noise_share: float = 0.08  # one typo, dropped apostrophe or doubled letter in a filler word

    def __post_init__(self) -> None:
        if self.language not in ("en", "zh"):
            raise ValueError(f"language must be 'en' or 'zh', got {self.language!r}")
        for name in ("opener_share", "chitchat_share", "lowercase_share", "bare_share", "hedge_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not 0.0 <= self.noise_share <= 1.0:
            raise ValueError(f"noise_share must be in [0, 1], got {self.noise_share}")


# --- numbers ------------------------------------------------------------------------------------
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
]
_ONES += ["sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """An amount as people write it out: 20 -> "twenty", 125 -> "a hundred and twenty-five"."""
    if not 0 <= n < 10_000:
        raise ValueError(f"number_words covers 0..9999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    big, rest = (1000, "thousand") if n >= 1000 else (100, "hundred")
    head, tail = divmod(n, big)
    lead = "a" if head == 1 else number_words(head)
    return f"{lead} {rest}" + (f" and {number_words(tail)}" if tail else "")


_ZH_DIGITS = "零一二三四五六七八九"


def number_words_zh(n: int) -> str:
    """An amount in Chinese numerals: 20 -> 二十, 15 -> 十五, 250 -> 二百五十, 1000 -> 一千."""
    if not 0 <= n < 10_000:
        raise ValueError(f"number_words_zh covers 0..9999, got {n}")
    if n < 10:
        return _ZH_DIGITS[n]
    if n < 20:
        return "十" + (_ZH_DIGITS[n - 10] if n > 10 else "")
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            out += ("零" if zero and out else "") + _ZH_DIGITS[d] + unit
            zero = False
        elif out:
            zero = True
    return out


def singular(phrase: str) -> str | None:
    """The singular of a plural product phrase ("hair sprays" -> "hair spray"), or None when the
    last word is not a plain plural or the phrase joins two types ("creams and moisturizers")."""
    words = phrase.split()
    if not words or " and " in f" {phrase} " or "," in phrase:
        return None
    last = words[-1]
    if len(last) <= 3 or not last.endswith("s") or last.endswith(("ss", "us", "is")):
        return None
    if last.endswith("ies") and len(last) > 4:
        one = last[:-3] + "y"
    elif last.endswith(("shes", "ches", "xes", "sses")):
        one = last[:-2]
    else:
        one = last[:-1]
    return " ".join([*words[:-1], one])


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# --- English wording --------------------------------------------------------------------------
# {one}: "a hair spray" / "some hair sprays" / "hair sprays"; {kind}: a bare type ("hair spray").
EN_GREETINGS = (
    "hi",
    "hi!",
    "hey",
    "hey there",
    "hello",
    "hello!",
    "hiya",
    "hi there",
    "ok so",
    "so",
    "um hi",
    "good morning!",
    "evening!",
    "hey, quick question",
    "hi, hope you can help",
    "yo",
)
EN_WHO = (
    "mom",
    "dad",
    "sister",
    "brother",
    "wife",
    "husband",
    "girlfriend",
    "boyfriend",
    "best friend",
    "grandma",
    "roommate",
    "aunt",
    "daughter",
    "son",
    "coworker",
    "boss",
    "niece",
    "mother in law",
)
EN_STORIES_GOODS = (
    "so my old one broke and",
    "ok so i ran out and",
    "mine is almost empty so",
    "finally treating myself,",
    "my {who} has been asking for ages, so",
    "looking for a gift for my {who}.",
    "my {who}'s birthday is next week and",
    "need a present for my {who},",
    "christmas shopping for my {who} lol.",
    "moving into a new place and",
    "i saw something like this on tiktok and",
    "my {who} recommended i try some and",
    "first time buying this kind of thing so bear with me,",
    "trying to replace what i had before,",
)
EN_STORIES_MEDIA = (
    "movie night with my {who} tonight and",
    "bored on a sunday,",
    "my {who}'s birthday is next week and",
    "looking for a gift for my {who}.",
    "long flight tomorrow so",
    "rainy weekend here,",
    "just finished something great and",
    "my {who} recommended i try one and",
)
EN_STORY_INTO = (  # a story that names the type through the person it is for
    "my {who}'s birthday is next week and they're into {kinds}, any ideas",
    "my {who} is really into {kinds} and i want to surprise them",
    "gift for my {who} who loves {kinds}",
)
EN_ASK = (  # the type as a question or a request; {one} a/some/bare, {kind} bare singular-ish
    "i need {one}",
    "i need a new {kind}",
    "need a new {kind}",
    "i'm looking for {one}",
    "looking for {one}",
    "i want to buy {one}",
    "i'm after {one}",
    "i'd like {one}",
    "trying to find {one}",
    "i want to get {one}",
    "do you have {kinds}?",
    "do you sell {kinds}?",
    "{kind} recommendations?",
    "what {kind} would you suggest?",
    "any good {kinds}?",
    "can you help me find {one}?",
    "could you recommend {one}?",
    "got any {kinds}?",
    "what's a good {kind}?",
    "can u show me some {kinds}",
    "i'm shopping for {one}",
    "i'd love some {kind} suggestions",
    "which {kinds} do people like?",
    "in the market for {one}",
)
EN_ATTR_FOLD = (  # an attribute folded into the request
    ", one that's {a}",
    " - preferably {a}",
    ". {a} would be nice",
    ", it should be {a}",
    ", ideally {a}",
    " that's {a}",
    ", something {a}",
    ", {a} if possible",
    ". kinda {a}",
    " - {a} ideally",
    ", maybe {a}",
    ", and i want it {a}",
    " ({a} please)",
    ". has to be {a} tho",
    ", {a} is a must",
)
EN_ATTR = (
    "something {a}",
    "preferably {a}",
    "{a} would be nice",
    "it should be {a}",
    "one that's {a}",
    "ideally {a}",
    "oh and {a}",
    "also {a}",
    "i'd like it {a}",
    "{a} maybe?",
    "kinda {a}",
    "has to be {a}",
    "{a} is important to me",
    "something more {a}",
    "{a} if you have it",
    "what about {a} ones?",
    "i was thinking {a}",
    "do you have anything {a}?",
)
EN_ERA = (
    "from the {d}s",
    "something from the {d}s",
    "{d}s would be great",
    "it came out in the {d}s i think",
    "made in the {d}s",
    "one from the {d}s",
    "i'm in the mood for the {d}s",
)
EN_HEDGES_BEFORE = ("i guess", "maybe", "kinda", "sort of", "ideally", "probably", "i think")
# Budget ceilings; {m} digits, {w} words, {c} "$20". Never "around X": that is a band on both
# sides, and the plan's ceiling sits 10-60% above the target's price.
EN_BUDGET_CAP = (
    "under {c}",
    "less than {m} bucks",
    "{w} dollars max",
    "no more than {m}",
    "no more than {c}",
    "cheap-ish, like under {m}",
    "budget's about {m}",
    "my budget is {w} dollars",
    "max {c}",
    "{c} or less",
    "up to {c}",
    "i don't want to spend more than {c}",
    "can't go over {m}",
    "below {w} bucks",
    "{m} dollars tops",
    "less than {w} dollars",
    "my budget is like {m}",
    "ideally under {c}",
    "i'd say {m} max",
    "nothing over {c} please",
    "keep it under {w} dollars",
    "{m}$ or under",
    "budget ~{c}",
)
EN_BUDGET_SOFT = (
    "not too pricey",
    "nothing too expensive",
    "something affordable",
    "i'm on a budget",
    "cheap-ish",
    "i don't want to spend a lot",
    "not looking to spend much",
    "budget friendly would be good",
    "reasonably priced please",
    "nothing crazy expensive",
)
EN_NO_BUDGET = (
    "price doesn't matter much",
    "no budget really",
    "money's not an issue",
    "whatever it costs is fine",
    "not worried about price",
    "any price is ok",
    "don't care about the price",
)
EN_BRAND = (
    "i think it was by {b}?",
    "{b} maybe",
    "i usually buy {b}",
    "i like {b}",
    "{b} if you have it",
    "i've had {b} before and liked it",
    "something from {b} would be good",
    "prob {b}",
    "{b} i think",
    "my go-to is {b}",
)
EN_NO_BRAND = (
    "no brand in mind",
    "don't care about the brand",
    "any brand",
    "brand doesn't matter",
    "not picky about brands",
    "no preference really",
    "whatever brand",
    "no idea about brands tbh",
)
EN_CHEAPER = (
    "too expensive",
    "those look too fancy",
    "way too pricey",
    "something cheaper?",
    "these are out of my price range",
    "hmm those cost too much",
    "cheaper options?",
    "bit much price wise",
    "whoa pricey, anything cheaper",
)
EN_PREMIUM = (
    "those look kinda cheap",
    "something nicer?",
    "better quality maybe?",
    "something more premium",
    "these seem too cheap",
    "higher end please",
    "i can spend more than that, something nicer",
)
# {o}: "second", "2nd"; {n}: "2".
EN_MORE_LIKE = (
    "the {o} one's close but no",
    "closer to the {o} one",
    "more like the {o} one",
    "#{n} is kinda close",
    "something like number {n}?",
    "the {o} one is almost it",
    "closer but not quite, like the {o} one",
    "ooh the {o} one is close, more like that",
    "number {n} is the closest so far",
)
EN_REJECT = (
    "nope",
    "meh not really",
    "none of these",
    "not what i had in mind",
    "i don't like any of these",
    "hmm something else?",
    "no not those",
    "nah",
    "not quite",
    "none of those are it",
    "nope, none",
    "not really my thing",
    "hmm no",
)
EN_MORE = (
    "anything else?",
    "what else do you have?",
    "more options?",
    "show me more",
    "other ones?",
    "any others?",
    "keep going",
    "what else",
)
EN_PREFIX_CHAT = ("thanks!", "thank you.", "ok", "hmm", "ah ok", "cool, but", "thx,", "sorry,")
EN_SUFFIX_CHAT = (" thanks", " pls", " please", " :)", " lol", " haha", " thank you!", " ty")
EN_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
EN_ORDINAL_NUMS = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th")
# A misspelling people make in a filler word (never in a fact word: see ``_noisy``).
EN_TYPOS = {
    "something": "somethign",
    "really": "realy",
    "please": "plese",
    "looking": "lookign",
    "would": "woudl",
    "maybe": "mabye",
    "probably": "probly",
    "the": "teh",
    "recommend": "reccomend",
    "want": "wnat",
    "know": "konw",
    "thanks": "thnaks",
    "have": "hvae",
    "with": "wiht",
    "birthday": "bday",
    "anything": "anythign",
    "because": "becuase",
    "about": "abut",
}

# --- Chinese wording ----------------------------------------------------------------------------
ZH_WHO = (
    "我妈",
    "我爸",
    "我姐",
    "我妹",
    "我老婆",
    "我老公",
    "我女朋友",
    "我男朋友",
    "闺蜜",
    "同事",
    "我奶奶",
)
ZH_GREETINGS = ("你好", "在吗", "您好", "hi", "哈喽", "请问一下", "打扰一下")
ZH_STORIES_GOODS = (
    "我之前那个用完了，",
    "旧的坏了，",
    "下周{who}生日，",
    "想给{who}买个礼物，",
    "最近想犒劳一下自己，",
    "{who}一直说想要，",
    "第一次买这类东西，",
    "刚搬家，",
)
ZH_STORIES_MEDIA = (
    "今晚和{who}一起看，",
    "周末在家没事干，",
    "下周{who}生日，",
    "想给{who}挑个礼物，",
    "最近有点无聊，",
)
ZH_ASK = (
    "我想买{p}",
    "有没有{p}？",
    "帮我找一下{p}",
    "帮我找{p}",
    "给{who}买{p}",
    "求推荐{p}",
    "{p}有推荐吗？",
    "最近想入手{p}",
    "想看看{p}",
    "有什么好的{p}推荐吗",
    "麻烦推荐一下{p}",
    "我需要{p}",
    "想要{p}",
    "你们这有{p}吗？",
)
ZH_ATTR_FOLD = (
    "，最好是{a}的",
    "，要{a}一点的",
    "，{a}的就行",
    "，希望是{a}的",
    "，要那种{a}的",
    "（{a}的）",
)
ZH_ASK_ATTR = ("我想买{a}的{p}", "有没有{a}的{p}？", "帮我找{a}的{p}", "求推荐{a}的{p}")
ZH_ATTR = (
    "最好是{a}的",
    "要{a}一点的",
    "{a}的就行",
    "希望是{a}的",
    "想要{a}的",
    "{a}的有吗？",
    "要那种{a}的",
    "还有，要{a}的",
)
ZH_ERA = ("最好是{a}的", "想要{a}的", "{a}的就行", "要{a}的", "{a}的有吗？")
ZH_BUDGET_CAP = (
    "{m}元以内",
    "不超过{z}块",
    "{m}刀以内",
    "最多{m}美元",
    "{z}美元以内",
    "预算大概{m}块",
    "别超过{m}块钱",
    "价格在{m}以下",
    "预算{z}块以内",
    "控制在{m}美元以内吧",
)
ZH_BUDGET_SOFT = ("不要太贵", "便宜点的", "性价比高一点的", "别太贵", "实惠一点", "价格亲民一点")
ZH_NO_BUDGET = ("预算无所谓", "价格不是问题", "多少钱都行", "钱不是问题")
ZH_BRAND = ("我一般用{b}", "好像是{b}的？", "{b}吧", "我喜欢{b}", "{b}的就挺好", "之前买过{b}的")
ZH_NO_BRAND = ("品牌无所谓", "什么牌子都行", "没有特别想要的牌子", "牌子不重要")
ZH_CHEAPER = ("太贵了", "有便宜点的吗？", "这些都太贵了，便宜一点的", "超预算了", "价格有点高")
ZH_PREMIUM = ("看着有点廉价", "要好一点的", "有没有高档一点的？", "这些太便宜了，要好点的")
ZH_MORE_LIKE = (
    "{o}有点接近了，但不是",
    "更像{o}那样的",
    "{o}比较接近",
    "类似{o}的还有吗？",
    "{o}差不多，再找找",
)
ZH_REJECT = ("不是这些", "都不太对", "不喜欢这些", "嗯…不是我想要的", "都不是", "不对", "这些不行")
ZH_MORE = ("还有别的吗？", "换一批", "再看看别的", "还有吗？")
ZH_PREFIX_CHAT = ("谢谢，", "嗯，", "好的，", "哦，")
ZH_SUFFIX_CHAT = ("，谢谢", "，麻烦了", "哈哈", "～", "！")
ZH_ORDINALS = (
    "第一个",
    "第二个",
    "第三个",
    "第四个",
    "第五个",
    "第六个",
    "第七个",
    "第八个",
    "第九个",
    "第十个",
)


@dataclass
class _Piece:
    """A stretch of the message: a fact (said whole, never noised) or filler."""

    text: str
    fact: bool = False


_FIELD = re.compile(r"\{(\w+)\}")


def _fill(template: str, facts: dict[str, str], filler: dict[str, str] | None = None) -> list[_Piece]:
    """A template as pieces: the ``facts`` fields become fact pieces, ``filler`` fields stay filler."""
    out: list[_Piece] = []
    pos = 0
    for m in _FIELD.finditer(template):
        out.append(_Piece(template[pos : m.start()]))
        name = m.group(1)
        if name in facts:
            out.append(_Piece(facts[name], fact=True))
        elif filler is not None and name in filler:
            out.append(_Piece(filler[name]))
        else:
            raise KeyError(f"template {template!r} needs {name!r}")
        pos = m.end()
    out.append(_Piece(template[pos:]))
    return [p for p in out if p.text]


class Voice:
    """Says a planned turn in free, chat-like words; deterministic given the ``rng`` it is handed."""

    def __init__(self, config: VoiceConfig | None = None):
        self.config = config or VoiceConfig()

    @property
    def language(self) -> str:
        return self.config.language

    def say(self, turn: PlanTurn, rng: random.Random) -> str:
        """The message for ``turn``: every fact of its parts said whole, the rest in free words."""
        return "".join(p.text for p in self.pieces(turn, rng)).strip()

    def pieces(self, turn: PlanTurn, rng: random.Random) -> list[_Piece]:
        """``say`` before joining: the facts marked, so a test can check they survived intact."""
        clauses = [self._clause(part, turn, rng) for part in turn.parts]
        clauses = [c for c in clauses if c]
        if not clauses:
            clauses = [self._clause(PlanPart("more"), turn, rng)]
        zh = self.language == "zh"
        out: list[_Piece] = []
        for i, clause in enumerate(clauses):
            if i:
                out.append(_Piece(self._joint(rng, out, clause)))
            out += clause
        out = self._frame(out, turn, rng)
        if not zh:
            out = self._style(out, rng)
        if rng.random() < self.config.noise_share:
            _noisy(out, rng)
        return out

    # --- one clause per plan part -------------------------------------------------------------
    def _clause(self, part: PlanPart, turn: PlanTurn, rng: random.Random) -> list[_Piece]:
        zh = self.language == "zh"
        key = part.key
        if key in ("open", "open_attr"):
            return self._zh_open(part, turn, rng) if zh else self._open(part, turn, rng)
        if key == "attr":
            return self._attribute(part, rng)
        if key == "budget_cap":
            return self._budget(part, rng)
        if key == "brand":
            return _fill(rng.choice(ZH_BRAND if zh else EN_BRAND), {"b": part.brand})
        if key == "more_like":
            pos = part.position or 0
            if zh:
                o = ZH_ORDINALS[pos] if pos < len(ZH_ORDINALS) else f"第{pos + 1}个"
                return _fill(rng.choice(ZH_MORE_LIKE), {"o": o})
            o = rng.choice((EN_ORDINALS, EN_ORDINAL_NUMS))[pos] if pos < len(EN_ORDINALS) else f"{pos + 1}th"
            return _fill(rng.choice(EN_MORE_LIKE), {"o": o, "n": str(pos + 1)})
        lines = {
            "budget_soft": (ZH_BUDGET_SOFT, EN_BUDGET_SOFT),
            "no_budget": (ZH_NO_BUDGET, EN_NO_BUDGET),
            "no_brand": (ZH_NO_BRAND, EN_NO_BRAND),
            "cheaper": (ZH_CHEAPER, EN_CHEAPER),
            "premium": (ZH_PREMIUM, EN_PREMIUM),
            "reject": (ZH_REJECT, EN_REJECT),
            "more": (ZH_MORE, EN_MORE),
        }[key][0 if zh else 1]
        return [_Piece(rng.choice(lines))]

    def _type_forms(self, phrase: str, rng: random.Random) -> tuple[str, str, str]:
        """({one}, {kind}, {kinds}) for a type phrase: "a hair spray"/"hair sprays", "hair spray",
        "hair sprays". A phrase with its own article ("a drama movie") keeps it for {one}."""
        words = phrase.split()
        if words[0] in ("a", "an") and len(words) > 1:
            bare = " ".join(words[1:])
            plural = bare + "s"
            return (rng.choice((phrase, f"some {plural}", plural)), bare, plural)
        one = singular(phrase)
        if one is None:  # a mass noun ("nail polish", "makeup") or two types joined
            return (rng.choice((phrase, f"some {phrase}", f"good {phrase}")), phrase, phrase)
        return (
            rng.choice((f"{_article(one)} {one}", f"some {phrase}", phrase, f"a good {one}")),
            one,
            phrase,
        )

    def _open(self, part: PlanPart, turn: PlanTurn, rng: random.Random) -> list[_Piece]:
        one, kind, kinds = self._type_forms(part.type_phrase, rng)
        who = rng.choice(EN_WHO)
        facts = {"one": one, "kind": kind, "kinds": kinds}
        r = rng.random()
        if r < 0.12 and not turn.media:
            out = _fill(rng.choice(EN_STORY_INTO), facts, {"who": who})
        else:
            out = []
            if r < self.config.opener_share:
                stories = EN_STORIES_MEDIA if turn.media else EN_STORIES_GOODS
                lead = rng.choice(stories) if rng.random() < 0.6 else rng.choice(EN_GREETINGS)
                out.append(_Piece(lead.replace("{who}", who) + " "))
            ask = rng.choice(EN_ASK)
            if ask.startswith("i want to get") and rng.random() < 0.5:
                ask = ask.replace("i want to get", rng.choice(("i want to get my " + who, "wanna get them")))
            out += _fill(ask, facts)
        if part.key == "open_attr":
            attr = self._attribute(part, rng, folded=True)
            if out and out[-1].text.endswith("?"):  # "any good X?, one that's Y" reads badly
                if attr[0].text.startswith("."):
                    attr[0] = _Piece(attr[0].text[1:])
                else:
                    out[-1] = _Piece(out[-1].text[:-1], out[-1].fact)
                    attr.append(_Piece("?"))
            out += attr
        return out

    def _attribute(self, part: PlanPart, rng: random.Random, folded: bool = False) -> list[_Piece]:
        zh = self.language == "zh"
        if part.decade is not None and not zh:
            era = _fill(rng.choice(EN_ERA), {"d": str(part.decade)})
            return [_Piece(", "), *era] if folded else era
        if zh:
            if part.decade is not None:
                era = _fill(rng.choice(ZH_ERA), {"a": part.attribute})
                return [_Piece("，"), *era] if folded else era
            return _fill(rng.choice(ZH_ATTR_FOLD if folded else ZH_ATTR), {"a": part.attribute})
        line = rng.choice(EN_ATTR_FOLD if folded else EN_ATTR)
        out = _fill(line, {"a": part.attribute})
        # A hedge goes before a bare wish ("kinda {a}", "i guess something {a}"), not before a
        # line that already hedges or asks ("ideally {a}", "do you have anything {a}?").
        bare = line.startswith(("{a}", "something", "one that"))
        if not folded and bare and rng.random() < self.config.hedge_share:
            out.insert(0, _Piece(rng.choice(EN_HEDGES_BEFORE) + " "))
        return out

    def _budget(self, part: PlanPart, rng: random.Random) -> list[_Piece]:
        assert part.budget is not None
        m = f"{part.budget:g}"
        whole = float(part.budget).is_integer() and part.budget < 10_000
        if self.language == "zh":
            lines = [t for t in ZH_BUDGET_CAP if whole or "{z}" not in t]
            z = number_words_zh(int(part.budget)) if whole else m
            return _fill(rng.choice(lines), {"m": m, "z": z})
        lines = [t for t in EN_BUDGET_CAP if whole or "{w}" not in t]
        w = number_words(int(part.budget)) if whole else m
        line = rng.choice(lines)
        out = _fill(line, {"m": m, "w": w, "c": f"${m}"})
        if (
            line.startswith(("under", "less", "no more", "around", "up to", "max"))
            and rng.random() < self.config.hedge_share
        ):
            out.insert(0, _Piece(rng.choice(("maybe ", "i guess ", "probably ", "like "))))
        return out

    def _zh_open(self, part: PlanPart, turn: PlanTurn, rng: random.Random) -> list[_Piece]:
        who = rng.choice(ZH_WHO)
        out: list[_Piece] = []
        if rng.random() < self.config.opener_share:
            if rng.random() < 0.6:
                story = rng.choice(ZH_STORIES_MEDIA if turn.media else ZH_STORIES_GOODS)
                out.append(_Piece(story.replace("{who}", who)))
            else:
                out.append(_Piece(rng.choice(ZH_GREETINGS) + rng.choice(("，", "！", " "))))
        if part.key == "open_attr" and rng.random() < 0.4:
            return out + _fill(rng.choice(ZH_ASK_ATTR), {"a": part.attribute, "p": part.type_phrase})
        out += _fill(rng.choice(ZH_ASK), {"p": part.type_phrase}, {"who": who})
        if part.key == "open_attr":
            if out[-1].text.endswith("？"):
                out[-1] = _Piece(out[-1].text[:-1], out[-1].fact)
            out += self._attribute(part, rng, folded=True)
        return out

    # --- gluing and style ---------------------------------------------------------------------
    def _joint(self, rng: random.Random, before: Sequence[_Piece], after: Sequence[_Piece]) -> str:
        """Between two clauses: a full stop, a comma, "and", a dash or nothing (a run-on)."""
        ends_q = bool(before) and before[-1].text.rstrip().endswith(("?", "？"))
        if self.language == "zh":
            return "" if ends_q else rng.choice(("，", "。", " ", "！", "，"))
        if ends_q:
            return " "
        if after and after[0].text.startswith(("oh and", "also")):  # no "and oh and also"
            return rng.choice((". ", ", ", " "))
        return rng.choice((". ", ", ", " and ", " - ", " ", ". also ", "! ", ", oh and ", "... "))

    def _frame(self, pieces: list[_Piece], turn: PlanTurn, rng: random.Random) -> list[_Piece]:
        """Chit-chat around a later message, and how the message ends."""
        zh = self.language == "zh"
        if turn.number > 0 and rng.random() < self.config.chitchat_share:
            if rng.random() < 0.5:
                pieces.insert(
                    0, _Piece(rng.choice(ZH_PREFIX_CHAT if zh else EN_PREFIX_CHAT) + ("" if zh else " "))
                )
            else:
                pieces.append(_Piece(rng.choice(ZH_SUFFIX_CHAT if zh else EN_SUFFIX_CHAT)))
        last = pieces[-1].text.rstrip() if pieces else ""
        if last.endswith(("?", "？", "!", "！", ")", ":)", "~", "～", ".", "。")):
            return pieces
        if zh:
            pieces.append(_Piece(rng.choice(("。", "", "！", "。"))))
        elif rng.random() >= self.config.bare_share:
            pieces.append(_Piece(rng.choice((".", ".", "!") if turn.number == 0 else (".", "!", ".."))))
        return pieces

    def _style(self, pieces: list[_Piece], rng: random.Random) -> list[_Piece]:
        """Lower case all through, or a capital at the start, as people type on phones and laptops."""
        if rng.random() < self.config.lowercase_share:
            return [p if p.fact else _Piece(p.text.lower()) for p in pieces]
        first = pieces[0]
        if not first.fact:
            pieces[0] = _Piece(first.text[:1].upper() + first.text[1:])
        for i, p in enumerate(pieces):  # "i" on its own is "I" when the shopper capitalises
            if not p.fact:
                pieces[i] = _Piece(re.sub(r"\bi(?=\b|')", "I", p.text))
        return pieces


def _noisy(pieces: list[_Piece], rng: random.Random) -> None:
    """One slip in one filler word: a known typo, a dropped apostrophe, or a doubled letter.

    Facts are never touched, nor is a filler word that could be read as a fact's word."""
    facts = {w for p in pieces if p.fact for w in re.findall(r"[^\W_]+", p.text.casefold())}
    spots = [
        (i, m)
        for i, p in enumerate(pieces)
        if not p.fact
        for m in re.finditer(r"[A-Za-z']{3,}", p.text)
        if m.group().casefold().strip("'") not in facts
    ]
    if not spots:
        return
    i, m = rng.choice(spots)
    word = m.group()
    if "'" in word:
        new = word.replace("'", "", 1)
    elif word.casefold() in EN_TYPOS and rng.random() < 0.7:
        new = EN_TYPOS[word.casefold()]
    else:
        k = rng.randrange(len(word))
        new = word[: k + 1] + word[k] + word[k + 1 :]
    text = pieces[i].text
    pieces[i] = _Piece(text[: m.start()] + new + text[m.end() :])

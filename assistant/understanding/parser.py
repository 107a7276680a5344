"""Rule-based parsing of one shopper utterance (English and Chinese) into typed constraint edits.

Rules come first because they are instant, deterministic and testable; an optional LLM callable
fills only what the rules flag as unresolved, through the ``ConstraintUpdate`` JSON schema, and
its output is validated, repaired field by field, or discarded.

Grammar (case-insensitive; ``N`` is a number such as ``20``, ``19.99``, ``1,000``, ``2k``,
``twenty``, ``两百``, ``3千``; ``C`` is an optional currency: ``$ € £ ¥ USD EUR GBP RMB CNY``,
``dollars bucks euros pounds quid yuan yen``, ``元 块 块钱 人民币 美元 欧元``):

* price ceiling: ``under|below|less than|cheaper than|no more than|at most|up to|max|within|
  budget (is|of)|spend`` ``C N C``; ``N or less|and under|max|tops``; ZH ``不超过|不到|低于|
  少于|最多|预算 N元``, ``N元以内|以下|之内|内``.
* price floor: ``over|above|more than|at least|starting at|from|minimum`` ``N``; ``N or more|and
  up|+``; ZH ``至少|不低于|高于|超过 N``, ``N元以上|起``.
* range: ``between N and N``, ``from N to N``, ``N-N`` / ``N to N`` (bare forms need a currency
  or a price word such as budget/price), ZH ``N到N元``, ``N-N块``, ``N至N``.
* about: ``around|about|approximately|roughly|~|close to N``, ``N-ish``, ``N or so``, ZH
  ``N元左右|上下``, ``大约|大概 N``: a band of +/- 25 % (``AROUND_BAND``).
* a bare amount with a currency ("a $20 lipstick", "200元的口红") reads as "about".
* A number followed by a non-money unit (stars, ml, oz, %, pack, years, SPF...) or preceded by
  ``#``/``SPF``/``rated`` is never a price, nor is a number glued to Latin letters (``350buy``,
  ``3M``, ``SPF30``; ``20ish`` still is). Several bounds combine ("over 10 but under 30").
* relative price: ``cheap(er)|less expensive|affordable|budget-friendly|too expensive``, ZH
  ``便宜(一)?点|实惠|平价|太贵`` -> "lower"; ``more expensive|pricier|high-end|premium|luxury|too
  cheap``, ZH ``贵一点|更贵|高端|高档`` -> "higher". The dialogue state resolves them against the
  prices it last showed (see ``DialogueState.apply``).
* currency is recorded, never converted: a price in another currency than the catalog's keeps
  its number and adds an ``Issue`` so the reply can say which currency the catalog uses.
* absurd prices (negative, zero ceilings, non-finite such as ``1e309``, above 1e9) yield an
  ``Issue`` with a clarifying message and no price constraint; never an exception.
* negation: ``not|no|never|without|except (for)|excluding|besides|other than|anything but|but
  not|avoid|instead of|rather than|don't want|don't like|no more|nothing from|nothing by``, ZH ``不要|不想要|除了|别|不喜欢
  |排除|不含|不考虑|去掉`` before a brand or category (up to four filler words between, e.g. "not
  anything from OPI") and every further mention joined by ``, / or and nor 和 或 、``.
* inclusion: ``only|just|exclusively|solely|nothing but|stick to``, ZH ``只要|只看|只买|仅``;
  mentioned brands are any-of ("OPI or Essie"). ``also|too|as well|or ...``, ZH ``也|还有|或者``
  add to earlier brands instead of replacing them.
* more of something else: ``something else|other options|more options|show me more|different
  ones|none of these|next``, a lone ``more``, ZH ``换一个|换一批|还有别的|其他的|更多|下一页``
  -> exclude what was shown; ``more like the second one``/``类似`` also marks ``similar``.
* references to the last shown list: ``the second (one)``, ``2nd``, ``#3``, ``number 3``,
  ``item 3``, ``the first two``, ``top 3``, ``the last one``, ``both``, ``all of them``, ``that
  one``, ``this one``, ``the cheapest one``, ``the most expensive one``; ZH ``第二个|第2款``,
  ``前两个``, ``最后一个``, ``这个|那个|这款``, ``最便宜的那个``, ``最贵的那款``. A like/dislike
  cue next to a reference ("I like the first one", "不喜欢第二个", "not the first one") is
  feedback on that item.
* brands and categories: see ``assistant.vocabulary``.
* ``query`` is what remains for retrieval after removing prices, references, negated mentions
  and control phrases (and filler such as "show me", "please", "我想要"). Positive brand and
  category words stay in it: they help the dense and BM25 retrievers while the filter enforces
  them.

Input is NFKC-normalised (full-width digits work), control and format characters become spaces,
and only the first ``MAX_PARSE_CHARS`` characters are parsed (an info ``Issue`` says so).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.understanding.matches import Ambiguous, BrandMatch, CategoryMatch, Mention, drop_descendants
from assistant.understanding.tokens import CJK_RE, normalize, stem_phrase
from assistant.understanding.vocabulary import CatalogVocabulary

__all__ = [
    "AROUND_BAND",
    "MAX_PARSE_CHARS",
    "ConstraintUpdate",
    "Issue",
    "LLMFallback",
    "ParsedUtterance",
    "PriceSpec",
    "Reference",
    "detect_language",
    "parse",
]

MAX_PARSE_CHARS = 2000
AROUND_BAND = 0.25
MAX_SANE_PRICE = 1e9

Language = Literal["en", "zh"]
LLMFallback = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Issue:
    """Something the assistant should tell or ask the shopper; ``clarify`` ones block the edit."""

    code: str
    message: str
    message_zh: str
    severity: Literal["clarify", "info"] = "clarify"

    def text(self, language: str = "en") -> str:
        return self.message_zh if language == "zh" else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "message_zh": self.message_zh,
            "severity": self.severity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Issue:
        return cls(d["code"], d["message"], d["message_zh"], d.get("severity", "clarify"))


@dataclass(frozen=True)
class PriceSpec:
    """A validated price bound as stated (no conversion); ``currency`` is an ISO code or None."""

    low: float | None
    high: float | None
    op: Literal["max", "min", "range", "around"]
    currency: str | None = None
    surface: str = ""


@dataclass(frozen=True)
class Reference:
    """Items of the last shown list the shopper points at, as 0-based positions or a selector."""

    kind: Literal["index", "first_n", "last_n", "this", "cheapest", "priciest", "all"]
    positions: tuple[int, ...] = ()
    count: int = 0
    surface: str = ""


@dataclass(frozen=True)
class ParsedUtterance:
    """Everything one utterance says about constraints; ``DialogueState.apply`` folds it in."""

    text: str
    language: Language = "en"
    language_confident: bool = False
    price: PriceSpec | None = None
    relative_price: Literal["lower", "higher"] | None = None
    currency: str | None = None
    brands_in: tuple[str, ...] = ()
    brands_out: tuple[str, ...] = ()
    categories_in: tuple[tuple[str, ...], ...] = ()
    categories_out: tuple[tuple[str, ...], ...] = ()
    weak_categories: tuple[tuple[str, ...], ...] = ()
    only: bool = False
    additive: bool = False
    exclude_shown: bool = False
    similar: bool = False
    references: tuple[Reference, ...] = ()
    feedback: Literal["like", "dislike"] | None = None
    query: str = ""
    years: tuple[int, int] | None = None  # release years, inclusive ("the 1990s" -> (1990, 1999))
    ambiguities: tuple[Ambiguous, ...] = ()
    issues: tuple[Issue, ...] = ()
    unresolved: tuple[str, ...] = ()
    source: Literal["rules", "rules+llm"] = "rules"
    mentions: tuple[Mention, ...] = field(default=(), compare=False, repr=False)

    @property
    def n_constraints(self) -> int:
        """How many distinct hard constraints this utterance gave (price, brand, category...)."""
        return sum(
            bool(x)
            for x in (
                self.price is not None or self.relative_price is not None,
                self.brands_in or self.brands_out,
                self.categories_in,
                self.categories_out,
            )
        )

    @property
    def has_content(self) -> bool:
        """Did the rules understand anything shopping-related?"""
        return bool(
            self.n_constraints
            or self.references
            or self.exclude_shown
            or self.weak_categories
            or self.query
            or self.years
        )

    @property
    def needs_llm(self) -> bool:
        return bool(self.unresolved)


# ---------------------------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------------------------
_CUR_PRE = r"(?:us\$|[$€£¥]|usd|eur|gbp|rmb|cny)"
_CUR_POST = (
    r"(?:(?:dollars?|bucks?|usd|euros?|eur|pounds?|quid|gbp|yuan|rmb|cny|yen|jpy)(?![a-z])"
    r"|[€$£¥]|元钱?|块钱?|块|人民币|円|日元|美元|美金|欧元|英镑)"
)
_WORDNUM = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|"
    r"seven|eight|nine))?|(?:a|one|two|three|four|five)\s+hundred|a\s+thousand|hundred|thousand|"
    r"eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|ten|one|two|"
    r"three|four|five|six|seven|eight|nine)(?![a-z])"
)
_CNNUM = r"[零一二两三四五六七八九十百千万]+"
_NUMBER = r"[-−]?\s?\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?"
# Budget words: "budget 30" reads as a ceiling unless a suffix ("左右", "or so") says otherwise.
_CTX_END = re.compile(
    r"(?:(?:my|the|a|our)\s+)?(?:budget|price\s+range|price\s+point|price|spend(?:ing)?)"
    r"(?:\s+(?:is|of|at|about|around|roughly|maybe|like))*\s*$"
    r"|(?:预算|价格|价位)(?:是|在|为|大概|大约)?\s*$",
    re.I,
)
_AMOUNT_RE = re.compile(
    rf"(?:(?P<pre>{_CUR_PRE})\s*)?(?P<num>{_NUMBER}|{_WORDNUM}|{_CNNUM})"
    rf"(?:\s*(?P<mul>k(?![a-z])|千|万))?(?:\s*(?P<cur>{_CUR_POST}))?",
    re.I,
)
_HAS_NUMBER = re.compile(
    r"\d|[零一二两三四五六七八九十百千万]|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand)\b",
    re.I,
)
_MAX_PRE = re.compile(
    r"(?:\bunder|\bbelow|\bless\s+than|\bcheaper\s+than|\blower\s+than|\bno\s+more\s+than|\bnot\s+more\s+than|"
    r"\bnot\s+over|\bnot\s+above|\bnothing\s+(?:over|above|more\s+than)|\bat\s+most|\bup\s+to|\bmax(?:imum)?"
    r"(?:\s+of)?|\bwithin|\bfor\s+less\s+than|\bunder\s+the|\bspend(?:ing)?\s+(?:up\s+to|at\s+most|max)|"
    r"<=?|≤|不超过|不高于|不到|低于|少于|小于|最多|以内)\s*(?:of\s+|is\s+)?$",
    re.I,
)
_MIN_PRE = re.compile(
    r"(?:\bover|\babove|\bmore\s+than|\bat\s+least|\bgreater\s+than|\bhigher\s+than|\bpricier\s+than|"
    r"\bmore\s+expensive\s+than|\bstarting\s+(?:at|from)|\bfrom|\bminimum(?:\s+of)?|\bmin|\bupwards\s+of|"
    r"\bno\s+less\s+than|\bnot\s+less\s+than|>=?|≥|至少|不低于|高于|超过|大于|多于)\s*$",
    re.I,
)
_ABOUT_PRE = re.compile(
    r"(?:\baround|\babout|\bapproximately|\bapprox\.?|\broughly|~|≈|\bcirca|\bclose\s+to|\bnear|"
    r"\bin\s+the\s+region\s+of|大约|大概|差不多|约)\s*$",
    re.I,
)
_MAX_POST = re.compile(
    r"\s*(?:or\s+(?:less|under|below|cheaper)\b|and\s+(?:under|below|less)\b|max(?:imum)?\b|tops\b|at\s+most\b|"
    r"或以下|以内|以下|之内|封顶|内)",
    re.I,
)
_MIN_POST = re.compile(r"\s*(?:or\s+(?:more|above|over)\b|and\s+(?:up|above|over)\b|\+|或以上|以上|起)", re.I)
_ABOUT_POST = re.compile(r"\s*(?:-?ish(?![a-z])|or\s+so\b|左右|上下)", re.I)
_RANGE_SEP = re.compile(r"^\s*(?:-|–|—|~|to|and|&|until|till|到|至)\s*$", re.I)
_RANGE_PRE = re.compile(r"(?:\bbetween|\bfrom|\bin\s+the\s+range(?:\s+of)?)\s*$", re.I)
_RANGE_POST = re.compile(r"\s*之间")
_LOOKBEHIND = 40
_UNIT_AFTER = re.compile(
    r"\s*(?:stars?|ml|oz|fl\.?|g|gr|grams?|kg|lbs?|ounces?|liters?|litres?|%|percent|per\s*cent|minutes?|"
    r"mins?|hours?|hrs?|days?|weeks?|months?|years?|yrs?|y/?o|pack|pcs|pieces?|items?|products?|reviews?|"
    r"ratings?|spf|inch(?:es)?|cm|mm|x|shades?|colou?rs?|times|people|users|ones|of\s+them|"
    r"个|件|款|星|毫升|克|岁|天|年|分钟|小时|支|瓶|次)(?![a-z])",
    re.I,
)
_NONPRICE_BEFORE = re.compile(
    r"(?:#|\bspf|\brated|\brating|\bsize|\bpack\s+of|\btop|\bnumber|\bno\.|\bitem|\boption|\bpick|\bfirst|"
    r"\blast|\bstars?|\bproduct|第|前|后)\s*$",
    re.I,
)
_MONEY_WORDS = re.compile(
    r"\b(?:price|prices|priced|cost|costs|budget|spend|cheap|expensive|dollars?|bucks|euros?|money|afford)\b|"
    r"[$€£¥]|预算|价格|价位|元|块|钱|便宜|贵",
    re.I,
)

_CURRENCY = {
    "$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "buck": "USD", "bucks": "USD",
    "美元": "USD", "美金": "USD", "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "欧元": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "英镑": "GBP",
    "¥": "CNY", "rmb": "CNY", "cny": "CNY", "yuan": "CNY", "元": "CNY", "元钱": "CNY", "块": "CNY",
    "块钱": "CNY", "人民币": "CNY", "円": "JPY", "日元": "JPY", "yen": "JPY", "jpy": "JPY",
}  # fmt: skip
_CUR_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥"}

_WORD_VALUES = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "a": 1,
}  # fmt: skip
_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}

_LOWER = re.compile(
    r"\b(?:cheaper|cheap|less\s+expensive|lower[- ]priced|lower\s+price[sd]?|more\s+affordable|affordable|"
    r"inexpensive|budget[- ]friendly|low[- ]cost|not\s+(?:too|so)\s+(?:expensive|pricey)|too\s+(?:expensive|pricey|much)|"
    r"bargains?|cheapest)\b|更便宜(?:一)?点?|更便宜一些|便宜(?:一)?点|便宜些|便宜一些|便宜的|便宜|实惠|平价|性价比高|太贵",
    re.I,
)
_HIGHER = re.compile(
    r"\b(?:more\s+expensive|pricier|pricey|higher[- ]end|high[- ]end|premium|luxury|luxurious|fancier|"
    r"splurge|too\s+cheap|upscale)\b|贵一点|贵点|更贵|贵一些|贵些|高端|高档|奢侈|太便宜",
    re.I,
)
_ORD = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3, "fifth": 4,
    "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7, "ninth": 8, "9th": 8,
    "tenth": 9, "10th": 9,
}  # fmt: skip
_ORD_RE = "|".join(sorted(_ORD, key=len, reverse=True))
_COUNT = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
}
_ITEM_NOUN = r"(?:one|ones|item|items|product|products|option|options|pick|picks|choice|result|suggestion)"
_REF_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "first_n",
        re.compile(
            r"\b(?:the\s+)?(?:first|top)\s+(?P<n>two|three|four|five|[2-5])\b(?:\s+" + _ITEM_NOUN + r")?",
            re.I,
        ),
    ),
    (
        "last_n",
        re.compile(
            r"\b(?:the\s+)?last\s+(?P<n>two|three|four|five|[2-5])\b(?:\s+" + _ITEM_NOUN + r")?", re.I
        ),
    ),
    (
        "cheapest",
        re.compile(
            r"\b(?:the\s+)?cheapest\s+(?:one|of\s+(?:them|these|those))\b|最便宜的(?:那|这)?(?:个|款|件|一个|一款)",
            re.I,
        ),
    ),
    (
        "priciest",
        re.compile(
            r"\b(?:the\s+)?(?:most\s+expensive|priciest)\s+(?:one|of\s+(?:them|these|those))\b|最贵的(?:那|这)?(?:个|款|件|一个|一款)",
            re.I,
        ),
    ),
    (
        "last",
        re.compile(
            r"\b(?:the\s+)?(?:last|final)\s+"
            + _ITEM_NOUN
            + r"\b|\bthe\s+last\b(?!\s+(?:time|day|week|month|year))|最后(?:一)?(?:个|款|件)",
            re.I,
        ),
    ),
    ("index", re.compile(r"\b(?:the\s+)?(?P<o>" + _ORD_RE + r")\s+" + _ITEM_NOUN + r"\b", re.I)),
    (
        "index",
        re.compile(r"\bthe\s+(?P<o>" + _ORD_RE + r")\b(?!\s+(?:time|day|week|month|year|place))", re.I),
    ),
    (
        "index",
        re.compile(
            r"(?:#|\bnumber\s*|\bno\.\s*|\bitem\s*|\boption\s*|\bproduct\s*|\bpick\s*)(?P<d>\d{1,2})\b", re.I
        ),
    ),
    (
        "index",
        re.compile(
            r"第\s*(?P<z>[一二两三四五六七八九十]|\d{1,2})\s*(?:个|款|件|种|项|条|部|样)?(?!次|天|名)"
        ),
    ),
    ("first_n", re.compile(r"前\s*(?P<n>[两二三四五]|[2-5])\s*(?:个|款|件|种|样)")),
    ("last_n", re.compile(r"后\s*(?P<n>[两二三四五]|[2-5])\s*(?:个|款|件|种|样)")),
    (
        "all",
        re.compile(
            r"\b(?:all\s+of\s+(?:them|these|those)|all\s+(?:three|four|five)|each\s+of\s+them)\b|全部|都",
            re.I,
        ),
    ),
    (
        "index",
        re.compile(
            r"\b(?:and|or|vs\.?|versus|&)\s+(?:the\s+)?(?P<o>"
            + _ORD_RE
            + r")\b(?!\s+(?:time|day|week|month|year))",
            re.I,
        ),
    ),
    ("both", re.compile(r"\bboth(?:\s+of\s+(?:them|these|those))?\b|两个都|这两个|那两个|两款", re.I)),
    (
        "this",
        re.compile(
            r"\b(?:that|this|the)\s+(?:one|item|product|thing)\b|\bthat\s+(?:lipstick|polish|cream)\b|这个|那个|这款|那款|这件|那件|它",
            re.I,
        ),
    ),
]
_EXCLUDE_SHOWN = re.compile(
    r"\b(?:something|anything|some\s*thing)\s+(?:else|different)\b|\bother\s+(?:options|ones|choices|suggestions|"
    r"products|items|stuff)\b|\bdifferent\s+(?:ones|options|products|items|choices)\b|\bmore\s+(?:options|results|"
    r"suggestions|ideas|choices)\b|\bshow\s+(?:me\s+)?(?:some\s+)?more\b|\bnext\s+(?:page|ones|few|batch)\b|"
    r"\bnone\s+of\s+(?:these|those|them)\b|\bnew\s+(?:ones|options)\b|^\W*(?:some\s+|any\s+)?more(?:\s+please)?\W*$|"
    r"\b(?:don'?t|do\s+not)\s+like\s+(?:any\s+of\s+)?(?:these|those|them)\b|\bnot\s+(?:these|those)\b|"
    r"换一个|换一批|换个|换一些|换几个|还有别的|还有其他|还有其它|别的|其他的|其它的|不要这些|都不喜欢|再来几个|"
    r"更多|看看别的|下一页",
    re.I,
)
_SIMILAR = re.compile(
    r"\b(?:more|something|anything|others?|ones?|stuff)\s+(?:like|similar\s+to)\b|\bsimilar\s+(?:to|ones|items)\b|"
    r"类似|差不多的|相似|一样的",
    re.I,
)
_NEG_CUE = re.compile(
    r"\b(?:not|no|never|without|except(?:\s+for)?|excluding|exclude|besides|other\s+than|anything\s+but|"
    r"but\s+not|avoid(?:ing)?|hate|instead\s+of|rather\s+than|apart\s+from|aside\s+from|minus|skip|"
    r"(?:don'?t|do\s+not|doesn'?t|didn'?t|never)\s+(?:really\s+)?(?:want|like|need|show(?:\s+me)?|"
    r"care\s+for|love)|no\s+more|none\s+of|nothing\s+(?:made\s+)?(?:from|by)|anything\s+(?:other\s+than|except))\b|"
    r"不要|不想要|不想|除了|别|不喜欢|不用|排除|不含|不买|不考虑|讨厌|去掉|去除|非(?!常)",
    re.I,
)
_ONLY_CUE = re.compile(
    r"\b(?:only|just|exclusively|solely|nothing\s+but|stick\s+(?:to|with)|limit\s+(?:it\s+)?to|strictly)\b|"
    r"只要|只看|只想要|只想看|只买|仅限|仅|只",
    re.I,
)
_ADD_CUE = re.compile(
    r"^\W*(?:and|or|plus)\b|\b(?:also|too|as\s+well|in\s+addition|additionally)\b|也|还有|或者", re.I
)
_LIKE = re.compile(
    r"\b(?:i\s+(?:really\s+)?(?:like|love|adore)|(?:looks?|sounds?)\s+(?:good|great|nice|perfect)|"
    r"i'?ll\s+take|perfect|great|nice)\b|喜欢|不错|就要|挺好|好看",
    re.I,
)
_DISLIKE = re.compile(
    r"\b(?:(?:don'?t|do\s+not|doesn'?t)\s+(?:really\s+)?(?:like|love|want)|hate|not\s+(?:a\s+fan|for\s+me)|ugly|"
    r"not\s+(?:the|that|this))\b|不喜欢|不要|不想要|讨厌|难看|不好看",
    re.I,
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
_FILLER_WORDS = re.compile(
    r"\b(?:can|could|would|will|you|please|pls|plz|show|me|find|search|for|look(?:ing)?|i'?m|i\s+am|i'?d|"
    r"i|want|wanna|need|like|to|get|buy|some|any|a|an|the|something|anything|recommend|suggest|give|"
    r"what|about|how|is|are|there|do|does|have|has|got|of|with|my|in|on|and|or|but|also|too|one|ones|"
    r"hi|hello|hey|thanks|thank|ok|okay|well|so|maybe|perhaps|just|only|really|good|options?|products?|"
    r"items?|stuff|things?|that|this|these|those|it|them|let|see|else|instead|other|others|then|now|"
    r"sure|yes|no|not|again|let's|lets|be|should|which|from|by|compare|comparison|vs|versus|preferably|"
    r"ideally)\b"
    r"|我想要|我想买|我想|我要|想要|想买|给我|推荐|一些|一下|一个|一款|一点|比较|对比|有没有|帮我|请|看看|找|什么|吗|呢|吧|的|啊|呀|我|要|有|买",
    re.I,
)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _clean(text: str) -> tuple[str, list[Issue]]:
    issues: list[Issue] = []
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_PARSE_CHARS:
        text = text[:MAX_PARSE_CHARS]
        issues.append(
            Issue(
                "truncated",
                f"Your message is long; I only read its first {MAX_PARSE_CHARS} characters for filters.",
                f"消息太长,我只读取了前{MAX_PARSE_CHARS}个字符来理解筛选条件。",
                "info",
            )
        )
    with contextlib.suppress(ValueError, TypeError):
        text = unicodedata.normalize("NFKC", text)
    if len(text) > MAX_PARSE_CHARS * 2:
        text = text[: MAX_PARSE_CHARS * 2]
    chars = [" " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") else c for c in text]
    return "".join(chars), issues


def detect_language(text: str) -> tuple[Language, bool]:
    """("zh" when Han characters carry the message, else "en"; confident?)."""
    han = len(CJK_RE.findall(text))
    latin_letters = sum(1 for c in text if c.isascii() and c.isalpha())
    if han and han >= latin_letters / 2:
        return "zh", True
    words = re.findall(r"[A-Za-z]{2,}", text)
    return "en", len(words) >= 2 or (latin_letters >= 4 and not han)


def _to_number(raw: str, mul: str | None) -> float | None:
    raw = raw.strip().replace("−", "-")
    compact = raw.replace(" ", "")
    value: float | None
    if re.fullmatch(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", compact, re.I):
        try:
            value = float(compact.replace(",", ""))
        except (ValueError, OverflowError):
            return None
    elif re.fullmatch(_CNNUM, raw):
        value = _cn_number(raw)
    else:
        value = _word_number(raw.lower())
    if value is None:
        return None
    factor = {"k": 1000, "K": 1000, "千": 1000, "万": 10000}.get((mul or "").strip(), 1)
    try:
        return value * factor
    except OverflowError:
        return math.inf


def _word_number(raw: str) -> float | None:
    total = 0
    for w in re.split(r"[\s-]+", raw):
        if w not in _WORD_VALUES:
            return None
        v = _WORD_VALUES[w]
        if v in (100, 1000):
            total = max(total, 1) * v
        else:
            total += v
    return float(total) if total else None


def _cn_number(raw: str) -> float | None:
    total, section, digit = 0, 0, None
    for ch in raw:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch] if digit is None else digit * 10 + _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section, digit = 0, None
            else:
                section += (1 if digit is None else digit) * unit
                digit = None
        else:
            return None
    rest = digit or 0
    # "两百五" = 250: a trailing digit after a unit scales to the next lower unit.
    if digit is not None and raw[-1] in _CN_DIGITS and len(raw) >= 2 and raw[-2] in "百千":
        rest = digit * _CN_UNITS[raw[-2]] // 10
    value = total + section + rest
    return float(value) if value or raw in ("零",) else None


@dataclass
class _Amount:
    start: int
    end: int
    raw: str
    mul: str | None
    currency: str | None
    is_word: bool

    @classmethod
    def of(cls, m: re.Match[str]) -> _Amount:
        tok = m.group("pre") or m.group("cur")
        raw = m.group("num").strip()
        word = bool(re.fullmatch(_WORDNUM, raw, re.I) or re.fullmatch(_CNNUM, raw))
        return cls(m.start(), m.end(), raw, m.group("mul"), _CURRENCY.get((tok or "").strip().lower()), word)


_GLUED_SUFFIX = re.compile(r"[A-Za-z]+")


def _in_word(text: str, m: re.Match[str]) -> bool:
    """A number glued to Latin letters is part of a name ("350buy", "3M", "SPF30", "often"), not a price.

    "20ish" stays a price; a following unit ("50ml") is rejected later by ``_UNIT_AFTER`` anyway.
    """
    a, b = m.span()
    while a < b and text[a].isspace():  # the number pattern may start with a space
        a += 1
    if a > 0 and text[a - 1].isascii() and text[a - 1].isalpha():
        return True
    glued = _GLUED_SUFFIX.match(text, b)
    return glued is not None and glued.group().lower() != "ish"


def _overlaps(taken: bytearray, a: int, b: int) -> bool:
    return any(taken[a:b])


def _take(taken: bytearray, a: int, b: int) -> None:
    taken[a:b] = b"\x01" * (b - a)


def _fmt(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else f"{x:.3g}"


# ---------------------------------------------------------------------------------------------
# Extractors
# ---------------------------------------------------------------------------------------------
_RELEASED = r"(?:\b(?:released|came\s+out|made|filmed|published|from)\s+(?:in\s+)?)?"
_DECADE = re.compile(
    _RELEASED
    + r"\b(?:the\s+)?(?P<full>1[89]\d0|20[0-9]0)'?s\b|"
    + _RELEASED
    + r"(?:\bthe\s+'?(?P<short>\d0)'?s\b|(?<![\w$])'(?P<apos>\d0)s\b)|"
    r"(?P<zh>(?:1[89]|20)?\d0)\s*年代",
    re.I,
)
_RELEASE_YEAR = re.compile(
    r"\b(?:released|came\s+out|made|filmed|published)\s+(?:in\s+)?(?:the\s+year\s+)?"
    r"(?P<y>1[89]\d\d|20[0-4]\d)\b(?!\s*(?:[$€£¥]|dollars?|bucks|euros?|usd))|"
    r"(?P<zy>1[89]\d\d|20[0-4]\d)\s*年(?:上映|出品|发行|出版|的)",
    re.I,
)


def _extract_years(text: str, taken: bytearray) -> tuple[int, int] | None:
    """Release years: a decade ("the 1990s", "the '80s", "90年代") or a year ("released in 1995").

    Read for catalogs with a release year (films, books, music); the last mention wins.
    """
    found: tuple[int, int] | None = None
    for pat in (_DECADE, _RELEASE_YEAR):
        for m in pat.finditer(text):
            if _overlaps(taken, *m.span()):
                continue
            g = m.groupdict()
            if g.get("y") or g.get("zy"):
                y = int(g.get("y") or g["zy"])
                found = (y, y)
            else:
                raw = g.get("full") or g.get("short") or g.get("apos") or g.get("zh") or ""
                d = int(raw)
                if d < 100:  # "the 90s" -> 1990s, "the 00s"/"10s" -> 2000s/2010s
                    d += 2000 if d < 20 else 1900
                found = (d, d + 9)
            _take(taken, *m.span())
    return found


def _extract_prices(text: str, taken: bytearray) -> tuple[list[PriceSpec], list[Issue], bool]:
    """Find amounts once, then read the operator from the words right before and after each."""
    if not _HAS_NUMBER.search(text):
        return [], [], False
    amounts = [
        _Amount.of(m)
        for m in _AMOUNT_RE.finditer(text)
        if not _overlaps(taken, *m.span()) and not _in_word(text, m)
    ]
    specs: list[PriceSpec] = []
    issues: list[Issue] = []
    i = 0
    while i < len(amounts):
        a = amounts[i]
        b = amounts[i + 1] if i + 1 < len(amounts) else None
        before = text[max(0, a.start - _LOOKBEHIND) : a.start]
        ctx = _CTX_END.search(before)
        result: PriceSpec | Issue | None = None
        span = (a.start, a.end)
        if b is not None:
            gap = text[a.end : b.start]
            if b.raw.startswith(("-", "−")) and not gap.strip():  # "10-25": the dash is the separator
                gap, b = "-", replace(b, raw=b.raw.lstrip("-−").strip())
            if _RANGE_SEP.match(gap):
                pre = _RANGE_PRE.search(before)
                sep_zh = gap.strip() in ("到", "至")
                money = a.currency or b.currency or ctx
                if (
                    (pre and (gap.strip().lower() != "and" or "between" in pre.group().lower()))
                    or money
                    or sep_zh
                ):
                    start = pre.start() + max(0, a.start - _LOOKBEHIND) if pre else a.start
                    if ctx:
                        start = min(start, ctx.start() + max(0, a.start - _LOOKBEHIND))
                    post = _RANGE_POST.match(text, b.end)
                    span = (start, post.end() if post else b.end)
                    result = _price_spec("range", a, b, text, span, bool(ctx or pre or sep_zh))
                    if result is not None:
                        i += 1
        if result is None:
            op = None
            post_end = a.end
            for name, pat in (("around", _ABOUT_POST), ("max", _MAX_POST), ("min", _MIN_POST)):
                m = pat.match(text, a.end)
                if m:
                    op, post_end = name, m.end()
                    break
            pre_start = a.start
            if op is None or op != "around":
                for name, pat in (("max", _MAX_PRE), ("min", _MIN_PRE), ("around", _ABOUT_PRE)):
                    m = pat.search(before)
                    if m:
                        op, pre_start = name, m.start() + max(0, a.start - _LOOKBEHIND)
                        post_end = a.end if op != "max" or not _MAX_POST.match(text, a.end) else post_end
                        break
            if op is None and ctx:
                op = "max"
            if op is None and a.currency:
                op = "around"  # "a $20 lipstick"
            if ctx:
                pre_start = min(pre_start, ctx.start() + max(0, a.start - _LOOKBEHIND))
            if op is not None:
                span = (pre_start, post_end)
                result = _price_spec(op, a, None, text, span, bool(ctx))
        if result is not None:
            _take(taken, *span)
            (issues if isinstance(result, Issue) else specs).append(result)  # type: ignore[arg-type]
        i += 1
    # Digits left with money words around them: a price is there that the rules could not read.
    rest = "".join(" " if taken[k] else c for k, c in enumerate(text))
    unresolved = bool(re.search(r"\d", rest) and _MONEY_WORDS.search(rest))
    return specs, issues, unresolved


def _price_spec(
    op: str, a: _Amount, b: _Amount | None, text: str, span: tuple[int, int], has_ctx: bool
) -> PriceSpec | Issue | None:
    cur = a.currency or (b.currency if b else None)
    last = b or a
    after = text[last.end :]
    before = text[max(0, span[0] - _LOOKBEHIND) : span[0]]
    # Never a price: "4 stars", "SPF 30", "#3", "2 pack", "the first 2".
    if cur is None and (_UNIT_AFTER.match(after) or _NONPRICE_BEFORE.search(before)):
        return None
    if cur is None and not has_ctx and a.is_word and ((_to_number(a.raw, None) or 0) < 10 or op == "around"):
        return None  # "at least two" is a count; "under fifty" is a price
    lo = _to_number(a.raw, a.mul)
    hi = _to_number(b.raw, b.mul) if b else None
    if lo is None or (b is not None and hi is None):
        return None
    surface = text[span[0] : span[1]].strip()
    nums = [x for x in (lo, hi) if x is not None]
    if any(not math.isfinite(x) for x in nums) or any(x > MAX_SANE_PRICE for x in nums):
        return Issue(
            "price_not_finite",
            f"“{surface[:40]}” is not a price I can use. What is your budget?",
            f"“{surface[:40]}”不是一个有效的价格。您的预算是多少?",
        )
    if any(x < 0 for x in nums):
        return Issue(
            "price_negative",
            f"A price can't be negative (“{surface[:40]}”). What is your budget?",
            f"价格不能是负数(“{surface[:40]}”)。您的预算是多少?",
        )
    if op == "max" and lo == 0:
        return Issue(
            "price_zero",
            "Nothing costs less than 0. What is the most you'd like to spend?",
            "没有低于0的价格。您最多想花多少钱?",
        )
    if hi is not None:
        if lo > hi:
            lo, hi = hi, lo
        return PriceSpec(lo, hi, "range", cur, surface)
    if op == "max":
        return PriceSpec(None, lo, "max", cur, surface)
    if op == "min":
        return PriceSpec(lo, None, "min", cur, surface)
    if lo == 0:
        return Issue(
            "price_zero",
            "A price of 0 doesn't narrow anything down. What is your budget?",
            "价格为0无法筛选。您的预算是多少?",
        )
    return PriceSpec(
        round(lo * (1 - AROUND_BAND), 2), round(lo * (1 + AROUND_BAND), 2), "around", cur, surface
    )


def _combine_prices(specs: list[PriceSpec]) -> tuple[PriceSpec | None, list[Issue]]:
    if not specs:
        return None, []
    if len(specs) == 1:
        return specs[0], []
    lows = [s.low for s in specs if s.low is not None]
    highs = [s.high for s in specs if s.high is not None]
    lo = max(lows) if lows else None
    hi = min(highs) if highs else None
    cur = next((s.currency for s in specs if s.currency), None)
    surface = " / ".join(s.surface for s in specs)
    issues = []
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
        issues.append(
            Issue(
                "price_conflict",
                f"Your price limits contradict each other ({surface}); I used {_fmt(lo)} to {_fmt(hi)}.",
                f"您给的价格条件互相矛盾({surface}),我按{_fmt(lo)}到{_fmt(hi)}处理。",
                "info",
            )
        )
    op: Literal["max", "min", "range"] = (
        "range" if lo is not None and hi is not None else "max" if hi is not None else "min"
    )
    return PriceSpec(lo, hi, op, cur, surface), issues


def _ref_from_match(kind: str, m: re.Match[str]) -> Reference | None:
    d = m.groupdict()
    surface = m.group().strip()
    if kind == "index":
        if d.get("o"):
            return Reference("index", (_ORD[d["o"].lower()],), surface=surface)
        if d.get("d"):
            k = int(d["d"])
            return Reference("index", (k - 1,), surface=surface) if k >= 1 else None
        z = d.get("z")
        k = int(z) if z and z.isdigit() else int(_cn_number(z) or 0) if z else 0
        return Reference("index", (k - 1,), surface=surface) if k >= 1 else None
    if kind in ("first_n", "last_n"):
        n = _COUNT.get(d["n"].lower(), 0)
        if kind == "first_n":
            return Reference("index", tuple(range(n)), n, surface)
        return Reference("last_n", (), n, surface)
    if kind == "last":
        return Reference("last_n", (), 1, surface)
    if kind == "both":
        return Reference("index", (0, 1), 2, surface)
    return Reference(kind, (), 0, surface)  # type: ignore[arg-type]


def _extract_references(text: str, taken: bytearray) -> list[Reference]:
    refs: list[tuple[int, Reference]] = []
    for kind, pat in _REF_PATTERNS:
        for m in pat.finditer(text):
            a, b = m.span()
            if _overlaps(taken, a, b):
                continue
            if kind == "all" and m.group() == "都" and not re.search(r"都(?:不|要|喜欢|比较|看)", text):
                continue
            ref = _ref_from_match(kind, m)
            if ref is None:
                continue
            _take(taken, a, b)
            refs.append((a, ref))
    refs.sort(key=lambda t: t[0])
    out = [r for _, r in refs]
    # "the first and the third" -> one reference to positions (0, 2).
    idx = [r for r in out if r.kind == "index"]
    if len(idx) > 1:
        positions = tuple(dict.fromkeys(p for r in idx for p in r.positions))
        merged = Reference("index", positions, len(positions), " + ".join(r.surface for r in idx))
        out = [merged] + [r for r in out if r.kind != "index"]
    return out


def _scan_cues(pattern: re.Pattern[str], text: str, taken: bytearray) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text) if not _overlaps(taken, *m.span())]


def _assign_polarity(
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


def _build_query(text: str, taken: bytearray) -> str:
    rest = "".join(" " if taken[i] else c for i, c in enumerate(text))
    rest = _FILLER_WORDS.sub(" ", rest)
    rest = re.sub(r"[^\w\s'&-]+", " ", rest)
    rest = re.sub(r"(?<!\w)['&-]+|['&-]+(?!\w)", " ", rest)
    return " ".join(rest.split())[:300]


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def parse(
    utterance: str,
    vocab: CatalogVocabulary,
    currency: str | None = "USD",
    *,
    llm: LLMFallback | None = None,
) -> ParsedUtterance:
    """Parse one utterance. Never raises on any text; ``currency`` is the catalog's (ISO code).

    ``llm`` (optional) is called only when the rules flag something unresolved, as
    ``llm(prompt, ConstraintUpdate.model_json_schema())``; it returns a dict or a JSON string.
    """
    try:
        parsed = _parse_rules(utterance, vocab, currency)
    except Exception as exc:  # the contract is "never raises": degrade to a plain query
        text = utterance if isinstance(utterance, str) else ""
        return ParsedUtterance(
            text=text[:MAX_PARSE_CHARS],
            query=" ".join(text[:300].split()),
            issues=(
                Issue("parse_error", f"Internal parser error: {type(exc).__name__}", "内部解析错误", "info"),
            ),
            unresolved=("parse_error",),
        )
    if llm is not None and parsed.needs_llm:
        parsed = _llm_fallback(parsed, vocab, currency, llm)
    return parsed


def _parse_rules(utterance: str, vocab: CatalogVocabulary, currency: str | None) -> ParsedUtterance:
    text, issues = _clean(utterance)
    language, confident = detect_language(text)
    taken = bytearray(len(text))
    unresolved: list[str] = []

    # 1. References first ("the first two" must not become a price), then prices.
    refs = _extract_references(text, taken)
    years = _extract_years(text, taken)  # before prices: "released in 1995" is no price
    specs, price_issues, price_unresolved = _extract_prices(text, taken)
    issues.extend(price_issues)
    if price_unresolved and not specs:
        unresolved.append("price")
    price, combine_issues = _combine_prices(specs)
    issues.extend(combine_issues)

    # 2. Control phrases.
    similar = False
    for a, b in _scan_cues(_SIMILAR, text, taken):
        similar = True
        _take(taken, a, b)
    exclude_shown = similar
    for a, b in _scan_cues(_EXCLUDE_SHOWN, text, taken):
        exclude_shown = True
        _take(taken, a, b)
    relative: Literal["lower", "higher"] | None = None
    for pat, direction in ((_LOWER, "lower"), (_HIGHER, "higher")):
        for a, b in _scan_cues(pat, text, taken):
            relative = relative or direction  # type: ignore[assignment]
            _take(taken, a, b)
    if price is not None and relative is not None and price.high is not None and relative == "lower":
        relative = None  # "cheap, under $20": the explicit bound says it all

    # 3. Brand and category mentions, and the cues that govern them.
    masked = "".join(" " if taken[i] else c for i, c in enumerate(text))
    mentions = _exact_category_names(vocab, masked, vocab.find_mentions(masked))
    neg_cues = _scan_cues(_NEG_CUE, masked, taken)
    only_cues = _scan_cues(_ONLY_CUE, masked, taken)
    negated, onlyed, used = _assign_polarity(masked, mentions, neg_cues, only_cues)
    for a, b in neg_cues + only_cues:
        if a in used:
            _take(taken, a, b)

    brands_in: list[str] = []
    brands_out: list[str] = []
    cats_in: list[CategoryMatch] = []
    cats_out: list[tuple[str, ...]] = []
    weak: list[CategoryMatch] = []
    ambiguities: list[Ambiguous] = []
    for m, neg in zip(mentions, negated, strict=True):
        if isinstance(m.match, Ambiguous):
            ambiguities.append(m.match)
        r = m.resolved
        if neg:
            _take(taken, m.start, m.end)
        if isinstance(r, BrandMatch):
            (brands_out if neg else brands_in).extend(r.spellings)
        elif neg:
            if not r.weak:
                cats_out.extend(r.paths)
        elif r.weak:
            weak.append(r)
        else:
            cats_in.append(r)
    categories_in = _refine_categories(cats_in, weak)
    weak_paths = drop_descendants(p for w in weak for p in w.paths) if not categories_in else ()

    # 4. Feedback on referenced items ("I like the first one", "not the second one").
    feedback: Literal["like", "dislike"] | None = None
    if refs:
        if _DISLIKE.search(text) or neg_cues:
            feedback = "dislike"
        elif _LIKE.search(text):
            feedback = "like"

    # 5. Currency sanity.
    cur_seen = price.currency if price else None
    if price is not None and not vocab.has_prices:
        issues.append(
            Issue(
                "no_prices",
                "This catalog has no prices, so I can't filter by price.",
                "这个商品目录没有价格信息,无法按价格筛选。",
                "info",
            )
        )
        price = None
    elif price is not None and cur_seen and currency and cur_seen != currency.upper():
        sym = _CUR_SYMBOL.get(currency.upper(), currency.upper() + " ")
        num = _fmt(price.high if price.high is not None else price.low or 0)
        issues.append(
            Issue(
                "currency_mismatch",
                f"Prices in this catalog are in {currency.upper()}; I read {num} as {sym}{num} "
                f"without converting from {cur_seen}.",
                f"本目录价格以{currency.upper()}计;我把{num}直接当作{sym}{num},没有从{cur_seen}换算。",
                "info",
            )
        )
    if relative is not None and not vocab.has_prices:
        relative = None

    # 6. Things the rules saw but could not place.
    if (
        neg_cues
        and not any(negated)
        and not refs
        and re.search(
            r"\b(?:not|no|without|except|excluding|besides|other\s+than|anything\s+but)\s+[A-Z][\w'&.-]+",
            masked,
        )
    ):
        unresolved.append("negation_target")
    other = sum(1 for c in text if c.isalpha() and ord(c) > 0x24F and not CJK_RE.match(c))
    if other >= 3 and other > sum(1 for c in text if c.isascii() and c.isalpha()):
        unresolved.append("language")  # e.g. Cyrillic or Arabic: the rules only read EN and ZH

    additive = bool(_ADD_CUE.search(masked)) and not any(onlyed)
    return ParsedUtterance(
        text=text,
        language=language,
        language_confident=confident,
        price=price,
        relative_price=relative,
        currency=cur_seen,
        brands_in=tuple(dict.fromkeys(b for b in brands_in if b not in brands_out)),
        brands_out=tuple(dict.fromkeys(brands_out)),
        categories_in=categories_in,
        categories_out=drop_descendants(cats_out),
        weak_categories=weak_paths,
        only=any(onlyed),
        additive=additive,
        exclude_shown=exclude_shown,
        similar=similar,
        references=tuple(refs),
        feedback=feedback,
        query=_build_query(text, taken),
        years=years,
        ambiguities=tuple(ambiguities),
        issues=tuple(issues),
        unresolved=tuple(unresolved),
        mentions=tuple(mentions),
    )


@dataclass(frozen=True)
class _Tree:
    """Per-vocabulary lookups for exact category names (built once per vocabulary)."""

    by_key: dict[str, tuple[tuple[str, ...], ...]]  # stemmed name / "parent name" -> paths
    leaves: frozenset[tuple[str, ...]]
    listed: tuple[tuple[re.Pattern[str], str, tuple[tuple[str, ...], ...]], ...]  # names with "," or "/"


_TREES: dict[int, tuple[CatalogVocabulary, _Tree]] = {}


def _name_key(text: str) -> str:
    return stem_phrase(normalize(text))


def _tree(vocab: CatalogVocabulary) -> _Tree:
    hit = _TREES.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    paths = {p for ps in vocab.nodes.values() for p in ps}
    by_key: dict[str, list[tuple[str, ...]]] = {}
    for p in paths:
        by_key.setdefault(_name_key(p[-1]), []).append(p)
        if len(p) >= 2:
            by_key.setdefault(_name_key(f"{p[-2]} {p[-1]}"), []).append(p)
    parents = {p[:-1] for p in paths}
    listed = tuple(
        (re.compile(r"(?<!\w)" + re.escape(name).replace(r"\&", r"(?:&|and)") + r"(?!\w)", re.I), name, ps)
        for name, ps in vocab.nodes.items()
        if re.search(r"[,/]", name)
    )
    tree = _Tree({k: tuple(sorted(v)) for k, v in by_key.items()}, frozenset(paths - parents), listed)
    if len(_TREES) > 16:
        _TREES.clear()
    _TREES[id(vocab)] = (vocab, tree)
    return tree


def _exact_category_names(vocab: CatalogVocabulary, text: str, mentions: list[Mention]) -> list[Mention]:
    """Read a category name typed in full as exactly that node.

    * A node name with a list separator ("Creams, Gels & Lotions") typed verbatim is one
      mention (the vocabulary splits mentions at commas).
    * A phrase equal to a node's full name, or its parent's name + its name, keeps only the
      nodes so named when it would otherwise also take nodes matched by one part of a longer
      name: their ancestors ("wigs" is the node Wigs, not "Hair Extensions & Wigs") always,
      other nodes when the phrase has several words ("hair care shampoos" is not "Shampoo &
      Conditioner Sets"); a one-word phrase keeps its wider reading ("moisturizer").
    * A generic word alone ("washes", "fluids") still refines a stronger mention, but when the
      utterance has no strong category and the word is the full name of leaf nodes only (a
      product type, unlike "face" or "body"), it names those nodes.
    """
    tree = _tree(vocab)
    out: list[Mention] = []
    taken: list[tuple[int, int]] = []
    for pat, name, paths in tree.listed:
        for m in pat.finditer(text):
            taken.append(m.span())
            out.append(Mention(m.start(), m.end(), CategoryMatch(name, paths, m.group(), "exact", 100.0)))
    for m in mentions:
        if any(a < m.end and m.start < b for a, b in taken):
            continue
        r = m.resolved
        if isinstance(r, CategoryMatch):
            surface = text[m.start : m.end].strip(" .")
            exact = tree.by_key.get(_name_key(surface), ())
            if exact:
                others = [p for p in r.paths if p not in exact]
                below = [e for e in exact if any(e[: len(p)] == p for p in r.paths)]
                several_words = len(normalize(surface).split()) > 1
                if r.weak:
                    if exact and all(e in tree.leaves for e in exact):
                        m = Mention(m.start, m.end, replace(r, paths=exact, weak=True))
                elif below and (several_words or all(any(e[: len(o)] == o for e in below) for o in others)):
                    m = Mention(m.start, m.end, replace(r, paths=tuple(below)))
        out.append(m)
    if not any(isinstance(m.resolved, CategoryMatch) and not m.resolved.weak for m in out):
        out = [
            Mention(m.start, m.end, replace(m.resolved, weak=False))
            if isinstance(m.resolved, CategoryMatch)
            and m.resolved.weak
            and tree.by_key.get(_name_key(text[m.start : m.end].strip(" ."))) == m.resolved.paths
            and all(p in tree.leaves for p in m.resolved.paths)
            else m
            for m in out
        ]
    return sorted(out, key=lambda m: m.start)


def _refine_categories(strong: list[CategoryMatch], weak: list[CategoryMatch]) -> tuple[tuple[str, ...], ...]:
    """Combine mentions: a path under another mention's path refines it ("face" + "moisturizer")."""
    if not strong:
        return ()
    groups = [m.paths for m in strong] + [m.paths for m in weak]
    result: list[tuple[str, ...]] = list(groups[0])
    for paths in groups[1:]:
        deeper = [p for p in paths if any(p[: len(q)] == q for q in result)]
        shallower = [q for q in result if any(q[: len(p)] == p for p in paths)]
        if deeper:
            result = deeper
        elif shallower:
            result = shallower
        elif paths in [m.paths for m in strong]:
            result = result + list(paths)  # "lipstick and nail polish": any-of
    return drop_descendants(result)


# ---------------------------------------------------------------------------------------------
# LLM fallback
# ---------------------------------------------------------------------------------------------
class ConstraintUpdate(BaseModel):
    """What an LLM may return for an utterance the rules could not fully read (JSON schema)."""

    model_config = ConfigDict(extra="ignore")

    price_min: float | None = Field(None, ge=0, description="lowest acceptable price, catalog currency")
    price_max: float | None = Field(None, ge=0, description="highest acceptable price, catalog currency")
    currency: str | None = Field(None, description="ISO code of the currency the shopper used, if any")
    relative_price: Literal["lower", "higher"] | None = Field(
        None, description="cheaper / pricier than shown"
    )
    brands_include: list[str] = Field(default_factory=list, description="brands the shopper wants")
    brands_exclude: list[str] = Field(default_factory=list, description="brands the shopper rejects")
    categories_include: list[str] = Field(default_factory=list, description="product types wanted")
    categories_exclude: list[str] = Field(default_factory=list, description="product types rejected")
    exclude_shown: bool = Field(False, description="shopper wants different items than those shown")
    references: list[int] = Field(
        default_factory=list, description="1-based positions in the last shown list"
    )
    query: str = Field("", max_length=300, description="remaining free-text need, for search")


def _coerce_update(raw: Any) -> ConstraintUpdate | None:
    """Validate LLM output; repair by extracting the JSON object and dropping invalid fields."""
    if isinstance(raw, ConstraintUpdate):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, (str, bytes)):
        s = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        start, end = s.find("{"), s.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            raw = json.loads(s[start : end + 1])
        except (ValueError, RecursionError):
            return None
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    for _ in range(len(ConstraintUpdate.model_fields) + 1):
        try:
            return ConstraintUpdate.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
            if not bad or not bad & set(data):
                return None
            for k in bad:
                data.pop(k, None)
    return None


def _llm_prompt(parsed: ParsedUtterance, currency: str | None) -> str:
    return (
        "Extract shopping constraints from the shopper's message as JSON matching the schema. "
        "Use only what the message states; leave other fields empty. "
        f"Catalog prices are in {currency or 'an unknown currency'}; copy numbers as stated, do not convert.\n"
        f"Message: {parsed.text[:1000]}"
    )


def _llm_fallback(
    parsed: ParsedUtterance, vocab: CatalogVocabulary, currency: str | None, llm: LLMFallback
) -> ParsedUtterance:
    issues = list(parsed.issues)
    try:
        raw = llm(_llm_prompt(parsed, currency), ConstraintUpdate.model_json_schema())
    except Exception as exc:
        issues.append(
            Issue("llm_failed", f"LLM fallback failed: {type(exc).__name__}", "LLM解析失败", "info")
        )
        return replace(parsed, issues=tuple(issues))
    upd = _coerce_update(raw)
    if upd is None:
        issues.append(
            Issue(
                "llm_discarded",
                "LLM fallback output was invalid and was discarded.",
                "LLM输出无效,已丢弃",
                "info",
            )
        )
        return replace(parsed, issues=tuple(issues))
    changes: dict[str, Any] = {}
    # Rules win; the LLM only fills what the rules left empty, through the same validation.
    if parsed.price is None and (upd.price_min is not None or upd.price_max is not None):
        lo, hi = upd.price_min, upd.price_max
        if all(x is None or (math.isfinite(x) and x <= MAX_SANE_PRICE) for x in (lo, hi)) and hi != 0:
            if lo is not None and hi is not None and lo > hi:
                lo, hi = hi, lo
            op: Literal["max", "min", "range"] = (
                "range" if lo is not None and hi is not None else "max" if hi is not None else "min"
            )
            cur = (upd.currency or "").upper() or None
            changes["price"] = PriceSpec(lo, hi, op, cur if cur in _CUR_SYMBOL else None, "llm")
            changes["currency"] = changes["price"].currency
    if parsed.relative_price is None and upd.relative_price:
        changes["relative_price"] = upd.relative_price
    dropped: list[str] = []

    def brands(names: list[str]) -> list[str]:
        out: list[str] = []
        for n in names[:10]:
            m = vocab.match_brand(n) if isinstance(n, str) else None
            if m is None:
                dropped.append(str(n))
                continue
            out.extend((m.union() if isinstance(m, Ambiguous) else m).spellings)  # type: ignore[union-attr]
        return out

    def cats(names: list[str]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for n in names[:10]:
            m = vocab.match_category(n) if isinstance(n, str) else None
            if m is None:
                dropped.append(str(n))
                continue
            out.extend((m.union() if isinstance(m, Ambiguous) else m).paths)  # type: ignore[union-attr]
        return out

    if not parsed.brands_in and upd.brands_include:
        changes["brands_in"] = tuple(dict.fromkeys(brands(upd.brands_include)))
    if not parsed.brands_out and upd.brands_exclude:
        changes["brands_out"] = tuple(dict.fromkeys(brands(upd.brands_exclude)))
    if not parsed.categories_in and upd.categories_include:
        changes["categories_in"] = drop_descendants(cats(upd.categories_include))
    if not parsed.categories_out and upd.categories_exclude:
        changes["categories_out"] = drop_descendants(cats(upd.categories_exclude))
    if upd.exclude_shown and not parsed.exclude_shown:
        changes["exclude_shown"] = True
    if not parsed.references and upd.references:
        pos = tuple(dict.fromkeys(p - 1 for p in upd.references[:10] if isinstance(p, int) and 1 <= p <= 100))
        if pos:
            changes["references"] = (Reference("index", pos, len(pos), "llm"),)
    if dropped:
        issues.append(
            Issue(
                "llm_unknown_names",
                f"Ignored names not in this catalog: {', '.join(dropped[:5])}",
                f"已忽略目录中没有的名称:{'、'.join(dropped[:5])}",
                "info",
            )
        )
    return replace(parsed, **changes, issues=tuple(issues), unresolved=(), source="rules+llm")

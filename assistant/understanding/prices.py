"""The price grammar: bounds ("under $20", "50元以内"), ranges, "about" bands, relative price
("cheaper") and the catalog-currency check. See ``assistant.understanding.parser`` for the grammar.

Currency words and symbols are data (``data/currencies.yaml``, each naming an ISO code of
``retrieval.text.CURRENCY_SYMBOLS``, the one currency table); a price keeps its number as stated
and its currency is recorded, never converted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

from assistant.understanding import lexicon
from assistant.understanding.numbers import CNNUM, NUMBER, WORDNUM, fmt, to_number
from assistant.understanding.spans import overlaps, scan_cues, take
from assistant.understanding.utterance import AROUND_BAND, MAX_SANE_PRICE, Issue, PriceSpec
from retrieval.filters import PricePreference
from retrieval.text import format_money

__all__ = [
    "check_currency",
    "combine_prices",
    "currency_codes",
    "extract_prices",
    "relative_price",
]


def currency_codes() -> Mapping[str, str]:
    """Currency word or symbol ("$", "bucks", "元") -> ISO code."""
    return lexicon.strings("currencies", "codes")


# Budget words: "budget 30" reads as a ceiling unless a suffix ("左右", "or so") says otherwise.
_CTX_END = re.compile(
    r"(?:(?:my|the|a|our)\s+)?(?:budget|price\s+range|price\s+point|price|spend(?:ing)?)"
    r"(?:\s+(?:is|of|at|about|around|roughly|maybe|like))*\s*$"
    r"|(?:预算|价格|价位)(?:是|在|为|大概|大约)?\s*$",
    re.I,
)


def _alternatives(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first; a Latin word must not run on ("bucks", not "b")."""
    ordered = sorted(words, key=len, reverse=True)
    return (
        "(?:"
        + "|".join(re.escape(w) + ("(?![a-z])" if w.isascii() and w.isalpha() else "") for w in ordered)
        + ")"
    )


@cache
def _amount_re() -> re.Pattern[str]:
    """An amount with its currency: any currency word may follow the number, the ``prefix`` ones
    ("$", "usd") may also come before it."""
    pre = _alternatives(lexicon.word_sequence("currencies", "prefix"))
    post = _alternatives(currency_codes())
    return re.compile(
        rf"(?:(?P<pre>{pre})\s*)?(?P<num>{NUMBER}|{WORDNUM}|{CNNUM})"
        rf"(?:\s*(?P<mul>k(?![a-z])|千|万))?(?:\s*(?P<cur>{post}))?",
        re.I,
    )


_HAS_NUMBER = re.compile(
    r"\d|[零一二两三四五六七八九十百千万]|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand)\b",
    re.I,
)
# "under about $15", "no more than roughly 20": the hedge softens the number, the bound keeps its side.
_HEDGE = r"(?:(?:about|around|roughly|approximately|approx\.?|maybe|say|like|大约|大概|差不多|约)\s*)?"
_MAX_PRE = re.compile(
    # "not under $20" / "no less than 15" are floors (_MIN_PRE)
    r"(?:(?<!not )(?<!no )\bunder|(?<!not )(?<!no )\bbelow|(?<!not )(?<!no )\bless\s+than|"
    r"\bcheaper\s+than|\blower\s+than|\bno\s+more\s+than|\bnot\s+more\s+than|"
    r"\bnot\s+over|\bnot\s+above|\bnothing\s+(?:over|above|more\s+than)|\bat\s+most|\bup\s+to|\bmax(?:imum)?"
    r"(?:\s+of)?|\bwithin|\bfor\s+less\s+than|\bunder\s+the|\bspend(?:ing)?\s+(?:up\s+to|at\s+most|max)|"
    # "I'd rather not spend more than 20", "don't want to pay over $30", "不想花超过200": a negated
    # floor word is a ceiling, whatever verb sits between.
    r"(?:\bnot|n['’]t|\bnever)\s+(?:[a-z'’]+\s+){0,3}?(?:more\s+than|over|above|upwards\s+of)|"
    r"(?:不(?:想|要|愿意?|能|会)?|别|勿|千万别)(?:花|付|出)?(?:超过|高于|多于)|"
    r"<=?|≤|不超过|不高于|不到|低于|少于|小于|最多|以内)\s*(?:of\s+|is\s+)?" + _HEDGE + "$",
    re.I,
)
_MIN_PRE = re.compile(
    r"(?:\bover|\babove|\bmore\s+than|\bat\s+least|\bgreater\s+than|\bhigher\s+than|\bpricier\s+than|"
    r"\bmore\s+expensive\s+than|\bstarting\s+(?:at|from)|\bfrom|\bminimum(?:\s+of)?|\bmin|\bupwards\s+of|"
    r"\bno\s+less\s+than|\bnot\s+less\s+than|>=?|≥|至少|不低于|高于|超过|大于|多于)\s*" + _HEDGE + "$",
    re.I,
)
_ABOUT_PRE = re.compile(
    r"(?:\baround|\babout|\bapproximately|\bapprox\.?|\broughly|~|≈|\bcirca|\bclose\s+to|\bnear|"
    r"\bin\s+the\s+region\s+of|大约|大概|差不多|约)\s*$",
    re.I,
)
_BUDGET_PRE = re.compile(r"(?:\bbudget|\bspend|预算)[^.!?。！？;；]{0,25}$", re.I)
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
    r"\blast|\bstars?|\bproduct|第|前|后)\s*$"
    # an age: "someone over 50", "for my mom who is over 60", "women over 40"
    r"|\b(?:someone|somebody|anyone|people|persons?|wom[ae]n|m[ae]n|guys?|lady|ladies|moms?|mums?|mothers?|"
    r"dads?|fathers?|grand(?:ma|pa|mother|father)s?|kids?|children|teens?|adults?|seniors?|folks|"
    r"(?:s?he|i)(?:'s|\s+is|'m|\s+am))(?:\s+(?:who(?:'s|\s+is|\s+are)|aged))?\s*$",
    re.I,
)
_MONEY_WORDS = re.compile(
    r"\b(?:price|prices|priced|cost|costs|budget|spend|cheap|expensive|dollars?|bucks|euros?|money|afford)\b|"
    r"[$€£¥]|预算|价格|价位|元|块|钱|便宜|贵",
    re.I,
)


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
        word = bool(re.fullmatch(WORDNUM, raw, re.I) or re.fullmatch(CNNUM, raw))
        return cls(
            m.start(), m.end(), raw, m.group("mul"), currency_codes().get((tok or "").strip().lower()), word
        )


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


def extract_prices(text: str, taken: bytearray) -> tuple[list[PriceSpec], list[Issue], bool]:
    """Find amounts once, then read the operator from the words right before and after each."""
    if not _HAS_NUMBER.search(text):
        return [], [], False
    amounts = [
        _Amount.of(m)
        for m in _amount_re().finditer(text)
        if not overlaps(taken, *m.span()) and not _in_word(text, m)
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
                    if m and name == "around" and op is not None:
                        break  # "大概15美元以内": the bound after the number keeps its side
                    if m and name == "around" and _BUDGET_PRE.search(before):
                        name = "max"  # "my budget is about $15", "预算大约15美元": a budget is a ceiling
                    if m:
                        op, pre_start = name, m.start() + max(0, a.start - _LOOKBEHIND)
                        post_end = a.end if op != "max" or not _MAX_POST.match(text, a.end) else post_end
                        break
            if op is None and ctx:
                op = "max"
            if op is None and a.currency:
                # "a $20 lipstick": the shopper names what they will pay; a band around it is
                # read only when they say about/around.
                op = "max"
            if ctx:
                pre_start = min(pre_start, ctx.start() + max(0, a.start - _LOOKBEHIND))
            if op is not None:
                span = (pre_start, post_end)
                result = _price_spec(op, a, None, text, span, bool(ctx))
        if result is not None:
            take(taken, *span)
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
    if cur is None and not has_ctx and a.is_word and ((to_number(a.raw, None) or 0) < 10 or op == "around"):
        return None  # "at least two" is a count; "under fifty" is a price
    lo = to_number(a.raw, a.mul)
    hi = to_number(b.raw, b.mul) if b else None
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


def combine_prices(specs: list[PriceSpec]) -> tuple[PriceSpec | None, list[Issue]]:
    """Several bounds make one ("over 10 but under 30"); contradictory ones are swapped and noted."""
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
                f"Your price limits contradict each other ({surface}); I used {fmt(lo)} to {fmt(hi)}.",
                f"您给的价格条件互相矛盾({surface}),我按{fmt(lo)}到{fmt(hi)}处理。",
                "info",
            )
        )
    op: Literal["max", "min", "range"] = (
        "range" if lo is not None and hi is not None else "max" if hi is not None else "min"
    )
    return PriceSpec(lo, hi, op, cur, surface), issues


def relative_price(
    text: str, taken: bytearray, price: PriceSpec | None
) -> tuple[Literal["lower", "higher"] | None, PricePreference | None]:
    """(relative, preference): "cheaper" / "more premium" than the page shown (resolved later against
    its prices), and a standing wish ("nothing too expensive", "something premium") that only
    ranking weighs."""
    found: list[tuple[int, int, str]] = []
    for key in (
        "lower_price",
        "higher_price",
        "low_price_preference",
        "mid_price_preference",
        "high_price_preference",
    ):
        found += [(a, b, key) for a, b in scan_cues(lexicon.cue("parser_cues", key), text, taken)]
    # The longest cue wins where cues overlap: "too cheap" asks for pricier items although "cheap"
    # alone wishes for low prices, and "not too pricey" for low ones although "pricey" is high.
    said: dict[str, bool] = {}
    for a, b, key in sorted(found, key=lambda f: (f[0] - f[1], f[0])):
        if not overlaps(taken, a, b):
            said.setdefault(key, True)
            take(taken, a, b)
    relative: Literal["lower", "higher"] | None = (
        "lower" if "lower_price" in said else "higher" if "higher_price" in said else None
    )
    wishes = [w for w in ("low", "mid", "high") if f"{w}_price_preference" in said]
    preference: PricePreference | None = wishes[0] if wishes else None  # type: ignore[assignment]
    if price is not None and relative == "lower" and price.high is not None:
        relative = None  # "cheaper, under $20": the explicit bound says it all
    return relative, preference


def check_currency(
    price: PriceSpec | None, currency: str | None, has_prices: bool
) -> tuple[PriceSpec | None, list[Issue]]:
    """Drop a price the catalog cannot filter on; note a currency other than the catalog's."""
    cur_seen = price.currency if price else None
    if price is not None and not has_prices:
        issue = Issue(
            "no_prices",
            "This catalog has no prices, so I can't filter by price.",
            "这个商品目录没有价格信息,无法按价格筛选。",
            "info",
        )
        return None, [issue]
    if price is not None and cur_seen and currency and cur_seen != currency.upper():
        value = price.high if price.high is not None else price.low or 0
        num, money = fmt(value), format_money(value, currency, trim_cents=True)
        issue = Issue(
            "currency_mismatch",
            f"Prices in this catalog are in {currency.upper()}; I read {num} as {money} "
            f"without converting from {cur_seen}.",
            f"本目录价格以{currency.upper()}计;我把{num}直接当作{money},没有从{cur_seen}换算。",
            "info",
        )
        return price, [issue]
    return price, []

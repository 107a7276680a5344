"""Phrasing templates of the understanding task (``finetune generate --task understand``), EN + ZH.

Every template and every sub-phrase (price, reference, soft wish) has a stable id; the split
puts each id in exactly one of train/dev/test, so held-out phrasings are never trained on.

Main template slots: ``{cat}`` / ``{cat_out}`` a product type wanted / rejected, ``{brand}`` /
``{brand_out}``, ``{price}`` a price phrase, ``{soft}`` a soft wish, ``{ref}`` a reference to the
last shown list. ``flags`` are labels the wording itself carries (relative price, "show me
something else"). Labels are exact by construction: the generator fills the slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "NUMBER_WORDS_EN",
    "NUMBER_WORDS_ZH",
    "PRICE_PATTERNS",
    "REF_PATTERNS",
    "SOFT_WISHES",
    "TEMPLATES",
    "PricePattern",
    "RefPattern",
    "SoftWish",
    "Template",
]


@dataclass(frozen=True)
class Template:
    id: str
    lang: Literal["en", "zh"]
    kind: str
    text: str
    flags: dict[str, Any] = field(default_factory=dict)


def _t(id_: str, kind: str, text: str, **flags: Any) -> Template:
    return Template(id_, "zh" if id_.startswith("zh") else "en", kind, text, flags)


LOWER = {"relative_price": "lower"}
HIGHER = {"relative_price": "higher"}
OTHER = {"exclude_shown": True}

TEMPLATES: tuple[Template, ...] = (
    # --- requests -------------------------------------------------------------------------------
    _t("en-req-1", "request", "I want {cat}"),
    _t("en-req-2", "request", "show me some {cat}"),
    _t("en-req-3", "request", "looking for {cat}"),
    _t("en-req-4", "request", "do you have any {cat}?"),
    _t("en-req-5", "request", "I need a new {cat}"),
    _t("en-req-6", "request", "can you find me {cat}"),
    _t("en-req-7", "request", "{cat} please"),
    _t("en-req-8", "request", "what {cat} would you recommend?"),
    _t("en-brand-1", "brand", "do you have {brand} {cat}?"),
    _t("en-brand-2", "brand", "{cat} from {brand}"),
    _t("en-brand-3", "brand", "I'd like {cat} by {brand}"),
    _t("en-brand-4", "brand", "only {brand} please"),
    _t("en-brand-5", "brand", "anything from {brand}?"),
    _t("en-brand-6", "brand", "I'm a fan of {brand}, show me their {cat}"),
    _t("en-price-1", "price", "{cat} {price}"),
    _t("en-price-2", "price", "I need {cat} {price}"),
    _t("en-price-3", "price", "looking for {cat}, {price}"),
    _t("en-price-4", "price", "anything {price}?"),
    _t("en-price-5", "price", "show me {cat} by {brand} {price}"),
    _t("en-price-6", "price", "my budget: {price}. I want {cat}"),
    _t("en-price-7", "price", "got any {brand} {cat} {price}?"),
    _t("en-soft-1", "soft", "{cat} {soft}"),
    _t("en-soft-2", "soft", "I'm after {cat} {soft}"),
    _t("en-soft-3", "soft", "any {cat} {soft} {price}?"),
    _t("en-soft-4", "soft", "I'd love {brand} {cat} {soft}"),
    _t("en-soft-5", "soft", "recommend me {cat} {soft}"),
    # --- negations ------------------------------------------------------------------------------
    _t("en-neg-1", "negation", "not from {brand_out}"),
    _t("en-neg-2", "negation", "{cat} but not from {brand_out}"),
    _t("en-neg-3", "negation", "anything but {brand_out}"),
    _t("en-neg-4", "negation", "no {brand_out} please"),
    _t("en-neg-5", "negation", "I don't want {brand_out}, show me {cat}"),
    _t("en-neg-6", "negation", "avoid {brand_out}; {cat} {price}"),
    _t("en-neg-7", "negation", "nothing by {brand_out}, I need {cat} {soft}"),
    _t("en-negcat-1", "negation", "no {cat_out}"),
    _t("en-negcat-2", "negation", "not {cat_out}, I want {cat}"),
    _t("en-negcat-3", "negation", "anything except {cat_out}"),
    _t("en-negcat-4", "negation", "I don't need {cat_out}, rather {cat}"),
    # --- relative price ---------------------------------------------------------------------------
    _t("en-rel-1", "relative", "cheaper please", **LOWER),
    _t("en-rel-2", "relative", "something less expensive", **LOWER),
    _t("en-rel-3", "relative", "those are too pricey", **LOWER),
    _t("en-rel-4", "relative", "do you have cheaper {cat}?", **LOWER),
    _t("en-rel-5", "relative", "something more premium", **HIGHER),
    _t("en-rel-6", "relative", "show me pricier ones", **HIGHER),
    _t("en-rel-7", "relative", "any more affordable {cat}?", **LOWER),
    _t("en-rel-8", "relative", "I'd like a more expensive {cat}", **HIGHER),
    # --- references -------------------------------------------------------------------------------
    _t("en-ref-1", "reference", "more like {ref}", **OTHER),
    _t("en-ref-2", "reference", "tell me about {ref}"),
    _t("en-ref-3", "reference", "I like {ref}"),
    _t("en-ref-4", "reference", "{ref} but cheaper", **LOWER),
    _t("en-ref-5", "reference", "something similar to {ref}", **OTHER),
    _t("en-ref-6", "reference", "how much is {ref}?"),
    _t("en-ref-7", "reference", "what brand is {ref}?"),
    # --- rejections of the page -----------------------------------------------------------------
    _t("en-rej-1", "rejection", "none of these", **OTHER),
    _t("en-rej-2", "rejection", "show me something else", **OTHER),
    _t("en-rej-3", "rejection", "I don't like any of these", **OTHER),
    _t("en-rej-4", "rejection", "other options please", **OTHER),
    _t("en-rej-5", "rejection", "different ones please", **OTHER),
    _t("en-rej-6", "rejection", "not these. {cat} {price}", **OTHER),
    _t("en-rej-7", "rejection", "nope, show me more options", **OTHER),
    # --- Chinese ------------------------------------------------------------------------------------
    _t("zh-req-1", "request", "我想要{cat}"),
    _t("zh-req-2", "request", "给我看看{cat}"),
    _t("zh-req-3", "request", "有没有{cat}?"),
    _t("zh-req-4", "request", "帮我找{cat}"),
    _t("zh-req-5", "request", "推荐一款{cat}"),
    _t("zh-brand-1", "brand", "有没有{brand}的{cat}?"),
    _t("zh-brand-2", "brand", "只要{brand}的"),
    _t("zh-brand-3", "brand", "想买{brand}的{cat}"),
    _t("zh-brand-4", "brand", "{brand}家的{cat}有吗"),
    _t("zh-price-1", "price", "找{cat},{price}"),
    _t("zh-price-2", "price", "{price}的{cat}"),
    _t("zh-price-3", "price", "{brand}的{cat},{price}"),
    _t("zh-price-4", "price", "随便什么,{price}"),
    _t("zh-price-5", "price", "想要{cat},预算{price}"),
    _t("zh-soft-1", "soft", "{soft}{cat}"),
    _t("zh-soft-2", "soft", "有{soft}{cat}吗"),
    _t("zh-soft-3", "soft", "推荐{soft}{cat},{price}"),
    _t("zh-soft-4", "soft", "想要{brand}的{soft}{cat}"),
    _t("zh-neg-1", "negation", "不要{brand_out}的"),
    _t("zh-neg-2", "negation", "要{cat},但不要{brand_out}的"),
    _t("zh-neg-3", "negation", "除了{brand_out}都可以"),
    _t("zh-neg-4", "negation", "不想要{brand_out},{cat}{price}"),
    _t("zh-negcat-1", "negation", "不要{cat_out}"),
    _t("zh-negcat-2", "negation", "不要{cat_out},我想要{cat}"),
    _t("zh-negcat-3", "negation", "别推荐{cat_out}了,看看{cat}"),
    _t("zh-rel-1", "relative", "便宜一点的", **LOWER),
    _t("zh-rel-2", "relative", "太贵了", **LOWER),
    _t("zh-rel-3", "relative", "有没有更便宜的{cat}", **LOWER),
    _t("zh-rel-4", "relative", "贵一点的也行", **HIGHER),
    _t("zh-rel-5", "relative", "想要高端一点的", **HIGHER),
    _t("zh-rel-6", "relative", "实惠点的{cat}", **LOWER),
    _t("zh-ref-1", "reference", "更像{ref}的", **OTHER),
    _t("zh-ref-2", "reference", "{ref}怎么样", **{}),
    _t("zh-ref-3", "reference", "我喜欢{ref}"),
    _t("zh-ref-4", "reference", "类似{ref}的", **OTHER),
    _t("zh-ref-5", "reference", "{ref}多少钱"),
    _t("zh-rej-1", "rejection", "换一批", **OTHER),
    _t("zh-rej-2", "rejection", "这些都不喜欢", **OTHER),
    _t("zh-rej-3", "rejection", "还有别的吗", **OTHER),
    _t("zh-rej-4", "rejection", "换一个吧,{cat}{price}", **OTHER),
    _t("zh-rej-5", "rejection", "看看其他的", **OTHER),
)


@dataclass(frozen=True)
class PricePattern:
    """``{n}`` digits, ``{w}`` the number in words; ``{lo}``/``{hi}`` a range in digits."""

    id: str
    text: str
    op: Literal["max", "min", "range"]
    currency: str | None
    words: bool = False

    @property
    def lang(self) -> str:
        return "zh" if self.id.startswith("zh") else "en"


PRICE_PATTERNS: tuple[PricePattern, ...] = (
    PricePattern("en-p-under", "under ${n}", "max", "USD"),
    PricePattern("en-p-below", "below {n} dollars", "max", "USD"),
    PricePattern("en-p-lessbucks", "less than {w} bucks", "max", "USD", True),
    PricePattern("en-p-nomore", "no more than ${n}", "max", "USD"),
    PricePattern("en-p-budget", "budget {n}", "max", None),
    PricePattern("en-p-atmost", "at most {w} dollars", "max", "USD", True),
    PricePattern("en-p-upto", "up to ${n}", "max", "USD"),
    PricePattern("en-p-within", "within {n} dollars", "max", "USD"),
    PricePattern("en-p-orless", "${n} or less", "max", "USD"),
    PricePattern("en-p-tops", "{w} bucks tops", "max", "USD", True),
    PricePattern("en-p-underw", "under {w} dollars", "max", "USD", True),
    PricePattern("en-p-max", "max ${n}", "max", "USD"),
    PricePattern("en-p-over", "over ${n}", "min", "USD"),
    PricePattern("en-p-atleast", "at least {w} dollars", "min", "USD", True),
    PricePattern("en-p-above", "above {n} dollars", "min", "USD"),
    PricePattern("en-p-between", "between ${lo} and ${hi}", "range", "USD"),
    PricePattern("en-p-fromto", "from {lo} to {hi} dollars", "range", "USD"),
    PricePattern("en-p-dash", "${lo}-${hi}", "range", "USD"),
    PricePattern("zh-p-yinei", "{n}元以内", "max", "CNY"),
    PricePattern("zh-p-wyinei", "{w}元以内", "max", "CNY", True),
    PricePattern("zh-p-buchao", "不超过{n}美元", "max", "USD"),
    PricePattern("zh-p-kuai", "{n}块以下", "max", "CNY"),
    PricePattern("zh-p-zuiduo", "最多{w}块", "max", "CNY", True),
    PricePattern("zh-p-budao", "不到{n}块钱", "max", "CNY"),
    PricePattern("zh-p-yishang", "{n}元以上", "min", "CNY"),
    PricePattern("zh-p-zhishao", "至少{n}美元", "min", "USD"),
    PricePattern("zh-p-range", "{lo}到{hi}元", "range", "CNY"),
    PricePattern("zh-p-rangeusd", "{lo}到{hi}美元之间", "range", "USD"),
    PricePattern("zh-p-wmeiyuan", "{w}美元以下", "max", "USD", True),
)

NUMBER_WORDS_EN = {
    10: "ten",
    15: "fifteen",
    20: "twenty",
    25: "twenty-five",
    30: "thirty",
    40: "forty",
    50: "fifty",
    60: "sixty",
    100: "a hundred",
}
NUMBER_WORDS_ZH = {
    10: "十",
    20: "二十",
    30: "三十",
    50: "五十",
    100: "一百",
    200: "两百",
    300: "三百",
    500: "五百",
}
DIGITS_USD = (5, 8, 10, 12, 15, 20, 25, 30, 35, 40, 50, 60, 75, 80, 100, 150)
DIGITS_CNY = (30, 50, 80, 100, 150, 200, 300, 500)
RANGES_USD = ((5, 10), (10, 20), (10, 25), (15, 30), (20, 40), (25, 50), (30, 60), (50, 100))
RANGES_CNY = ((50, 100), (100, 200), (100, 300), (200, 500))


@dataclass(frozen=True)
class RefPattern:
    """``{k}``: a position; the text for each position comes from ``forms`` (position -> words);
    ``kind`` first_n: the first k items; last: the last shown item."""

    id: str
    forms: dict[int, str]
    kind: Literal["index", "first_n", "last"] = "index"

    @property
    def lang(self) -> str:
        return "zh" if self.id.startswith("zh") else "en"


_ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
_SUF = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}
_ZH = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五"}
REF_PATTERNS: tuple[RefPattern, ...] = (
    RefPattern("en-r-ord", {k: f"the {v} one" for k, v in _ORD.items()}),
    RefPattern("en-r-hash", {k: f"#{k}" for k in _ORD}),
    RefPattern("en-r-number", {k: f"number {k}" for k in _ORD}),
    RefPattern("en-r-item", {k: f"item {k}" for k in _ORD}),
    RefPattern("en-r-suffix", {k: f"the {v} one" for k, v in _SUF.items()}),
    RefPattern("en-r-ordbare", {k: f"the {v}" for k, v in _ORD.items() if k <= 3}),
    RefPattern("en-r-firstn", {2: "the first two", 3: "the first three"}, "first_n"),
    RefPattern("en-r-topn", {2: "the top 2", 3: "the top 3"}, "first_n"),
    RefPattern("en-r-last", {0: "the last one"}, "last"),
    RefPattern("zh-r-ge", {k: f"第{v}个" for k, v in _ZH.items()}),
    RefPattern("zh-r-kuan", {k: f"第{v}款" for k, v in _ZH.items()}),
    RefPattern("zh-r-digit", {k: f"第{k}个" for k in _ZH}),
    RefPattern("zh-r-firstn", {2: "前两个", 3: "前三个"}, "first_n"),
    RefPattern("zh-r-last", {0: "最后一个"}, "last"),
)


@dataclass(frozen=True)
class SoftWish:
    """A soft wish as said (``text``) and its soft term (the label, also in the query)."""

    id: str
    text: str
    term: str

    @property
    def lang(self) -> str:
        return "zh" if self.id.startswith("zh") else "en"


SOFT_WISHES: tuple[SoftWish, ...] = (
    SoftWish("en-s-oily", "for oily skin", "oily skin"),
    SoftWish("en-s-dry", "for dry skin", "dry skin"),
    SoftWish("en-s-sensitive", "for sensitive skin", "sensitive skin"),
    SoftWish("en-s-gentle", "that is gentle", "gentle"),
    SoftWish("en-s-fragfree", "that's fragrance free", "fragrance free"),
    SoftWish("en-s-lasting", "that is long lasting", "long lasting"),
    SoftWish("en-s-natural", "with a natural look", "natural look"),
    SoftWish("en-s-travel", "in travel size", "travel size"),
    SoftWish("en-s-vegan", "that is vegan", "vegan"),
    SoftWish("en-s-waterproof", "that is waterproof", "waterproof"),
    SoftWish("en-s-curly", "for curly hair", "curly hair"),
    SoftWish("en-s-argan", "with argan oil", "argan oil"),
    SoftWish("en-s-vanilla", "that smells like vanilla", "vanilla"),
    SoftWish("en-s-matte", "with a matte finish", "matte finish"),
    SoftWish("en-s-men", "for men", "men"),
    SoftWish("en-s-organic", "made with organic ingredients", "organic ingredients"),
    SoftWish("en-s-kids", "safe for kids", "kids"),
    SoftWish("en-s-shine", "that adds shine", "shine"),
    SoftWish("zh-s-oily", "适合油性皮肤的", "油性皮肤"),
    SoftWish("zh-s-gentle", "温和的", "温和"),
    SoftWish("zh-s-unscented", "无香的", "无香"),
    SoftWish("zh-s-lasting", "持久的", "持久"),
    SoftWish("zh-s-waterproof", "防水的", "防水"),
    SoftWish("zh-s-sensitive", "适合敏感肌的", "敏感肌"),
    SoftWish("zh-s-natural", "天然成分的", "天然成分"),
    SoftWish("zh-s-travel", "旅行装的", "旅行装"),
    SoftWish("zh-s-moist", "滋润的", "滋润"),
    SoftWish("zh-s-matte", "哑光的", "哑光"),
)

"""A seeded, rule-based simulated shopper for conversational evaluation (InteRecAgent protocol).

The shopper secretly wants one held-out item (the leave-one-out test target). It knows the
target's catalog facts and its own purchase history, and describes what it wants a little at
a time: at most two attributes per turn (a category level, a price band, the brand or "not
brand X" for a brand from its history the target lacks, the release decade), answers
clarifying questions truthfully, says "none of these" when the target was not shown, and stops
as soon as the target is among the shown items. It never names the target: every utterance
passes ``LeakGuard`` (no id, no title word that is not a category/brand word, no title
n-gram); a template that would leak is swapped for another phrasing.

Everything is deterministic given ``(seed, user_id)``: the same shopper talks to every system
under test, so systems differ only in what they show. ``rewriter`` optionally lets an LLM
rephrase each template utterance; a rewrite that leaks or drops a stated fact is discarded.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.voice import EN_ORDINALS, ZH_ORDINALS, PlanPart, PlanTurn, Voice, VoiceConfig
from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints
from retrieval.text import STOPWORDS as SEARCH_STOPWORDS
from retrieval.text import tokenize

__all__ = [
    "MAX_FACETS_PER_TURN",
    "PRICE_EDGES",
    "SHOPPER_MODES",
    "DescribeShopper",
    "DescribeVocabulary",
    "Facet",
    "LeakGuard",
    "SimTurn",
    "SimulatedShopper",
    "Simulator",
    "brand_family",
    "price_band",
]

MAX_FACETS_PER_TURN = 2
# Price bands a shopper would say ("between $10 and $15"); the band holding the target price.
PRICE_EDGES = (0, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)
GENERIC_BRANDS = frozenset({"unknown", "generic", "n/a", "na", "none", "no brand", "unbranded", "other"})
# A single catalog root ("Movies") gives the noun shoppers say after a genre ("an action movie").
ROOT_NOUNS = {"movies": "movie", "books": "book", "music": "album", "games": "game"}
FacetKind = Literal["category", "price", "brand", "not_brand", "decade"]
Language = Literal["en", "zh"]
Rewriter = Callable[[str, str], str]

# Template variants per facet kind; {p} is the facet phrase. Several per kind so a phrasing whose
# words happen to be in the target's title can be swapped for another.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "category_first": ("I'm looking for {p}.", "Can you recommend {p}?", "I need {p}.", "Show me {p}."),
        "category_coarse": ("It's for {p}.", "I'm shopping in {p}.", "I need help with {p}."),
        "category_refine": ("More specifically, {p}.", "I want {p}.", "Narrow it to {p}."),
        "price": ("It should cost {p}.", "Price range {p}.", "My price range is {p}."),
        "brand": ("I'd like it from {p}.", "Ideally by {p}.", "I prefer {p}."),
        "not_brand": ("Not from {p}, please.", "I don't want {p}.", "Anything but {p}."),
        "decade": ("Preferably from the {p}.", "Released in the {p}.", "It came out in the {p}."),
        "reject": ("None of these.", "Show me other options.", "Different ones, please."),
        "more": ("Show me other options.", "More options, please.", "Different ones, please.", "Next."),
        "no_budget": ("No particular budget.", "Any price is fine."),
    },
    "zh": {
        "category_first": ("我想找{p}。", "推荐一些{p}。", "我需要{p}。"),
        "category_coarse": ("是{p}类的。", "我在找{p}方面的东西。"),
        "category_refine": ("具体来说是{p}。", "要{p}。"),
        "price": ("价格{p}。", "预算{p}。"),
        "brand": ("最好是{p}的。", "想要{p}的。"),
        "not_brand": ("不要{p}的。", "除了{p}。"),
        "decade": ("最好是{p}的。", "{p}上映的。"),
        "reject": ("这些都不是。", "换一批。"),
        "more": ("换一批。", "还有别的吗。"),
        "no_budget": ("预算无所谓。",),
    },
}
# --- describe mode: a shopper who names the product type and describes it in common words ----
# ``free`` is the describe shopper's plan said in free chat words (``bench.voice``).
ShopperMode = Literal["describe", "free", "facets"]
SHOPPER_MODES: tuple[str, ...] = ("describe", "free", "facets")
VOICE_RETRIES = 8  # free wording redrawn when it happens to hold a rare word of the target's text
# Leak guard by document frequency: an attribute word must appear in at least
# max(MIN_DF, MIN_DF_SHARE * catalog size) items' texts (so it describes many products and
# identifies none), and at most MAX_DF_SHARE of them (a word in a third of the catalog says
# nothing: "great", "product").
MIN_DF = 20
MIN_DF_SHARE = 0.005
MAX_DF_SHARE = 0.3
MAX_ATTRIBUTE_WORDS = 6
PARENT_SHARE = 0.3  # shoppers who name the parent category ("hair sprays" -> "styling products")
# A parent named after a body part or an audience ("Face", "Men's") is no product type people say.
NOT_A_TYPE = frozenset(
    {"face", "eyes", "eye", "lips", "lip", "body", "nails", "hands", "feet", "foot", "hair", "men", "women"}
    | {"kids", "children", "unisex", "sun", "bath", "skin", "s"}
)
BRAND_WHEN_ASKED = 0.5  # share of "which brand?" questions answered with the target's brand
BUDGET_SHARE = 0.6  # shoppers who volunteer a budget phrase (all answer a budget question)
# Budget ceilings people say: the target's price times a seeded 1.1-1.6 margin, rounded up to one of these.
ROUND_PRICES = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000)
ORDINALS = {"en": EN_ORDINALS, "zh": ZH_ORDINALS}  # one list of ordinals for both surfaces
DESCRIBE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "open": ("I'm looking for {p}.", "Can you recommend {p}?", "I need {p}.", "Show me {p}."),
        "open_attr": (
            "I'm looking for {p}, something {a}.",
            "I need {p}, ideally {a}.",
            "Can you recommend {p}? Something {a}.",
        ),
        "attr": ("Something {a}.", "Ideally {a}.", "Maybe something {a}."),
        "budget_soft": ("Not too pricey.", "Nothing too expensive, please."),
        "budget_cap": ("Under about {m}.", "No more than about {m}.", "I'd spend up to about {m}."),
        "no_budget": ("No particular budget.", "Price doesn't matter much."),
        "brand": ("I like {b}.", "Maybe something from {b}."),
        "no_brand": ("No brand in mind.", "Any brand is fine."),
        "cheaper": ("Too expensive, something cheaper.", "These cost too much; something cheaper."),
        "premium": ("Something more premium.", "These look too cheap; something more premium."),
        "more_like": ("More like the {o} one.", "Closer to the {o} one."),
        "reject": ("Not these.", "None of these.", "Not quite, other options please."),
        "more": ("Show me other options.", "More options, please.", "Anything else?"),
    },
    "zh": {
        "open": ("我想找{p}。", "推荐一些{p}。", "我需要{p}。"),
        "open_attr": ("我想找{p}，最好是{a}的。", "推荐一些{p}，要{a}的。"),
        "attr": ("最好是{a}的。", "想要{a}的。"),
        "budget_soft": ("不要太贵。", "别太贵就行。"),
        "budget_cap": ("大概{m}以内。", "预算大约{m}。"),
        "no_budget": ("预算无所谓。",),
        "brand": ("我喜欢{b}。", "最好是{b}的。"),
        "no_brand": ("品牌无所谓。",),
        "cheaper": ("太贵了，便宜一点的。",),
        "premium": ("要更高档一点的。",),
        "more_like": ("更像{o}那样的。",),
        "reject": ("这些都不是。", "不是这些。"),
        "more": ("换一批。", "还有别的吗？"),
    },
}
# Pack sizes and units are not how people describe a product ("something ounces").
_UNIT_WORDS = (
    "oz ounce ounces fl fluid ml liter litre gram grams lb lbs pound pounds inch inches count ct pack packs "
    "pcs pc piece pieces percent size sizes total each new"
)
UNIT_WORDS = frozenset(_UNIT_WORDS.split())
_BRAND_Q = re.compile(r"brand|品牌|牌子", re.I)
_WORD = re.compile(r"^[^\W\d_]{3,}$")
_BUDGET_Q = re.compile(r"budget|price|spend|cost|预算|价格|多少钱", re.I)
_WHAT_Q = re.compile(
    r"shopping for|product type|looking for|what (?:kind|type)|use it|类型|品类|用途|什么", re.I
)
_NUM = re.compile(r"\d+")


def _question(reply: Any | None) -> str | None:
    """The clarifying question of a reply: ``reply.question`` (asked alongside items, or alone), or
    the whole text of a "clarify" reply from a system that does not set it."""
    if reply is None:
        return None
    question = getattr(reply, "question", None)
    if question:
        return str(question)
    return (getattr(reply, "text", "") or "") if getattr(reply, "intent", "") == "clarify" else None


# Function words only: any other title word (even "out" or "under") is off limits when it is
# not a category or brand word, so a phrasing that needs it is swapped for another.
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "of", "for", "with", "in", "on", "to", "by", "from", "it", "is"]
)


def _tokens(text: str) -> list[str]:
    return tokenize(text)


def _name_words(name: str) -> frozenset[str]:
    """Content words of a category name, crudely singular ("Brushes & Tools" -> {brushe, tool})."""
    return frozenset(
        t[:-1] if t.endswith("s") and len(t) > 3 else t for t in _tokens(name) if t not in STOPWORDS
    )


def price_band(price: float, edges: Sequence[float] = PRICE_EDGES) -> tuple[float | None, float | None]:
    """(low, high) of the band holding ``price`` (inclusive); None = open side."""
    if price < 0:
        raise ValueError(f"price must be >= 0, got {price}")
    if price > edges[-1]:
        return float(edges[-1]), None
    for lo, hi in itertools.pairwise(edges):
        if price <= hi:
            return (None if lo == 0 else float(lo)), float(hi)
    return float(edges[-1]), None  # pragma: no cover - unreachable


def _money(v: float) -> str:
    return f"${v:g}"


def _band_phrases(lo: float | None, hi: float | None, lang: str) -> tuple[str, ...]:
    """Ways to say the band (all parsed to the same bounds), so one clashing with a title word has a twin."""
    if lang == "zh":
        if lo is None:
            return (f"{hi:g}美元以内",)
        if hi is None:
            return (f"{lo:g}美元以上",)
        return (f"在{lo:g}到{hi:g}美元之间",)
    if lo is None:
        return tuple(f"{w} {_money(hi or 0)}" for w in ("under", "below", "less than"))
    if hi is None:
        return tuple(f"{w} {_money(lo)}" for w in ("over", "above", "more than"))
    return (f"between {_money(lo)} and {_money(hi)}", f"from {_money(lo)} to {_money(hi)}")


def brand_family(brand: str, catalog_brands: Sequence[str]) -> tuple[str, ...]:
    """Catalog brands a shopper means by ``brand``: itself and its sub-lines ("OPI" -> "OPI Nail Color").

    The ground truth for "from OPI": a product line whose name starts with the brand's words is
    still that brand.
    """
    key = _tokens(brand)
    out = [b for b in catalog_brands if _tokens(b)[: len(key)] == key]
    return tuple(dict.fromkeys([brand, *out]))


@dataclass(frozen=True)
class Facet:
    """One attribute of the target the shopper can state; ``constraint`` is its hard part (or None)."""

    kind: FacetKind
    phrase: str
    template: str  # key into TEMPLATES
    constraint: Constraints | None = None
    values: tuple[str, ...] = ()  # words/numbers a faithful rephrasing must keep
    alternatives: tuple[str, ...] = ()  # other ways to say ``phrase``

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.phrase, *self.alternatives)


@dataclass
class SimTurn:
    """What the shopper said in one turn, and the ground-truth constraints stated so far."""

    utterance: str
    facets: list[str]  # kinds revealed this turn (<= MAX_FACETS_PER_TURN)
    constraints: Constraints  # cumulative hard constraints actually expressed (ground truth)
    answered_clarify: bool = False
    rewritten: bool = False  # True when the LLM rephrasing was kept
    notes: list[str] = field(default_factory=list)
    plan: tuple[PlanPart, ...] = ()  # describe/free: what was said, as facts (the voice's input)


class LeakGuard:
    """Says whether a text gives the target away: its id, a title word or a title n-gram.

    Allowed: category words, brand words, stopwords and bare numbers (prices). Everything else
    in the target's title is off limits, alone or in runs.
    """

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.allowed: frozenset[str] = frozenset(
            t for path in catalog.category_paths() for name in path for t in _tokens(name)
        ) | frozenset(t for b in catalog.brands() for t in _tokens(b))

    def forbidden(self, item: Item) -> frozenset[str]:
        """Title tokens of ``item`` that must never be said (not category/brand/stop words, not numbers)."""
        return frozenset(
            t for t in _tokens(item.title) if t not in self.allowed and t not in STOPWORDS and not t.isdigit()
        )

    def leaks(self, text: str, item: Item) -> list[str]:
        """Reasons ``text`` would reveal ``item`` (empty = safe)."""
        reasons = []
        if re.search(rf"(?<![\w$.]){re.escape(item.item_id)}(?![\w.])", text, re.I):
            reasons.append(f"id {item.item_id!r}")
        toks = _tokens(text)
        bad = self.forbidden(item) & set(toks)
        reasons += [f"title word {t!r}" for t in sorted(bad)]
        title = _tokens(item.title)
        content = {t for t in title if t not in self.allowed and t not in STOPWORDS}
        grams = {(a, b) for a, b in itertools.pairwise(title) if a in content and b in content}
        reasons += [f"title n-gram {' '.join(g)!r}" for g in itertools.pairwise(toks) if g in grams]
        return reasons


class Simulator:
    """Per-catalog simulator factory: the leak guard and the facet vocabulary, built once."""

    def __init__(
        self,
        catalog: Catalog,
        seed: int = 0,
        language: Language = "en",
        rewriter: Rewriter | None = None,
        max_facets_per_turn: int = MAX_FACETS_PER_TURN,
        shopper: ShopperMode = "describe",
        k: int = 5,
        min_df: int = MIN_DF,
        min_df_share: float = MIN_DF_SHARE,
    ):
        if shopper not in SHOPPER_MODES:
            raise ValueError(f"shopper must be one of {list(SHOPPER_MODES)}, got {shopper!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if shopper == "free" and rewriter is not None:
            raise ValueError("the free shopper has its own voice; an LLM rewriter rephrases templates only")
        if language not in TEMPLATES:
            raise ValueError(f"language must be one of {sorted(TEMPLATES)}, got {language!r}")
        if not 1 <= max_facets_per_turn <= MAX_FACETS_PER_TURN:
            raise ValueError(
                f"max_facets_per_turn must be 1..{MAX_FACETS_PER_TURN}, got {max_facets_per_turn}"
            )
        self.catalog = catalog
        self.seed = seed
        self.language = language
        self.rewriter = rewriter
        self.max_facets_per_turn = max_facets_per_turn
        self.shopper_mode = shopper
        self.k = k
        self.guard = LeakGuard(catalog)
        self.brands = catalog.brands()
        paths = catalog.category_paths()
        roots = {p[0] for p in paths}
        self.single_root = next(iter(roots)) if len(roots) == 1 else None
        names: Counter[str] = Counter(p[-1].casefold() for p in paths)
        self.ambiguous_names = {n for n, c in names.items() if c > 1}
        nodes = {tuple(p[:n]) for p in paths for n in range(1, len(p) + 1)}
        self._node_words = {q: _name_words(q[-1]) for q in nodes}
        # describe mode only: the document frequencies behind its leak guard, typical leaf prices
        plans = shopper in ("describe", "free")
        self.vocab = DescribeVocabulary(catalog, min_df, min_df_share) if plans else None
        self.voice = Voice(VoiceConfig(language=language)) if shopper == "free" else None
        # Films, books, music, games: the free voice's stories fit a film night, not a broken one.
        self.media = (self.single_root or "").casefold() in ROOT_NOUNS
        by_leaf: dict[tuple[str, ...], list[float]] = {}
        for it in catalog:
            if it.price is not None:
                by_leaf.setdefault(tuple(it.categories), []).append(it.price)
        self.leaf_median_price = {p: sorted(v)[len(v) // 2] for p, v in by_leaf.items()}

    @property
    def mode(self) -> str:
        surface = "voice" if self.voice is not None else "template"
        return ("llm-rewrite" if self.rewriter is not None else surface) + f"/{self.language}"

    def shopper(
        self, user_id: str, history: Sequence[str], target_id: str
    ) -> SimulatedShopper | DescribeShopper:
        if target_id not in self.catalog:
            raise KeyError(f"target {target_id!r} is not in the catalog")
        rng = random.Random(zlib.crc32(f"{self.seed}:{user_id}:{target_id}".encode()))
        target = self.catalog[target_id]
        hist = [self.catalog[i] for i in history if i in self.catalog]
        if self.shopper_mode in ("describe", "free"):
            # The voice draws from its own stream: the plan (and so every describe dialogue) is the
            # same whichever surface says it.
            voice_rng = random.Random(zlib.crc32(f"voice:{self.seed}:{user_id}:{target_id}".encode()))
            return DescribeShopper(self, target, hist, rng, voice_rng)
        return SimulatedShopper(self, target, hist, rng)

    def describe_category(self, path: tuple[str, ...]) -> str:
        """The product type in everyday words: the node's name, lower case; a name several nodes
        share ("Lotions", "Brushes") gets a one-word ancestor ("body lotions", "hair brushes")."""
        phrase = everyday_category(path[-1])
        if path[-1].casefold() in self.ambiguous_names and len(path) >= 3:
            own = set(_tokens(path[-1]))
            single = [a for a in path[1:-1] if len(_tokens(a)) == 1 and not own & set(_tokens(a))]
            qualifier = single[0] if single else _tokens(path[1])[0]
            if qualifier.casefold() not in own:
                phrase = f"{qualifier.lower()} {phrase}"
        noun = ROOT_NOUNS.get((self.single_root or "").casefold())
        if noun and self.language == "en":
            phrase = f"{'an' if phrase[:1] in 'aeiou' else 'a'} {phrase} {noun}"
        return phrase

    # --- facets ------------------------------------------------------------------------
    def category_phrase(self, path: tuple[str, ...]) -> str:
        name = path[-1]
        phrase = name.lower()
        ambiguous = name.casefold() in self.ambiguous_names or self._name_clash(tuple(path))
        if ambiguous and len(path) >= 2 and path[-2] != self.single_root:
            phrase = f"{path[-2].lower()} {phrase}"
        noun = ROOT_NOUNS.get((self.single_root or "").casefold())
        if noun and self.language == "en":
            article = "an" if phrase[:1] in "aeiou" else "a"
            phrase = f"{article} {phrase} {noun}"
        return phrase

    def _name_clash(self, path: tuple[str, ...]) -> bool:
        """Another node (not an ancestor or descendant) has every word of this node's name in its
        own ("Brushes" vs "Makeup Brushes & Tools"): the bare name would not say which one is meant,
        so the shopper names the parent too ("styling tools brushes"), as a real shopper would."""
        words = self._node_words.get(path) or _name_words(path[-1])
        return any(
            words <= other
            for q, other in self._node_words.items()
            if q != path and q[: len(path)] != path and path[: len(q)] != q
        )

    @staticmethod
    def type_of(target: Item, rng: random.Random) -> tuple[str, ...]:
        """The kind this shopper calls the target: any of its category paths (``Item.paths``: a
        film is in each of its genres, and the first listed one is only the loader's choice).
        One seeded draw only when there is a choice, so single-path catalogs keep their shoppers."""
        paths = target.paths
        return tuple(paths[rng.randrange(len(paths))] if len(paths) > 1 else paths[0])

    def facets(self, target: Item, history: Sequence[Item], rng: random.Random) -> list[Facet]:
        """The target's stateable attributes, in the order this shopper will reveal them."""
        lang = self.language
        path = self.type_of(target, rng)
        first_level = 2 if self.single_root is not None and len(path) >= 2 else 1
        cats: list[Facet] = []
        if len(path) >= first_level:
            leaf = tuple(path)
            values = tuple(w for w in _tokens(leaf[-1]) if w not in STOPWORDS)
            leaf_facet = Facet(
                "category",
                self.category_phrase(leaf),
                "category_first",
                Constraints(categories=(leaf,)),
                values,
            )
            # Half the shoppers start broad ("it's for skin care") and narrow down later.
            if len(path) - first_level >= 2 and rng.random() < 0.5:
                coarse = tuple(path[:first_level])
                cats.append(
                    Facet(
                        "category",
                        self.category_phrase(coarse),
                        "category_coarse",
                        Constraints(categories=(coarse,)),
                        tuple(w for w in _tokens(coarse[-1]) if w not in STOPWORDS),
                    )
                )
                leaf_facet = Facet(
                    "category", leaf_facet.phrase, "category_refine", leaf_facet.constraint, values
                )
            cats.append(leaf_facet)
        others: list[Facet] = []
        if target.price is not None:
            lo, hi = price_band(target.price)
            said = _band_phrases(lo, hi, lang)
            others.append(
                Facet(
                    "price",
                    said[0],
                    "price",
                    Constraints(price_min=lo, price_max=hi),
                    tuple(f"{v:g}" for v in (lo, hi) if v is not None),
                    said[1:],
                )
            )
        brand = (target.brand or "").strip()
        if brand and brand.casefold() not in GENERIC_BRANDS:
            others.append(
                Facet(
                    "brand", brand, "brand", Constraints(brands_in=brand_family(brand, self.brands)), (brand,)
                )
            )
        family = {b.casefold() for b in brand_family(brand, self.brands)} if brand else set()
        seen_brands = [
            h.brand
            for h in reversed(history)
            if h.brand and h.brand.casefold() not in GENERIC_BRANDS and h.brand.casefold() not in family
        ]
        same_root = [
            h.brand
            for h in reversed(history)
            if h.brand in seen_brands and h.categories[:first_level] == tuple(path[:first_level])
        ]
        if seen_brands:
            other = (same_root or seen_brands)[0]
            others.append(Facet("not_brand", other, "not_brand", Constraints(brands_out=(other,)), (other,)))
        year = target.attributes.get("release_year")
        if isinstance(year, int | float) and 1800 < year < 2100:
            decade = int(year) // 10 * 10
            others.append(
                Facet(
                    "decade",
                    f"{decade}年代" if lang == "zh" else f"{decade}s",
                    "decade",
                    None,
                    (str(decade),),
                )
            )
        rng.shuffle(others)
        if not cats:
            return others
        # The first category facet always opens; the rest interleave after it.
        return [cats[0], *others[:1], *cats[1:], *others[1:]]


class SimulatedShopper:
    """One simulated dialogue: call ``next_turn(last_reply)`` until ``done``."""

    def __init__(self, sim: Simulator, target: Item, history: Sequence[Item], rng: random.Random):
        self.sim = sim
        self.target = target
        self.history = list(history)
        self.rng = rng
        self.pending: list[Facet] = sim.facets(target, history, rng)
        self.stated: list[Facet] = []
        self.turns: list[SimTurn] = []
        self.done = False

    @property
    def constraints(self) -> Constraints:
        """Ground truth: the conjunction of every hard constraint stated so far."""
        out = Constraints()
        for f in self.stated:
            c = f.constraint
            if c is None:
                continue
            changes: dict[str, Any] = {}
            if c.categories:
                changes["categories"] = c.categories  # a finer level replaces the coarser one
            if c.has_price:
                changes["price_min"], changes["price_max"] = c.price_min, c.price_max
            if c.brands_in:
                changes["brands_in"] = c.brands_in
            if c.brands_out:
                changes["brands_out"] = tuple(dict.fromkeys((*out.brands_out, *c.brands_out)))
            out = out.merged(**changes)
        return out

    def succeeded(self, shown: Sequence[str], k: int = 5) -> bool:
        return self.target.item_id in list(shown)[:k]

    def next_turn(self, reply: Any | None = None) -> SimTurn:
        """The shopper's next message, given the assistant's last reply (None before the first turn).

        ``reply`` needs ``.intent``, ``.text`` and ``.items`` (each with ``.item_id``), like
        ``assistant.Reply``.
        """
        if self.done:
            raise RuntimeError("the dialogue is over (the target was shown)")
        shown = [getattr(i, "item_id", i) for i in (getattr(reply, "items", None) or [])]
        if reply is not None and self.succeeded(shown):
            self.done = True
            raise RuntimeError("the target was shown: the dialogue is over")
        budget = self.rng.choice((1, self.sim.max_facets_per_turn))
        picked: list[Facet] = []
        prefix: list[str] = []
        answered = False
        question = _question(reply)
        if question is not None:
            answered = True
            if shown:  # the question came with items: say they are not it, then answer
                prefix.append(self._pick("reject"))
            if _BUDGET_Q.search(question):
                price = next((f for f in self.pending if f.kind == "price"), None)
                if price is not None:
                    picked.append(price)
                elif not any(f.kind == "price" for f in self.stated):
                    prefix.append(self._pick("no_budget"))
            if _WHAT_Q.search(question) and len(picked) < budget:
                cat = next((f for f in self.pending if f.kind == "category"), None)
                if cat is not None:
                    picked.append(cat)
        elif reply is not None and shown:
            prefix.append(self._pick("reject"))
        for f in self.pending:
            if len(picked) >= budget:
                break
            if f not in picked:
                picked.append(f)
        for f in picked:
            self.pending.remove(f)
        if not picked and (not prefix or answered):  # nothing new to say: ask for more
            prefix.append(self._pick("more"))
        utterance, kept, notes = self._compose(prefix, picked)
        self.stated.extend(kept)
        rewritten = False
        if self.sim.rewriter is not None and kept:
            utterance, rewritten, note = self._rewrite(utterance, kept)
            if note:
                notes.append(note)
        turn = SimTurn(utterance, [f.kind for f in kept], self.constraints, answered, rewritten, notes)
        self.turns.append(turn)
        return turn

    # --- phrasing -----------------------------------------------------------------------
    def _pick(self, key: str) -> str:
        """A safe phrasing of a fixed line (rejection, "more"), trying variants in seeded order."""
        variants = list(TEMPLATES[self.sim.language][key])
        start = self.rng.randrange(len(variants))
        for v in variants[start:] + variants[:start]:
            if not self.sim.guard.leaks(v, self.target):
                return v
        return "..."  # every variant uses a title word: say nothing identifiable

    def _phrase(self, facet: Facet) -> str | None:
        variants = list(TEMPLATES[self.sim.language][facet.template])
        start = self.rng.randrange(len(variants))
        for phrase in facet.phrases:
            for v in variants[start:] + variants[:start]:
                text = v.format(p=phrase)
                if not self.sim.guard.leaks(text, self.target):
                    return text
        # Bare value (category/brand words and numbers only) as the last resort.
        for phrase in facet.phrases:
            if not self.sim.guard.leaks(phrase, self.target):
                return phrase[:1].upper() + phrase[1:] + ("。" if self.sim.language == "zh" else ".")
        return None

    def _compose(self, prefix: list[str], picked: list[Facet]) -> tuple[str, list[Facet], list[str]]:
        parts = list(prefix)
        kept, notes = [], []
        for f in picked:
            text = self._phrase(f)
            if text is None:
                notes.append(f"dropped {f.kind}: every phrasing leaks")
                continue
            parts.append(text)
            kept.append(f)
        if not parts:
            parts.append(self._pick("more"))
        sep = "" if self.sim.language == "zh" else " "
        utterance = sep.join(parts)
        leak = self.sim.guard.leaks(utterance, self.target)
        if leak:  # joining two safe parts can form a title n-gram: say the facets one by one
            notes.append(f"joined utterance leaked ({leak[0]}); kept the first part")
            keep = [] if prefix else kept[:1]
            self.pending[:0] = [f for f in kept if f not in keep]  # said in a later turn
            utterance, kept = parts[0], keep
        return utterance, kept, notes

    def _rewrite(self, template: str, facets: Sequence[Facet]) -> tuple[str, bool, str]:
        """LLM rephrasing, kept only if it leaks nothing and keeps every stated value."""
        assert self.sim.rewriter is not None
        try:
            text = (self.sim.rewriter(template, self.sim.language) or "").strip()
        except Exception as e:  # a broken rewriter must not end the evaluation
            return template, False, f"rewrite failed: {type(e).__name__}"
        if not text or len(text) > 300:
            return template, False, "rewrite empty or too long"
        if self.sim.guard.leaks(text, self.target):
            return template, False, "rewrite leaked; template used"
        low = text.casefold()
        missing = [v for f in facets for v in f.values if v.casefold() not in low]
        if missing:
            return template, False, f"rewrite dropped {missing[:3]}; template used"
        if set(_NUM.findall(text)) - set(_NUM.findall(template)):
            return template, False, "rewrite added numbers; template used"
        return text, True, ""


def llm_rewriter(chat_model: Any) -> Rewriter:
    """A ``Rewriter`` from a langchain chat model: one short, greedy rephrasing."""
    from langchain_core.messages import HumanMessage, SystemMessage

    def rewrite(text: str, language: str) -> str:
        lang = "Chinese" if language == "zh" else "English"
        msgs = [
            SystemMessage(
                content=(
                    f"You rewrite a shopper's chat message in natural {lang}. Keep every fact, number and "
                    "brand exactly. Do not add product names, facts or numbers. Reply with the message only."
                )
            ),
            HumanMessage(content=text),
        ]
        out = chat_model.invoke(msgs)
        return str(getattr(out, "content", out)).strip().strip('"')

    return rewrite


def _item_words(item: Item) -> list[str]:
    """The words of an item's title, description and reviews, in that order (first occurrence)."""
    parts = [item.title, item.description or "", *item.reviews[:5]]
    return list(dict.fromkeys(t for p in parts for t in _tokens(p)))


def everyday_category(name: str) -> str:
    """A category name as people say it: lower case, "&" as "and" ("Nail Polish" -> "nail polish")."""
    return re.sub(r"\s+", " ", name.replace("&", " and ")).strip().lower()


def budget_ceiling(price: float, margin: float) -> float:
    """A generous round budget above ``price`` ("under about $30" for an $18.50 item at margin 1.5)."""
    want = price * margin
    return float(next((p for p in ROUND_PRICES if p >= want), math.ceil(want / 500) * 500))


class DescribeVocabulary:
    """Document frequencies of the catalog's words and which of them may describe an item.

    A word may be said about ``item`` only when it is in the item's own text, is a plain word
    (letters, >= 3 long), is in at least ``min_df`` items' texts (``max(min_df, min_df_share *
    len(catalog))``) and at most ``max_df_share`` of them, is no part of the item's brand (nor a
    one-word brand of the catalog) and is not a stop word.
    """

    def __init__(
        self,
        catalog: Catalog,
        min_df: int = MIN_DF,
        min_df_share: float = MIN_DF_SHARE,
        max_df_share: float = MAX_DF_SHARE,
    ):
        self.catalog = catalog
        self.df: Counter[str] = Counter(t for it in catalog for t in set(_item_words(it)))
        self.min_df = max(min_df, math.ceil(min_df_share * len(catalog)))
        self.max_df = max(self.min_df, int(max_df_share * len(catalog)))
        self.brands = catalog.brands()
        self.one_word_brands = frozenset(t[0] for b in self.brands if len(t := _tokens(b)) == 1)

    def brand_words(self, item: Item) -> frozenset[str]:
        brand = (item.brand or "").strip()
        family = brand_family(brand, self.brands) if brand else ()
        return frozenset(t for b in family for t in _tokens(b)) | self.one_word_brands

    def allowed(self, word: str, item: Item) -> bool:
        """May ``word`` be said to describe ``item`` (the leak guard)?"""
        return (
            bool(_WORD.match(word))
            and word not in STOPWORDS
            and self.min_df <= self.df.get(word, 0) <= self.max_df
            and word not in self.brand_words(item)
        )

    def attribute_words(
        self, item: Item, rng: random.Random, exclude: frozenset[str] = frozenset()
    ) -> list[str]:
        """Up to ``MAX_ATTRIBUTE_WORDS`` allowed words of ``item``: title words first (seeded order),
        then description and review words."""
        title = set(_tokens(item.title))
        said = {w.removesuffix("s") for w in exclude}
        ok = [
            w
            for w in _item_words(item)
            if w.removesuffix("s") not in said
            and w not in SEARCH_STOPWORDS
            and w not in UNIT_WORDS
            and self.allowed(w, item)
        ]
        first = [w for w in ok if w in title]
        rest = [w for w in ok if w not in title]
        rng.shuffle(first)
        return (first + rest)[:MAX_ATTRIBUTE_WORDS]


class DescribeShopper:
    """One ``describe``-mode dialogue: the product type in everyday words, then common attribute
    words of the target, reactions to what is shown, a budget phrase, the brand only when asked.

    Each turn is planned first (``PlanPart`` facts, drawn from ``rng``) and then said: with the
    describe templates, or by the simulator's free ``Voice`` (``shopper="free"``), which draws its
    wording from ``voice_rng`` only, so both surfaces say the same plan for the same seed.

    Same surface as ``SimulatedShopper``: ``next_turn(reply)``, ``succeeded``, ``constraints``.
    """

    def __init__(
        self,
        sim: Simulator,
        target: Item,
        history: Sequence[Item],
        rng: random.Random,
        voice_rng: random.Random | None = None,
    ):
        self.sim = sim
        self.target = target
        self.history = list(history)
        self.rng = rng
        if sim.voice is not None and voice_rng is None:
            raise ValueError("a free shopper needs its own voice_rng (the plan's rng must not be shared)")
        self.voice_rng = voice_rng
        path = sim.type_of(target, rng)
        low = 2 if sim.single_root is not None else 1  # never just the root ("Beauty", "Movies")
        sayable = len(path) - 1 > low and not set(_tokens(path[-2])) <= NOT_A_TYPE
        use_parent = sayable and rng.random() < PARENT_SHARE
        self.type_path: tuple[str, ...] = path[:-1] if use_parent else path
        self.type_phrase = sim.describe_category(self.type_path) if self.type_path else ""
        said = frozenset(_tokens(self.type_phrase))
        self.attributes: list[str] = sim.vocab.attribute_words(target, rng, said)
        self.era: str | None = None
        self.decade: int | None = None
        year = target.attributes.get("release_year")
        if isinstance(year, int | float) and 1800 < year < 2100:
            self.decade = int(year) // 10 * 10
            self.era = f"{self.decade}年代" if sim.language == "zh" else f"from the {self.decade}s"
            self.attributes.insert(min(1, len(self.attributes)), self.era)
        self.budget_key: str | None = None
        self.budget_cap: float | None = None
        self.budget_turn: int | None = None
        if target.price is not None:
            median = sim.leaf_median_price.get(path)
            soft = median is not None and target.price <= median and rng.random() < 0.4
            self.budget_key = "budget_soft" if soft else "budget_cap"
            if not soft:
                self.budget_cap = budget_ceiling(target.price, rng.uniform(1.1, 1.6))
            if rng.random() < BUDGET_SHARE:
                self.budget_turn = rng.choice((2, 3))
        self.type_stated = False
        self.budget_stated = False
        self.price_max: float | None = None
        self.brands_in: tuple[str, ...] = ()
        self.turns: list[SimTurn] = []
        self.done = False

    @property
    def constraints(self) -> Constraints:
        """Ground truth: the hard constraints stated so far (product type, budget cap, brand)."""
        return Constraints(
            categories=(self.type_path,) if self.type_stated and self.type_path else (),
            price_max=self.price_max,
            brands_in=self.brands_in,
        )

    def succeeded(self, shown: Sequence[str], k: int = 5) -> bool:
        return self.target.item_id in list(shown)[:k]

    def next_turn(self, reply: Any | None = None) -> SimTurn:
        """The shopper's next message given the last reply (``.intent``, ``.text``, ``.items``)."""
        if self.done:
            raise RuntimeError("the dialogue is over (the target was shown)")
        shown = [getattr(i, "item_id", i) for i in (getattr(reply, "items", None) or [])]
        if reply is not None and self.succeeded(shown, self.sim.k):
            self.done = True
            raise RuntimeError("the target was shown: the dialogue is over")
        parts: list[PlanPart] = []
        kinds: list[str] = []
        answered = False
        if reply is None:
            self._open(parts, kinds)
        else:
            if shown:  # a reply may carry items and a question: react, then answer
                parts.append(self._react(shown[: self.sim.k]))
                kinds.append("reaction")
            question = _question(reply)
            if question is not None:
                answered = self._answer(question, parts, kinds)
            if not self.type_stated:
                self._open(parts, kinds)
            else:
                for _ in range(self.rng.choice((1, 1, 2))):
                    if self.attributes:
                        parts.append(self._attr_part("attr"))
                        kinds.append("attribute")
            if len(self.turns) + 1 == self.budget_turn and not self.budget_stated:
                self._budget(parts, kinds)
        if not parts:
            parts.append(self._part("more"))
        template = self._template_text(parts)
        utterance, rewritten, notes = template, False, []
        if self.sim.voice is not None:
            plan = PlanTurn(tuple(parts), len(self.turns), self.sim.media)
            utterance, note = self._voiced(plan, template)
            notes += [note] if note else []
        elif self.sim.rewriter is not None:
            utterance, rewritten, note = self._rewrite(utterance)
            notes += [note] if note else []
        turn = SimTurn(utterance, kinds, self.constraints, answered, rewritten, notes, tuple(parts))
        self.turns.append(turn)
        return turn

    # --- what to say ------------------------------------------------------------------
    def _lines(self, key: str) -> tuple[str, ...]:
        return DESCRIBE_TEMPLATES[self.sim.language][key]

    def _part(self, key: str, **facts: Any) -> PlanPart:
        """A plan part; the describe template for it is drawn here, from the plan's own stream
        (``choice`` over the indices draws exactly as ``choice`` over the lines did)."""
        variant = self.rng.choice(range(len(self._lines(key))))
        return PlanPart(key, variant, **facts)

    def _attr_part(self, key: str, **facts: Any) -> PlanPart:
        """The next attribute word (or the era) as a plan part."""
        a = self.attributes.pop(0)
        return self._part(key, attribute=a, decade=self.decade if a == self.era else None, **facts)

    def _template_text(self, parts: Sequence[PlanPart]) -> str:
        """The describe surface: each part's drawn template, joined."""
        lang = self.sim.language
        said = []
        for p in parts:
            money = "" if p.budget is None else f"{p.budget:g}美元" if lang == "zh" else f"${p.budget:g}"
            o = "" if p.position is None else ORDINALS[lang][p.position]
            values = {"p": p.type_phrase, "a": p.attribute, "m": money, "b": p.brand, "o": o}
            said.append(self._lines(p.key)[p.variant].format(**values))
        return ("" if lang == "zh" else " ").join(said)

    def _voiced(self, plan: PlanTurn, template: str) -> tuple[str, str]:
        """The free voice's wording of ``plan``; redrawn when a filler word happens to be a rare
        word of the target's own text (it would give the target away), else the template."""
        assert self.sim.voice is not None and self.voice_rng is not None
        for _ in range(VOICE_RETRIES):
            text = self.sim.voice.say(plan, self.voice_rng)
            if not self._new_words_leak(template, text, rare_only=True):
                return text, ""
        return template, "every free wording leaked; template used"

    def _open(self, parts: list[PlanPart], kinds: list[str]) -> None:
        self.type_stated = True
        if not self.type_phrase:  # an item without categories: describe it straight away
            if self.attributes:
                parts.append(self._attr_part("attr"))
                kinds.append("attribute")
            return
        if self.attributes and self.rng.random() < 0.6:
            parts.append(self._attr_part("open_attr", type_phrase=self.type_phrase))
            kinds += ["category", "attribute"]
        else:
            parts.append(self._part("open", type_phrase=self.type_phrase))
            kinds.append("category")

    def _budget(self, parts: list[PlanPart], kinds: list[str]) -> None:
        if self.budget_key is None:
            parts.append(self._part("no_budget"))
            return
        if self.budget_cap is not None:
            parts.append(self._part("budget_cap", budget=self.budget_cap))
            self.price_max = self.budget_cap
        else:
            parts.append(self._part("budget_soft"))
        self.budget_stated = True
        kinds.append("price")

    def _answer(self, question: str, parts: list[PlanPart], kinds: list[str]) -> bool:
        """Answer a clarifying question truthfully; False when it asked nothing we recognise."""
        before = len(parts)
        if _BUDGET_Q.search(question) and not self.budget_stated:
            self._budget(parts, kinds)
        if _BRAND_Q.search(question):
            brand = (self.target.brand or "").strip()
            if brand and brand.casefold() not in GENERIC_BRANDS and self.rng.random() < BRAND_WHEN_ASKED:
                parts.append(self._part("brand", brand=brand))
                self.brands_in = brand_family(brand, self.sim.brands)
                kinds.append("brand")
            else:
                parts.append(self._part("no_brand"))
        if _WHAT_Q.search(question) and not self.type_stated:
            self._open(parts, kinds)
        return len(parts) > before

    def _react(self, shown: Sequence[str]) -> PlanPart:
        """How the shown items compare with the target: price, similarity, or a plain "not these"."""
        items = [self.sim.catalog.get(i) for i in shown]
        tp = self.target.price
        prices = [it.price for it in items if it is not None and it.price is not None]
        if tp is not None and prices and min(prices) > tp * 1.15:
            return self._part("cheaper")
        if tp is not None and prices and max(prices) < tp / 1.5:
            return self._part("premium")
        words = set(_tokens(self.target.title))
        similar = [
            (len(words & set(_tokens(it.title))), -pos)
            for pos, it in enumerate(items)
            if it is not None and set(it.paths) & set(self.target.paths) and pos < len(ORDINALS["en"])
        ]
        if similar:
            _, neg_pos = max(similar)
            return self._part("more_like", position=-neg_pos)
        return self._part("reject")

    def _new_words_leak(self, said: str, text: str, rare_only: bool = False) -> bool:
        """Does ``text`` add a word of the target's own text (or id) that may not describe it?

        ``said`` is what the plan states (the template): its words are the plan's, checked there.
        ``rare_only``: free filler ("the", "really", "gift") is common in any catalog's reviews, so
        only a rare word or a brand word (which would point at the target) counts."""
        known = set(_tokens(said))
        own = set(_item_words(self.target)) | {self.target.item_id.casefold()}
        new = {t for t in _tokens(text) if t in own and t not in known}
        vocab = self.sim.vocab
        assert vocab is not None
        if rare_only:
            return any(vocab.df.get(t, 0) < vocab.min_df or t in vocab.brand_words(self.target) for t in new)
        return any(not vocab.allowed(t, self.target) for t in new)

    def _rewrite(self, template: str) -> tuple[str, bool, str]:
        """LLM rephrasing, kept only if every word it adds from the target's text is allowed and it
        keeps the template's content words and numbers."""
        assert self.sim.rewriter is not None
        try:
            text = (self.sim.rewriter(template, self.sim.language) or "").strip()
        except Exception as e:  # a broken rewriter must not end the evaluation
            return template, False, f"rewrite failed: {type(e).__name__}"
        if not text or len(text) > 300:
            return template, False, "rewrite empty or too long"
        if self._new_words_leak(template, text):
            return template, False, "rewrite leaked; template used"
        said = set(_tokens(template))
        own = set(_item_words(self.target)) | {self.target.item_id.casefold()}
        keep = [t for t in said if t in own or t.isdigit()]
        if any(t not in set(_tokens(text)) for t in keep):
            return template, False, "rewrite dropped a stated word; template used"
        if set(_NUM.findall(text)) - set(_NUM.findall(template)):
            return template, False, "rewrite added numbers; template used"
        return text, True, ""

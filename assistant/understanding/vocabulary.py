"""Catalog vocabulary: which brands and category nodes a shopper can name, and how.

The constraint parser must turn "lipsticks", "L'Oréal", "maybeline", "口红" or
"sci fi" into the exact strings the catalog stores, because the hard filters
(``retrieval.filters.Constraints``) compare exact brands and category paths.
Everything here is built once per catalog and answered from dictionaries, so a
lookup costs microseconds; fuzzy matching (rapidfuzz) runs only on leftover
tokens that are not ordinary words.

Matching, in order of preference (longest span first, then this order):

* exact: normalised form equal (case, accents, apostrophes, dots, ``&``/``and``,
  HTML entities and full-width characters ignored: ``l'oreal`` = ``Loreal``).
* plural/singular: every token is reduced by a small stemmer on both sides
  (``lipsticks`` -> ``Lipstick``, ``glosses`` -> ``Lip Glosses``).
* parts and parents: a node called ``Creams & Moisturizers`` also answers to
  ``creams`` and ``moisturizers``, and with its parent name in front
  (``face moisturizer`` -> ``Skin Care > Face > Creams & Moisturizers``).
* aliases: an English synonym table (``moisturiser``, ``nail varnish``,
  ``sci fi``...) and Chinese aliases (``口红`` -> Lipstick, ``欧莱雅`` ->
  L'Oreal...). An alias only applies when its target exists in this catalog.
* fuzzy: a leftover token of >= 5 letters that is not a common word, scored
  with rapidfuzz's ratio against forms with the same first letter.

A name that maps to several nodes (``Conditioners`` under Hair Care and under
Hair Loss Products) yields all of them: ``Constraints.categories`` is any-of.
A brand that prefixes other substantial brands ("Nivea" / "Nivea Men") returns
``Ambiguous`` with a clarifying question; its ``union()`` is what a filter uses
when the assistant does not ask. Single generic words (``face``, ``body``,
``men``, ``sets``) are *weak* category mentions: they refine a stronger
mention ("face moisturizer") but never constrain on their own.

Precision over recall for brands, because a wrong brand filter empties the page while a missed
one still reaches retrieval as query text: a brand that is also a plain word ("Dove", "Shea",
"Curly Hair Solutions" - detected from a common-word list and from how often the catalog's
titles use the word beyond that brand's own items) matches only when typed with capitals,
and a brand's first word alone ("loreal" -> "L'Oreal Paris") matches only when it is not such
a word. The catalog's single root ("Beauty") is not indexed: naming it constrains nothing.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process

from retrieval.data.schema import Catalog

__all__ = [
    "BRAND_ALIASES_ZH",
    "CATEGORY_ALIASES_EN",
    "CATEGORY_ALIASES_ZH",
    "Ambiguous",
    "BrandMatch",
    "CatalogVocabulary",
    "CategoryMatch",
    "Mention",
    "normalize",
    "stem",
]

MatchHow = Literal["exact", "alias", "token", "fuzzy"]

# Fuzzy thresholds (rapidfuzz ratio, 0..100): high enough that "looking" never becomes a brand.
FUZZY_MIN_LEN = 5
FUZZY_CUTOFF = 87.0
# A brand that extends another ("Nivea Men" after "Nivea") is a separate line worth asking
# about only when both have a real share of the catalog; otherwise it is a spelling variant.
SUBLINE_MIN_SHARE = 0.25
MAX_NGRAM = 6

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK}]")
# Latin/Greek/Cyrillic words with inner apostrophes or dots ("l'oreal", "e.l.f."); CJK is matched
# separately by substring because it has no word boundaries. A lone "&"/"+" is a token too
# ("and"/"plus", as ``normalize`` spells it in names), so "Tools & Accessories", "Free & Clear"
# or "AT&T" typed with the ampersand matches the indexed "tools and accessories".
TOKEN_RE = re.compile(
    r"[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]+"
    r"(?:['’.][0-9A-Za-z\u00C0-\u024F]+)*\.?|[&+]"
)
_BREAK_RE = re.compile(r"[,;:!?()/。,;:!?、]")
_STRIP_RE = re.compile(r"['’.`´]")
_SPLIT_RE = re.compile(r"[^0-9a-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff" + _CJK + r"]+")

# English synonyms -> catalog node names tried in order (normalised, stemmed on lookup).
CATEGORY_ALIASES_EN: dict[str, tuple[str, ...]] = {
    "moisturiser": ("Moisturizers", "Creams & Moisturizers"),
    "moisturizer": ("Moisturizers", "Creams & Moisturizers"),
    "face cream": ("Creams & Moisturizers",),
    "nail varnish": ("Nail Polish",),
    "nail lacquer": ("Nail Polish",),
    "nail color": ("Nail Polish",),
    "nail colour": ("Nail Polish",),
    "polish": ("Nail Polish",),
    "lippie": ("Lipstick",),
    "lip gloss": ("Lip Glosses",),
    "eyeshadow": ("Eye Shadow",),
    "eye shadow": ("Eye Shadow",),
    "eye liner": ("Eyeliner",),
    "brow": ("Eyebrow Color",),
    "eyebrow": ("Eyebrow Color",),
    "perfume": ("Fragrance",),
    "scent": ("Fragrance",),
    "sunscreen": ("Sunscreens", "Skin Protection"),
    "sunblock": ("Sunscreens", "Skin Protection"),
    "sun cream": ("Sunscreens", "Skin Protection"),
    "spf": ("Sunscreens", "Skin Protection"),
    "face wash": ("Cleansers",),
    "body wash": ("Body Washes",),
    "shower gel": ("Body Washes",),
    "soap": ("Soaps",),
    "blow dryer": ("Hair Dryers",),
    "hairdryer": ("Hair Dryers",),
    "straightener": ("Flattening Irons",),
    "flat iron": ("Flattening Irons",),
    "hair straightener": ("Flattening Irons",),
    "curler": ("Curling Irons",),
    "makeup brush": ("Brushes & Applicators",),
    "make up": ("Makeup",),
    "cosmetics": ("Makeup",),
    "skincare": ("Skin Care",),
    "haircare": ("Hair Care",),
    "hair dye": ("Hair Color",),
    "false lashes": ("Fake Eyelashes & Adhesives",),
    "fake lashes": ("Fake Eyelashes & Adhesives",),
    "serum": ("Oils & Serums", "Serums"),
    "toner": ("Toners & Astringents",),
    "sci fi": ("Sci-Fi",),
    "scifi": ("Sci-Fi",),
    "science fiction": ("Sci-Fi",),
    "horror movie": ("Horror",),
    "scary": ("Horror",),
    "romcom": ("Romance",),
    "romantic": ("Romance",),
    "funny": ("Comedy",),
    "cartoon": ("Animation",),
    "animated": ("Animation",),
    "kids": ("Children's", "Children"),
    "documentaries": ("Documentary",),
    "film noir": ("Film-Noir",),
    "noir": ("Film-Noir",),
    "musical": ("Musical",),
    "film": ("Movies",),
    "movie": ("Movies",),
}

# Chinese aliases -> catalog node names tried in order. Longer keys win (substring search).
CATEGORY_ALIASES_ZH: dict[str, tuple[str, ...]] = {
    "口红": ("Lipstick",),
    "唇膏": ("Lipstick",),
    "唇彩": ("Lip Glosses",),
    "唇蜜": ("Lip Glosses",),
    "唇线笔": ("Lip Liners",),
    "指甲油": ("Nail Polish",),
    "甲油": ("Nail Polish",),
    "洗甲水": ("Nail Polish Remover",),
    "美甲": ("Nail Art",),
    "面霜": ("Creams & Moisturizers", "Moisturizers"),
    "保湿霜": ("Moisturizers", "Creams & Moisturizers"),
    "润肤霜": ("Moisturizers", "Creams & Moisturizers"),
    "身体乳": ("Lotions", "Moisturizers"),
    "乳液": ("Lotions", "Fluids & Lotions"),
    "眼霜": ("eye cream",),
    "精华": ("Oils & Serums", "Serums"),
    "爽肤水": ("Toners & Astringents",),
    "化妆水": ("Toners & Astringents",),
    "面膜": ("Masks",),
    "洗面奶": ("face cleansers", "Cleansers"),
    "防晒霜": ("Sunscreens", "Skin Protection"),
    "防晒": ("Sunscreens", "Skin Protection"),
    "洗发水": ("Shampoos", "Shampoo"),
    "洗发露": ("Shampoos", "Shampoo"),
    "护发素": ("Conditioners",),
    "染发剂": ("Hair Color",),
    "吹风机": ("Hair Dryers",),
    "卷发棒": ("Curling Irons",),
    "直发器": ("Flattening Irons",),
    "睫毛膏": ("Mascara",),
    "假睫毛": ("Fake Eyelashes & Adhesives",),
    "眼线笔": ("Eyeliner",),
    "眼线": ("Eyeliner",),
    "眼影": ("Eye Shadow",),
    "眉笔": ("Eyebrow Color",),
    "粉底液": ("Foundation",),
    "粉底": ("Foundation",),
    "遮瑕": ("Concealers & Neutralizers", "Concealer"),
    "腮红": ("Blush",),
    "散粉": ("Powder",),
    "化妆刷": ("Brushes & Applicators",),
    "香水": ("Fragrance",),
    "沐浴露": ("Body Washes",),
    "香皂": ("Soaps",),
    "彩妆": ("Makeup",),
    "化妆品": ("Makeup",),
    "护肤品": ("Skin Care",),
    "护肤": ("Skin Care",),
    "护发": ("Hair Care",),
    "电影": ("Movies",),
    "影片": ("Movies",),
    "喜剧": ("Comedy",),
    "恐怖": ("Horror",),
    "科幻": ("Sci-Fi",),
    "动作": ("Action",),
    "爱情": ("Romance",),
    "动画": ("Animation",),
    "纪录片": ("Documentary",),
    "剧情": ("Drama",),
    "惊悚": ("Thriller",),
    "冒险": ("Adventure",),
    "犯罪": ("Crime",),
    "奇幻": ("Fantasy",),
    "悬疑": ("Mystery",),
    "战争": ("War",),
    "西部": ("Western",),
    "歌舞": ("Musical",),
    "儿童": ("Children's", "Children"),
    "黑色电影": ("Film-Noir",),
    "笔记本": ("Notebooks",),
    "文件夹": ("File Folders", "Folders"),
    "订书机": ("Staplers",),
    "胶带": ("Tape",),
    "打印纸": ("Paper",),
}

BRAND_ALIASES_ZH: dict[str, tuple[str, ...]] = {
    "欧莱雅": ("L'Oreal Paris", "L'Oreal"),
    "巴黎欧莱雅": ("L'Oreal Paris",),
    "美宝莲": ("Maybelline",),
    "玉兰油": ("Olay",),
    "露华浓": ("Revlon",),
    "露得清": ("Neutrogena",),
    "妮维雅男士": ("Nivea Men",),
    "妮维雅": ("Nivea",),
    "多芬": ("Dove",),
    "倩碧": ("Clinique",),
    "潘婷": ("Pantene",),
    "卡尼尔": ("Garnier",),
    "伊卡璐": ("Clairol",),
    "封面女郎": ("COVERGIRL",),
    "小蜜蜂": ("Burt's Bees",),
    "艾惟诺": ("Aveeno",),
    "资生堂": ("Shiseido",),
    "兰蔻": ("Lancome",),
    "雅诗兰黛": ("Estee Lauder",),
    "迪奥": ("Dior",),
    "香奈儿": ("Chanel",),
    "魅可": ("MAC",),
    "海飞丝": ("Head & Shoulders",),
    "沙宣": ("Vidal Sassoon",),
    "施华蔻": ("Schwarzkopf",),
    "丝塔芙": ("Cetaphil",),
    "理肤泉": ("La Roche-Posay",),
    "薇姿": ("Vichy",),
    "碧柔": ("Biore",),
    "科颜氏": ("Kiehl's",),
    "悦诗风吟": ("Innisfree",),
    "莎莉汉森": ("Sally Hansen",),
    "芭比波朗": ("Bobbi Brown",),
    "圣罗兰": ("Yves Saint Laurent", "YSL"),
    "娇韵诗": ("Clarins",),
    "飞利浦": ("Philips",),
    "松下": ("Panasonic",),
    "博朗": ("Braun",),
}

# Single words that name a body part, audience or form: they refine, never constrain alone.
_GENERIC_TEXT = """body face eye eyes lip lips nail nails hand hands foot feet skin hair men man women woman
    children child kid baby set sets kit kits combination combinations complex complexes filler
    fillers sport sports oil oils gel gels cream creams lotion lotions bar bars wash washes mask
    masks sun bath tool tools accessory accessories other others misc miscellaneous general pillow
    pillows cloth cloths fluid fluids"""
GENERIC_CATEGORY_WORDS = frozenset(_GENERIC_TEXT.split())

# Ordinary words never fuzzy-matched to a brand or category, and single-word brands equal to one
# of them ("Dove", "Harmony", "Philosophy") only match when typed with the brand's capitals.
_COMMON_TEXT = """a about above after again against all almost also although always am among an and another
    any anybody anyone anything anyway are around as ask at away back bad be because been before
    being below best better between big bit both bought brand brands but buy by can cheap cheaper
    cheapest color colors colour come could day dear did different do does doing done down dry
    each easy either else enough even ever every everyday everything exactly expensive fair far
    few find fine first for found free friend from gave get gift gifts give go going gone good
    got great had happy has have having he hello help her here hey hi him his how however i if in
    instead into is it its just keep kind know last least less like likes little long look
    looking lot love lovely made make many matte maybe me mean might mine more most much must my
    myself need needs never new next nice no none nor not nothing now of off oily ok okay old on
    once one only open or other our out over own pack people perfect please plus pretty price
    prices pure quality quite rather really recommend recommendation red right same say second
    see seem sell sensitive set she should show similar since size skin small so some someone
    something sometimes soft sorry special still stuff such suggest sure take than thank thanks
    that the their them then there these they thing things think third this those though through
    to today too try two under up us use used very want wanted was way we well were what whatever
    when where which while white who why will wish with within without work would yes yet you
    your yours black blue green pink purple brown gold silver nude natural organic vegan summer
    winter spring autumn fall wedding party office daily night morning long lasting waterproof
    shiny glossy shimmer glitter light dark warm cool hot cold fresh clean gentle strong mild
    harmony philosophy dove suave pure ice bio duo adore adored sally diane axe ion hey re
    loves loved wants needs uses makes gets looks feels smells works goes says"""
COMMON_WORDS = frozenset(_COMMON_TEXT.split())

# First words of many unrelated brands ("Beauty ...", "Dr. ..."): never a brand by themselves.
BRAND_PREFIX_STOP = frozenset(
    [
        "beauty",
        "cosmetics",
        "cosmetic",
        "nail",
        "nails",
        "hair",
        "skin",
        "care",
        "professional",
        "pro",
        "salon",
        "lab",
        "labs",
        "body",
        "dr",
        "mr",
        "miss",
        "la",
        "le",
        "de",
        "st",
        "real",
        "simply",
        "true",
        "royal",
        "golden",
        "super",
        "premium",
        "new",
        "natural",
        "naturals",
        "organic",
        "organics",
        "the",
        "art",
        "style",
        "spa",
        "studio",
        "home",
        "my",
        "your",
        "best",
        "all",
    ]
)

_STEM_KEEP = ("ss", "us", "is", "ous")


def normalize(text: str) -> str:
    """Casefolded, accent-free, punctuation-light form used on both sides of every match."""
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    text = text.replace("&", " and ").replace("+", " plus ")
    text = _STRIP_RE.sub("", text)
    return " ".join(_SPLIT_RE.sub(" ", text).split())


def stem(word: str) -> str:
    """Crude singular form; only consistency matters, as both sides go through it."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_STEM_KEEP):
        return word[:-1]
    return word


def stem_phrase(normalized: str) -> str:
    return " ".join(stem(w) for w in normalized.split())


_GENERIC_STEMS = frozenset(stem(w) for w in GENERIC_CATEGORY_WORDS)


@dataclass(frozen=True)
class _CatEntry:
    names: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class BrandMatch:
    """One brand, with every catalog spelling of it (filters compare exact strings)."""

    brand: str
    spellings: tuple[str, ...]
    surface: str = ""
    how: MatchHow = "exact"
    score: float = 100.0

    @property
    def kind(self) -> Literal["brand"]:
        return "brand"


@dataclass(frozen=True)
class CategoryMatch:
    """A named node and every catalog path it stands for (any-of)."""

    name: str
    paths: tuple[tuple[str, ...], ...]
    surface: str = ""
    how: MatchHow = "exact"
    score: float = 100.0
    weak: bool = False

    @property
    def kind(self) -> Literal["category"]:
        return "category"


@dataclass(frozen=True)
class Ambiguous:
    """Several readings of one phrase; ``question`` is a ready clarifying question."""

    surface: str
    candidates: tuple[BrandMatch, ...] | tuple[CategoryMatch, ...]
    question: str
    question_zh: str

    @property
    def kind(self) -> str:
        return self.candidates[0].kind

    def union(self) -> BrandMatch | CategoryMatch:
        """The reading a filter uses when nobody asks: all candidates at once."""
        first = self.candidates[0]
        if isinstance(first, BrandMatch):
            spellings = tuple(dict.fromkeys(s for c in self.candidates for s in c.spellings))  # type: ignore[union-attr]
            return BrandMatch(first.brand, spellings, self.surface, first.how, first.score)
        paths = tuple(dict.fromkeys(p for c in self.candidates for p in c.paths))  # type: ignore[union-attr]
        return CategoryMatch(first.name, paths, self.surface, first.how, first.score)


@dataclass(frozen=True)
class Mention:
    """A brand or category found in an utterance, with its character span."""

    start: int
    end: int
    match: BrandMatch | CategoryMatch | Ambiguous

    @property
    def kind(self) -> str:
        return self.match.kind

    @property
    def resolved(self) -> BrandMatch | CategoryMatch:
        m = self.match
        return m.union() if isinstance(m, Ambiguous) else m


@dataclass
class _Token:
    norm: str
    stem: str
    start: int
    end: int
    raw: str


def tokenize(text: str) -> list[_Token]:
    out = []
    for m in TOKEN_RE.finditer(text):
        norm = normalize(m.group())
        for part in norm.split() or ():
            out.append(_Token(part, stem(part), m.start(), m.end(), m.group()))
    return out


@dataclass
class CatalogVocabulary:
    """Brands and category nodes of one catalog, indexed for fast utterance matching."""

    brands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # norm -> spellings
    brand_counts: dict[str, int] = field(default_factory=dict)  # norm -> items
    nodes: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # display -> paths
    _brand_display: dict[str, str] = field(default_factory=dict)
    _brand_case: dict[str, frozenset[str]] = field(default_factory=dict)
    # stemmed form -> (node names, the paths this form stands for)
    _cat_index: dict[str, _CatEntry] = field(default_factory=dict)
    _fuzzy_brand: dict[str, list[str]] = field(default_factory=dict)  # first char -> norms
    _fuzzy_cat: dict[str, list[str]] = field(default_factory=dict)
    _zh_aliases: list[tuple[str, str, Any]] = field(default_factory=list)
    _descriptive: frozenset[str] = frozenset()  # brand words mostly used as plain words in titles
    _known_words: frozenset[str] = frozenset()
    has_prices: bool = True
    _brand_prefix: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "loreal" -> brand keys
    _max_ngram: int = MAX_NGRAM  # longest form, in tokens

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogVocabulary:
        counts = Counter(it.brand for it in catalog if it.brand and it.brand.strip())
        paths = catalog.category_paths()
        roots = {p[0] for p in paths}
        # A single root ("Beauty") covers the whole catalog: naming it constrains nothing.
        paths = [p for p in paths if not (len(roots) == 1 and len(p) == 1)]
        vocab = cls.build(counts, paths, titles=(it.title for it in catalog))
        vocab.has_prices = catalog.has_prices
        return vocab

    @classmethod
    def build(
        cls,
        brand_counts: dict[str, int] | Iterable[str],
        category_paths: Iterable[Iterable[str]],
        titles: Iterable[str] = (),
    ) -> CatalogVocabulary:
        """Build from brand names (optionally with item counts), category paths and titles.

        Titles only serve to spot brand words that are mostly plain words ("shea", "curly"):
        those match only when typed with capitals.
        """
        if not isinstance(brand_counts, dict):
            brand_counts = Counter(brand_counts)
        vocab = cls()
        spell: dict[str, list[str]] = defaultdict(list)
        for b, n in brand_counts.items():
            key = normalize(b)
            if not key:
                continue
            spell[key].append(b)
            vocab.brand_counts[key] = vocab.brand_counts.get(key, 0) + int(n)
        for key, names in spell.items():
            names.sort(key=lambda s: -brand_counts[s])  # most common spelling first
            vocab.brands[key] = tuple(names)
            vocab._brand_display[key] = names[0]
            vocab._brand_case[key] = frozenset(names)
            vocab._fuzzy_brand.setdefault(key[0], []).append(key)

        df: Counter[str] = Counter()
        for title in titles:
            df.update(set(normalize(title).split()))
        by_token: Counter[str] = Counter()
        for key, n in vocab.brand_counts.items():
            for t in set(key.split()):
                by_token[t] += n
        # A brand word that titles use far more often than the brand has items is a plain word.
        vocab._descriptive = frozenset(t for t in by_token if df[t] >= 5 and df[t] >= 3 * by_token[t])
        prefixes: dict[str, set[str]] = defaultdict(set)
        for key in vocab.brands:
            toks = key.split()
            for k in range(1, len(toks)):
                pre = " ".join(toks[:k])
                if len(pre) >= 4 and not all(t in COMMON_WORDS or t in BRAND_PREFIX_STOP for t in toks[:k]):
                    prefixes[pre].add(key)
        vocab._brand_prefix = {
            p: tuple(sorted(ks, key=len)) for p, ks in prefixes.items() if p not in vocab.brands
        }
        node_paths: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        forms: dict[str, dict[str, list[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(list))
        for path in category_paths:
            path = tuple(path)
            if not path:
                continue
            name = path[-1]
            node_paths[name].append(path)
            full = normalize(name)
            parts = [normalize(p) for p in re.split(r"\s*(?:&|,|/|\band\b)\s*", name) if p.strip()]
            variants = {v for v in (full, *parts) if v}
            parent = normalize(path[-2]) if len(path) >= 2 else ""
            for v in variants:
                forms[stem_phrase(v)][name].append(path)
                if parent:  # "face moisturizer" names only the node under Face
                    forms[stem_phrase(f"{parent} {v}")][name].append(path)
        vocab.nodes = {n: tuple(dict.fromkeys(ps)) for n, ps in node_paths.items()}
        for form, by_name in forms.items():
            vocab._cat_index[form] = _CatEntry(
                tuple(by_name), _drop_descendants(p for ps in by_name.values() for p in ps)
            )
            vocab._fuzzy_cat.setdefault(form[0], []).append(form)
        for alias, targets in CATEGORY_ALIASES_EN.items():
            entry = vocab._resolve_category(targets)
            if entry and stem_phrase(normalize(alias)) not in vocab._cat_index:
                vocab._cat_index[stem_phrase(normalize(alias))] = entry
        zh: list[tuple[str, str, Any]] = []
        for alias, targets in CATEGORY_ALIASES_ZH.items():
            entry = vocab._resolve_category(targets)
            if entry:
                zh.append((alias, "category", entry))
        for alias, targets in BRAND_ALIASES_ZH.items():
            keys = tuple(normalize(t) for t in targets if normalize(t) in vocab.brands)
            if keys:
                zh.append((alias, "brand", keys[:1]))
        zh.sort(key=lambda t: -len(t[0]))
        vocab._zh_aliases = zh
        longest = max(
            (len(k.split()) for k in (*vocab._cat_index, *vocab.brands, *vocab._brand_prefix)), default=1
        )
        vocab._max_ngram = max(1, min(MAX_NGRAM, longest))
        known = set(COMMON_WORDS)
        for form in vocab._cat_index:
            known.update(form.split())
        vocab._known_words = frozenset(known)
        return vocab

    def _resolve_category(self, targets: Iterable[str]) -> _CatEntry | None:
        for t in targets:
            # The form index first: "Moisturizers" also answers for "Creams & Moisturizers".
            hit = self._cat_index.get(stem_phrase(normalize(t)))
            if hit:
                return hit
            if t in self.nodes:
                return _CatEntry((t,), _drop_descendants(self.nodes[t]))
        return None

    # ---- public lookups ----------------------------------------------------------------------
    @property
    def brand_names(self) -> list[str]:
        return sorted(self._brand_display.values())

    @property
    def category_names(self) -> list[str]:
        return sorted(self.nodes)

    def category_match(
        self, entry: _CatEntry, surface: str = "", how: MatchHow = "exact", score: float = 100.0
    ) -> CategoryMatch:
        weak = " " not in surface.strip() and stem(normalize(surface)) in _GENERIC_STEMS
        return CategoryMatch(entry.names[0], entry.paths, surface, how, score, weak)

    def _brand_family(self, key: str, surface: str, how: MatchHow, score: float) -> BrandMatch | Ambiguous:
        base = BrandMatch(self._brand_display[key], self.brands[key], surface, how, score)
        ext = [k for k in self._extensions(key)]
        if not ext:
            return base
        base_n = self.brand_counts.get(key, 0)
        sublines, variants = [], []
        for k in ext:
            n = self.brand_counts.get(k, 0)
            big = max(base_n, n)
            (sublines if min(base_n, n) >= SUBLINE_MIN_SHARE * big else variants).append(k)
        # Rare extensions are spelling variants ("OPI NAIL COLOR"); a rare bare name is a variant
        # of its bigger line ("Loreal" vs "L'Oreal Paris"): both are folded in without asking.
        spellings = base.spellings + tuple(s for k in variants for s in self.brands[k])
        base = BrandMatch(base.brand, tuple(dict.fromkeys(spellings)), surface, how, score)
        if not sublines:
            return base
        cands = (
            base,
            *(BrandMatch(self._brand_display[k], self.brands[k], surface, how, score) for k in sublines),
        )
        names = [c.brand for c in cands]
        listed = ", ".join(names[:-1]) + f" or {names[-1]}"
        return Ambiguous(
            surface,
            cands,
            f"Do you mean {listed} (or any of them)?",
            f"您指的是{'、'.join(names)}中的哪一个(还是都可以)?",
        )

    def _extensions(self, key: str) -> list[str]:
        prefix = key + " "
        return [k for k in self._fuzzy_brand.get(key[0], ()) if k.startswith(prefix)]

    def match_brand(self, text: str) -> BrandMatch | Ambiguous | None:
        """Match a whole phrase to a brand: exact, Chinese alias, unique first token, then fuzzy."""
        key = normalize(text)
        if not key:
            return None
        if key in self.brands:
            return self._brand_family(key, text, "exact", 100.0)
        for alias, kind, targets in self._zh_aliases:
            if kind == "brand" and alias == text.strip():
                return self._brand_family(targets[0], text, "alias", 100.0)
        hit = self._prefix_match(key, text)
        return hit if hit is not None else self._fuzzy_brand_lookup(key, text)

    def _prefix_match(self, key: str, surface: str) -> BrandMatch | Ambiguous | None:
        """The first word(s) of a brand ("loreal" -> "L'Oreal Paris", "burts" -> "Burt's Bees")."""
        keys = self._brand_prefix.get(key)
        if not keys:
            return None
        shortest = keys[0]
        if all(k.startswith(shortest) for k in keys):
            return self._brand_family(shortest, surface, "token", 95.0)
        cands = tuple(
            BrandMatch(self._brand_display[k], self.brands[k], surface, "token", 95.0) for k in keys[:4]
        )
        names = [c.brand for c in cands]
        return Ambiguous(
            surface,
            cands,
            f"Which one do you mean: {', '.join(names[:-1])} or {names[-1]}?",
            f"您指的是哪一个:{'、'.join(names)}?",
        )

    def _fuzzy_brand_lookup(self, key: str, surface: str) -> BrandMatch | Ambiguous | None:
        if len(key.replace(" ", "")) < FUZZY_MIN_LEN or key in self._known_words:
            return None
        pool = self._fuzzy_brand.get(key[0])
        if not pool:
            return None
        hit = process.extractOne(key, pool, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        if hit is None:
            return None
        return self._brand_family(hit[0], surface, "fuzzy", float(hit[1]))

    def match_category(self, text: str) -> CategoryMatch | Ambiguous | None:
        """Match a whole phrase to category nodes: exact/plural/alias forms, Chinese, then fuzzy."""
        stripped = text.strip()
        for alias, kind, entry in self._zh_aliases:
            if kind == "category" and alias == stripped:
                return self.category_match(entry, text, "alias")
        key = stem_phrase(normalize(text))
        if not key:
            return None
        entry = self._cat_index.get(key)
        if entry:
            return self.category_match(entry, text, "exact")
        if len(key.replace(" ", "")) < FUZZY_MIN_LEN or key in self._known_words:
            return None
        pool = self._fuzzy_cat.get(key[0])
        if not pool:
            return None
        hits = process.extract(key, pool, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=3)
        if not hits:
            return None
        best = hits[0]
        entry = self._cat_index[best[0]]
        rivals = [h for h in hits[1:] if best[1] - h[1] < 3 and self._cat_index[h[0]].names != entry.names]
        if rivals:
            cands = tuple(
                self.category_match(self._cat_index[h[0]], text, "fuzzy", float(h[1]))
                for h in (best, *rivals)
            )
            shown = [c.name for c in cands]
            return Ambiguous(
                text,
                cands,
                f"Did you mean {' or '.join(shown)}?",
                f"您是指{'还是'.join(shown)}?",
            )
        return self.category_match(entry, text, "fuzzy", float(best[1]))

    # ---- scanning an utterance ---------------------------------------------------------------
    def find_mentions(self, text: str) -> list[Mention]:
        """All non-overlapping brand/category mentions, longest span first, in text order."""
        found: list[Mention] = []
        taken = bytearray(len(text))
        for alias, kind, targets in self._zh_aliases:  # longest aliases first
            start = text.find(alias)
            while start >= 0:
                end = start + len(alias)
                if not any(taken[start:end]):
                    m = (
                        self._brand_family(targets[0], alias, "alias", 100.0)
                        if kind == "brand"
                        else self.category_match(targets, alias, "alias")
                    )
                    found.append(Mention(start, end, m))
                    taken[start:end] = b"\x01" * (end - start)
                start = text.find(alias, end)
        tokens = [t for t in tokenize(text) if not any(taken[t.start : t.end])]
        breaks = [bool(_BREAK_RE.search(text, a.end, b.start)) for a, b in itertools.pairwise(tokens)]
        used = [False] * len(tokens)
        i = 0
        while i < len(tokens):
            hit = self._longest_at(text, tokens, i, breaks)
            if hit is None:
                i += 1
                continue
            n, match = hit
            start, end = tokens[i].start, tokens[i + n - 1].end
            found.append(Mention(start, end, match))
            for j in range(i, i + n):
                used[j] = True
            i += n
        for i, tok in enumerate(tokens):
            if used[i] or tok.norm.isdigit() or tok.norm in self._known_words:
                continue
            if len(tok.norm) < FUZZY_MIN_LEN:
                continue
            m = self._fuzzy_best(tok)
            if m is not None:
                found.append(Mention(tok.start, tok.end, m))
        found.sort(key=lambda m: m.start)
        return found

    def _fuzzy_best(self, tok: _Token) -> BrandMatch | CategoryMatch | Ambiguous | None:
        """Typo repair for one leftover token: the better of brand and category (category on ties)."""
        brand = self._fuzzy_brand_lookup(tok.norm, tok.raw)
        cat = self.match_category(tok.raw)
        if isinstance(cat, CategoryMatch) and cat.weak:
            cat = None
        b_score = _score(brand)
        c_score = _score(cat)
        if brand is None and cat is None:
            return None
        return cat if cat is not None and c_score >= b_score else brand

    def _longest_at(self, text: str, tokens: list[_Token], i: int, breaks: list[bool]):
        # A mention never spans a sentence break or a list separator (",", "/", "(", ...).
        stop = i + 1
        while stop < len(tokens) and stop - i < self._max_ngram and not breaks[stop - 1]:
            stop += 1
        for n in range(stop - i, 0, -1):
            window = tokens[i : i + n]
            key = " ".join(t.norm for t in window)
            skey = " ".join(t.stem for t in window)
            surface = text[window[0].start : window[-1].end]
            entry = self._cat_index.get(skey)
            brand_ok = key in self.brands and self._brand_allowed(key, surface)
            if entry and brand_ok:
                # Same span names both: the brand wins only when typed with its own capitals.
                brand_ok = surface in self._brand_case[key]
            if brand_ok:
                return n, self._brand_family(key, surface, "exact", 100.0)
            if entry:
                return n, self.category_match(entry, surface, "exact")
            if key in self._brand_prefix and self._brand_allowed(key, surface, prefix=True):
                hit = self._prefix_match(key, surface)
                if hit is not None:
                    return n, hit
        return None

    def _brand_allowed(self, key: str, surface: str, prefix: bool = False) -> bool:
        """Brands that are also plain words ("Dove", "Shea", "Curly Hair ...") need capitals."""
        toks = key.split()
        plain = len(key) <= 2 or all(t in self._known_words or t in self._descriptive for t in toks)
        if not plain:
            return True
        if prefix:
            return surface[:1].isupper() and len(key) > 2
        return surface in self._brand_case[key] or surface.rstrip(".") in self._brand_case[key]


def _score(m: BrandMatch | CategoryMatch | Ambiguous | None) -> float:
    if m is None:
        return -1.0
    return m.candidates[0].score if isinstance(m, Ambiguous) else m.score


def _drop_descendants(paths: Iterable[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    uniq = sorted(set(paths), key=lambda p: (len(p), p))
    kept: list[tuple[str, ...]] = []
    for p in uniq:
        if not any(p[: len(k)] == k for k in kept):
            kept.append(p)
    return tuple(kept)

"""Catalog vocabulary: which brands and category nodes a shopper can name, and how.

The parser must turn "lipsticks", "L'Oréal", "maybeline", "口红" or "sci fi" into the exact brands
and category paths the hard filters (``retrieval.filters.Constraints``) compare; all is built
once per catalog. Matching, in order of preference (longest span first, then this order):

* exact: normalised form equal (case, accents, apostrophes, dots, ``&``/``and``, HTML entities
  and full-width characters ignored: ``l'oreal`` = ``Loreal``), on stems (``glosses``).
* parts and parents: ``Creams & Moisturizers`` also answers to ``creams``, ``moisturizers`` and
  ``face moisturizer`` (``Skin Care > Face > Creams & Moisturizers``).
* aliases: English synonyms (``moisturiser``, ``nail varnish``, ``sci fi``...) and Chinese aliases
  (``口红`` -> Lipstick, ``欧莱雅`` -> L'Oreal...) in ``data/vocabulary.yaml``. An alias applies
  when its target exists in this catalog; it takes a form a node name holds when the titles tie
  the form to the alias's target ("polish" -> Nail Polish, not "Polishes").
* fuzzy: a leftover token of >= 5 letters that is not a common word, scored with rapidfuzz's
  ratio against forms with the same first letter: a typo repair, a soft preference, never a filter.

Title evidence (``title_share`` / ``category_confident``): a part of a node's name or a generic
word names the node confidently only when the catalog's titles that use it are mostly that node's
items ("cap", "washes" are not); a full node name or an alias always does. A node with hardly any
items is no filter for a plain word (``stocked``).

A name that maps to several nodes (``Conditioners`` under Hair Care and under Hair Loss Products)
yields all of them: ``Constraints.categories`` is any-of. A brand that prefixes other substantial
brands ("Nivea" / "Nivea Men") returns ``Ambiguous`` with a clarifying question; its ``union()`` is
what a filter uses when the assistant does not ask. Single generic words (``face``, ``body``,
``men``, ``sets``) are *weak* category mentions: they refine a stronger mention ("face
moisturizer") but never constrain on their own.

Precision over recall for brands (a wrong brand filter empties the page, a missed one still
reaches retrieval as text): a brand that is plain words ("Dove", "Curly Hair Solutions"; one word
of everyday English, ``lexicon.english_words``: "Simple") matches only with capitals, a brand's
first word alone ("loreal" -> "L'Oreal Paris") only when it is no such word, and the parser then
asks for brand context (``brand_needs_context``).
A brand's first words that are a whole brand ("opi nail" of "OPI NAIL COLOR") are that brand.
The catalog's single root ("Beauty") is not indexed: naming it constrains nothing.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rapidfuzz import fuzz, process

from assistant.understanding import lexicon
from assistant.understanding.facets import CatalogFacets
from assistant.understanding.matches import (
    Ambiguous,
    BrandMatch,
    CategoryMatch,
    CatEntry,
    MatchHow,
    Mention,
    drop_descendants,
    match_score,
)
from assistant.understanding.tokens import Token, normalize, stem, stem_phrase, tokenize
from retrieval.data.schema import Catalog
from retrieval.text import HAN_RE

__all__ = [
    "CatalogVocabulary",
    "brand_prefix_stop",
    "common_words",
    "generic_category_words",
]

# Fuzzy thresholds (rapidfuzz ratio, 0..100): high enough that "looking" never becomes a brand.
FUZZY_MIN_LEN = 5
FUZZY_CUTOFF = 87.0
TITLE_WORD_MIN = 2  # a word in this many titles is spelled as the catalog spells it
# A brand that extends another ("Nivea Men" after "Nivea") is a separate line worth asking
# about only when both have a real share of the catalog; otherwise it is a spelling variant.
SUBLINE_MIN_SHARE = 0.25
MAX_NGRAM = 6
# Title evidence for a part of a node name or a generic word: when at least TITLE_MIN_SUPPORT
# titles use the phrase, it names its nodes only if most (TITLE_MIN_SHARE) of those items sit
# under them ("cap" is in 53 Beauty titles, 6 % of them under Caps, Foils & Wraps: no filter).
TITLE_MIN_SUPPORT = 5
TITLE_MIN_SHARE = 0.5
NAME_MIN_SHARE = 0.05
NODE_MIN_ITEMS = 2  # a node of one item is no kind: a plain word naming it is no filter
PREFIX_MIN_ITEMS = 5  # a smaller brand's first word alone needs brand context (or capitals: "SHANY")

_POSSESSIVE = re.compile(r"['’]s$")
_BREAK_RE = re.compile(r"[,;:!?()/。,;:!?、]")
_DATA = "vocabulary"  # data/vocabulary.yaml


def generic_category_words() -> frozenset[str]:
    """Single words that name a body part, audience or form: they refine, never constrain alone."""
    return lexicon.words(_DATA, "generic_category_words")


def _ancestors(path: tuple[str, ...]) -> tuple[str, ...]:
    """Names that, said before a node's, name it: "face moisturizer", "body oils" (Body > Moisturizers > Oils)."""
    return path[-3:-1] if len(path) > 3 else path[-2:-1]


def common_words() -> frozenset[str]:
    """Ordinary words: never fuzzy-matched, and brands equal to one need the brand's capitals."""
    return lexicon.words(_DATA, "common_words")


def brand_prefix_stop() -> frozenset[str]:
    """First words of many unrelated brands ("Beauty ...", "Dr. ..."): never a brand by themselves."""
    return lexicon.words(_DATA, "brand_prefix_stop")


@cache
def _generic_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in generic_category_words())


@dataclass
class CatalogVocabulary:
    """Brands and category nodes of one catalog, indexed for fast utterance matching."""

    brands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # norm -> spellings
    brand_counts: dict[str, int] = field(default_factory=dict)  # norm -> items
    nodes: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # display -> paths
    _brand_display: dict[str, str] = field(default_factory=dict)
    _brand_case: dict[str, frozenset[str]] = field(default_factory=dict)
    # stemmed form -> (node names, the paths this form stands for)
    _cat_index: dict[str, CatEntry] = field(default_factory=dict)
    _fuzzy_brand: dict[str, list[str]] = field(default_factory=dict)  # first char -> norms
    _fuzzy_cat: dict[str, list[str]] = field(default_factory=dict)
    _zh_aliases: list[tuple[str, str, Any]] = field(default_factory=list)
    _descriptive: frozenset[str] = frozenset()  # brand words mostly used as plain words in titles
    _known_words: frozenset[str] = frozenset()
    has_prices: bool = True
    # Whether item titles are ever written in Chinese: if not, untranslated Chinese words in a
    # query match nothing lexically and only add noise to the English embedder's query vector.
    has_cjk_titles: bool = True
    facets: CatalogFacets = field(default_factory=CatalogFacets)  # what clarifying questions may ask
    _brand_prefix: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "loreal" -> brand keys
    _title_items: dict[str, frozenset[int]] = field(default_factory=dict)  # title stem -> item numbers
    _item_paths: list[tuple[str, ...]] = field(default_factory=list)  # item number -> category path
    _node_items: Counter[tuple[str, ...]] = field(default_factory=Counter)  # path -> items under it
    _alias_forms: frozenset[str] = frozenset()  # stemmed English aliases (curated: they name nodes)
    _share_cache: dict[tuple[str, tuple[tuple[str, ...], ...]], float | None] = field(default_factory=dict)
    _max_ngram: int = MAX_NGRAM  # longest form, in tokens

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogVocabulary:
        counts = Counter(it.brand for it in catalog if it.brand and it.brand.strip())
        paths = catalog.category_paths()
        roots = {p[0] for p in paths}
        # A single root ("Beauty") covers the whole catalog: naming it constrains nothing.
        paths = [p for p in paths if not (len(roots) == 1 and len(p) == 1)]
        items = [it for it in catalog]
        vocab = cls.build(
            counts,
            paths,
            titles=(it.title for it in items),
            item_paths=((it.title, tuple(it.categories)) for it in items),
        )
        vocab.has_prices = catalog.has_prices
        vocab.has_cjk_titles = any(HAN_RE.search(it.title) for it in items)
        vocab.facets = CatalogFacets.from_catalog(catalog)
        return vocab

    @classmethod
    def build(
        cls,
        brand_counts: dict[str, int] | Iterable[str],
        category_paths: Iterable[Iterable[str]],
        titles: Iterable[str] = (),
        item_paths: Iterable[tuple[str, tuple[str, ...]]] = (),
    ) -> CatalogVocabulary:
        """Build from brand names (optionally with item counts), category paths and titles: these
        spot brand words that are mostly plain words ("shea", "curly"); ``item_paths`` (title,
        category path) per item are the evidence of ``category_confident`` and ``stocked``."""
        if not isinstance(brand_counts, dict):
            brand_counts = Counter(brand_counts)
        vocab = cls()
        vocab._index_brands(brand_counts, titles)
        vocab._index_categories(category_paths)
        vocab._index_titles(item_paths)
        vocab._index_aliases()
        longest = max(
            (len(k.split()) for k in (*vocab._cat_index, *vocab.brands, *vocab._brand_prefix)), default=1
        )
        vocab._max_ngram = max(1, min(MAX_NGRAM, longest))
        vocab._known_words = common_words().union(*(f.split() for f in vocab._cat_index))
        return vocab

    def _index_brands(self, brand_counts: dict[str, int], titles: Iterable[str]) -> None:
        spell: dict[str, list[str]] = defaultdict(list)
        for b, n in brand_counts.items():
            key = normalize(b)
            if not key:
                continue
            spell[key].append(b)
            self.brand_counts[key] = self.brand_counts.get(key, 0) + int(n)
        for key, names in spell.items():
            names.sort(key=lambda s: -brand_counts[s])  # most common spelling first
            self.brands[key] = tuple(names)
            self._brand_display[key] = names[0]
            self._brand_case[key] = frozenset(names)
            self._fuzzy_brand.setdefault(key[0], []).append(key)

        df: Counter[str] = Counter()
        for title in titles:
            df.update({stem(w) for w in normalize(title).split()})
        by_token: Counter[str] = Counter()
        for key, n in self.brand_counts.items():
            for t in set(key.split()):
                by_token[t] += n
        # A brand word that titles use, in any form, far more often than the brand has items is a
        # plain word ("gray roots" is no "Roots Of Nature": Beauty titles say "root" 51 times).
        self._descriptive = frozenset(t for t in by_token if df[stem(t)] >= max(5, 3 * by_token[t]))
        prefixes: dict[str, set[str]] = defaultdict(set)
        for key in self.brands:
            toks = key.split()
            for k in range(1, len(toks)):
                pre = " ".join(toks[:k])
                plain = all(t in common_words() or t in brand_prefix_stop() for t in toks[:k])
                if len(pre) >= 4 and not plain:
                    prefixes[pre].add(key)
        # A prefix that already starts with a whole brand ("opi nail" of "OPI NAIL COLOR") is that
        # brand followed by ordinary words, never the longer line.
        self._brand_prefix = {
            p: tuple(sorted(ks, key=len))
            for p, ks in prefixes.items()
            if p not in self.brands and not self._starts_with_brand(p)
        }

    def _starts_with_brand(self, phrase: str) -> bool:
        toks = phrase.split()
        return any(" ".join(toks[:k]) in self.brands for k in range(1, len(toks)))

    def _index_titles(self, item_paths: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        index: dict[str, set[int]] = defaultdict(set)
        for i, (title, path) in enumerate(item_paths):
            self._item_paths.append(tuple(path))
            self._node_items.update(tuple(path[:k]) for k in range(1, len(path) + 1))
            for t in {stem(w) for w in normalize(title or "").split()}:
                index[t].add(i)
        self._title_items = {t: frozenset(ix) for t, ix in index.items()}

    def _spelled_right(self, key: str) -> bool:
        """No typo to correct: an ordinary word, or words that several of the catalog's own titles
        use ("pampering" is no misspelt "Pamprin": Dove's "Purely Pampering" says it)."""
        return key in self._known_words or key in lexicon.english_words() or all(
            len(self._title_items.get(stem(w), ())) >= TITLE_WORD_MIN for w in key.split()
        )

    def title_share(self, surface: str, paths: tuple[tuple[str, ...], ...]) -> float | None:
        """Share of the items whose titles use ``surface`` (all its words) that sit under ``paths``.

        None when fewer than ``TITLE_MIN_SUPPORT`` titles use it: the titles say nothing then.
        """
        form = stem_phrase(normalize(surface))
        key = (form, paths)
        if key in self._share_cache:
            return self._share_cache[key]
        sets = [self._title_items.get(t, frozenset()) for t in form.split()]
        hits = frozenset.intersection(*sets) if sets else frozenset()
        share = None
        if len(hits) >= TITLE_MIN_SUPPORT:
            under = sum(1 for i in hits if any(self._item_paths[i][: len(p)] == p for p in paths))
            share = under / len(hits)
        self._share_cache[key] = share
        return share

    def category_confident(self, match: CategoryMatch) -> bool:
        """Does this phrase name its nodes, or is it a word that many other categories' titles use?

        A node's full name (or parent + name, or an alias) names it, unless it is a generic word
        ("washes") or, in a catalog of products, a one-word name under which hardly any title
        using it sits (``NAME_MIN_SHARE``); a part of a name ("cap" of "Caps, Foils & Wraps") or a
        generic word names it only when the titles that use it are mostly that node's items; a
        typo repair never does."""
        if match.how == "fuzzy":
            return False
        form = stem_phrase(normalize(match.surface))
        generic = " " not in form and form in _generic_stems()
        share = self.title_share(match.surface, match.paths)
        if self._names_whole(match) and not generic:
            # Even a node's own one-word name is no filter when the titles that use it almost all
            # sit elsewhere: "my desk" is about desk organisers, not the Desks node's few desks (a
            # longer name, "brush bags", says what it names whatever the titles call it). Titles
            # of works without makers are names, not descriptions: "Star Wars" says nothing of War.
            return " " in form or not self.brands or share is None or share >= NAME_MIN_SHARE
        return share is None or share >= TITLE_MIN_SHARE

    def _names_whole(self, match: CategoryMatch) -> bool:  # a full name (or parent + name), an alias, a job
        form = stem_phrase(normalize(match.surface))
        full = {stem_phrase(normalize(p[-1])) for p in match.paths}
        full |= {stem_phrase(normalize(f"{a} {p[-1]}")) for p in match.paths for a in _ancestors(p)}
        return match.how in ("alias", "job") or form in full or form in self._alias_forms

    def stocked(self, match: CategoryMatch) -> bool:
        """Does a full name, or a part of one over nodes of >1 item, name the nodes? ("cables": no)"""
        return self._names_whole(match) or sum(self._node_items[p] for p in match.paths) >= NODE_MIN_ITEMS

    def brand_needs_context(self, brand: BrandMatch) -> bool:
        """A brand whose name is a plain word ("Dove", "Shea Moisture") filters only with context."""
        prefix = self._brand_prefix.get(normalize(brand.surface), ()) if brand.how == "token" else ()
        small = bool(prefix) and sum(self.brand_counts.get(k, 0) for k in prefix) < PREFIX_MIN_ITEMS
        if brand.how == "fuzzy" or (small and not brand.surface.isupper()):  # "funny": no Funny Girl Designs
            return True
        key = normalize(brand.brand)
        return self._plain(key, english=" " not in key)  # "perry ellis", "tom ford": still names

    def _plain(self, key: str, english: bool) -> bool:
        """Common, category or title words; ``english``: also everyday English ("simple", "living")."""
        toks = key.split()
        if len(key) <= 2 or all(t in self._known_words or t in self._descriptive for t in toks):
            return True
        return english and all(t in lexicon.english_words() for t in toks)

    def _index_categories(self, category_paths: Iterable[Iterable[str]]) -> None:
        node_paths: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        forms: dict[str, dict[str, list[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(list))
        for path in filter(None, map(tuple, category_paths)):
            name = path[-1]
            node_paths[name].append(path)
            full = normalize(name)
            parts = [normalize(p) for p in re.split(r"\s*(?:&|,|/|\band\b)\s*", name) if p.strip()]
            variants = {v for v in (full, *parts) if v}
            ancestors = [normalize(a) for a in _ancestors(path)]
            for v in variants:
                forms[stem_phrase(v)][name].append(path)
                for parent in ancestors:
                    forms[stem_phrase(f"{parent} {v}")][name].append(path)
        self.nodes = {n: tuple(dict.fromkeys(ps)) for n, ps in node_paths.items()}
        for form, by_name in forms.items():
            self._cat_index[form] = CatEntry(
                tuple(by_name), drop_descendants(p for ps in by_name.values() for p in ps)
            )
            self._fuzzy_cat.setdefault(form[0], []).append(form)

    def _index_aliases(self) -> None:
        """English aliases join the form index; Chinese ones are matched by substring, longest first."""
        forms: set[str] = set()
        for alias, targets in lexicon.aliases(_DATA, "category_aliases_en").items():
            entry = self._resolve_category(targets)
            form = stem_phrase(normalize(alias))
            if entry and (
                form not in self._cat_index or self._alias_wins(alias, entry, self._cat_index[form])
            ):
                self._cat_index[form] = entry
                forms.add(form)
        self._alias_forms = frozenset(forms)
        zh: list[tuple[str, str, Any]] = []
        for alias, targets in lexicon.aliases(_DATA, "category_aliases_zh").items():
            entry = self._resolve_category(targets)
            if entry:
                zh.append((alias, "category", entry))
        for alias, targets in lexicon.aliases(_DATA, "brand_aliases_zh").items():
            keys = tuple(normalize(t) for t in targets if normalize(t) in self.brands)
            if keys:
                zh.append((alias, "brand", keys[:1]))
        zh.sort(key=lambda t: -len(t[0]))
        self._zh_aliases = zh

    def _alias_wins(self, alias: str, entry: CatEntry, held: CatEntry) -> bool:
        """An alias takes a form that a node name holds when titles say it means the alias's target
        ("polish": Nail Polish, not Exfoliators > Polishes)."""
        mine, theirs = self.title_share(alias, entry.paths), self.title_share(alias, held.paths)
        return mine is not None and theirs is not None and mine > theirs

    def _resolve_category(self, targets: Iterable[str]) -> CatEntry | None:
        for t in targets:
            # The form index first: "Moisturizers" also answers for "Creams & Moisturizers".
            hit = self._cat_index.get(stem_phrase(normalize(t)))
            if hit:
                return hit
            if t in self.nodes:
                return CatEntry((t,), drop_descendants(self.nodes[t]))
        return None

    # ---- public lookups ----------------------------------------------------------------------
    @property
    def brand_names(self) -> list[str]:
        return sorted(self._brand_display.values())

    @property
    def category_names(self) -> list[str]:
        return sorted(self.nodes)

    def category_match(
        self, entry: CatEntry, surface: str = "", how: MatchHow = "exact", score: float = 100.0
    ) -> CategoryMatch:
        weak = " " not in surface.strip() and stem(normalize(surface)) in _generic_stems()
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
        if len(key.replace(" ", "")) < FUZZY_MIN_LEN or self._spelled_right(key):
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
        if len(key.replace(" ", "")) < FUZZY_MIN_LEN or self._spelled_right(key):
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
            if used[i] or tok.norm.isdigit() or self._spelled_right(tok.norm):
                continue
            if len(tok.norm) < FUZZY_MIN_LEN:
                continue
            m = self._fuzzy_best(tok)
            if m is not None:
                found.append(Mention(tok.start, tok.end, m))
        found.sort(key=lambda m: m.start)
        return found

    def _fuzzy_best(self, tok: Token) -> BrandMatch | CategoryMatch | Ambiguous | None:
        """Typo repair for one leftover token: the better of brand and category (category on ties)."""
        brand = self._fuzzy_brand_lookup(tok.norm, tok.raw)
        cat = self.match_category(tok.raw)
        if isinstance(cat, CategoryMatch) and cat.weak:
            cat = None
        b_score = match_score(brand)
        c_score = match_score(cat)
        if brand is None and cat is None:
            return None
        return cat if cat is not None and c_score >= b_score else brand

    def _longest_at(self, text: str, tokens: list[Token], i: int, breaks: list[bool]):
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
            if key not in self.brands and _POSSESSIVE.search(surface):  # "Dove's body wash"
                key, surface = key[:-1].rstrip(), _POSSESSIVE.sub("", surface)
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
        if not self._plain(key, english=prefix or " " not in key):
            return True
        if prefix:
            return surface[:1].isupper() and len(key) > 2
        return surface in self._brand_case[key] or surface.rstrip(".") in self._brand_case[key]

"""Check an LLM reply against the catalog: named products, ids, prices and brands must be grounded.

A small model paraphrases titles ("the Olay Regenerist cream"), so titles are
matched as runs of title tokens weighted by rarity, not by exact strings. The
reply may only name the candidates it was shown; naming any other catalog
product, an id that is not a candidate, a price or brand that the candidates
and the shopper's own filters do not support, or a product-like name that
matches nothing (a quoted or capitalised phrase built from product words) is a
violation. The caller regenerates once and then falls back to a template.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from assistant.reply import GroundingViolation
from retrieval.data.schema import Catalog, Item
from retrieval.text import MINOR_WORDS, UNIT_WORDS, has_cjk, split_sentences, tokenize
from retrieval.text import STOPWORDS as TEXT_STOPWORDS

# Words that never identify a product, in a title or a reply.
STOPWORDS = TEXT_STOPWORDS | UNIT_WORDS | MINOR_WORDS
# Capitalised words that open sentences or address the shopper; never part of a product name.
_NON_PRODUCT_WORDS = frozenset(
    """here there this these those it its i you your we our they try consider check look great good
    best nice perfect also both if for with and or but the a an my note however overall
    yes no sure ok okay thanks thank hello hi""".split()  # noqa: SIM905 - readable word list
)
_PRICE_RE = re.compile(
    r"(?:US\$|\$|USD\s?|¥|￥|RMB\s?)\s?(\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
    r"|(\d+(?:\.\d{1,2})?)\s?(?:dollars?|usd|bucks|元|美元|块)",
    re.IGNORECASE,
)
_QUOTED_RE = re.compile(
    r"\"([^\"\n]{3,80})\"|“([^”\n]{3,80})”|\*\*([^*\n]{3,80})\*\*|《([^》\n]{2,80})》|「([^」\n]{2,80})」"
)
_ID_RE = re.compile(
    r"\[\s*(?:id\s*[:=]\s*)?([A-Za-z0-9][\w-]{0,40})\s*\]|\bid\s*[:=#]\s*([A-Za-z0-9][\w-]{0,40})", re.I
)
_TITLE_YEAR_RE = re.compile(r"\((1[89]\d\d|20\d\d)\)")
_YEAR_TOKEN_RE = re.compile(r"1[89]\d\d|20\d\d")
_CAP_WORD_RE = re.compile(r"[A-Z][\w'&+-]*|\d+(?:\.\d+)?[A-Za-z]*")


def _title_key(title: str) -> str:
    """Title without a trailing parenthetical ("Heat (1995)" -> "Heat"), as people say it."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", title).strip() or title


@dataclass(frozen=True)
class TitleMention:
    """A span of the reply that names catalog item(s)."""

    start: int  # token positions in the normalized text
    end: int
    item_ids: tuple[str, ...]
    text: str
    strength: float


class CatalogMatcher:
    """Fuzzy title and brand lookup over a whole catalog; built once per catalog (fast to query)."""

    MAX_POSTING = 400  # tokens in more titles than this are too common to seed a match

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.ids = catalog.ids
        self.title_tokens: list[frozenset[str]] = []
        self.key_tokens: list[tuple[str, ...]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        df: Counter[str] = Counter()
        for row, item in enumerate(catalog):
            toks = frozenset(t for t in tokenize(item.title) if t not in STOPWORDS)
            self.title_tokens.append(toks)
            self.key_tokens.append(tuple(tokenize(_title_key(item.title))))
            df.update(toks)
            for t in toks:
                postings[t].append(row)
        n = max(len(catalog), 1)
        self.idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self.postings = {t: rows for t, rows in postings.items() if len(rows) <= self.MAX_POSTING}
        # Words shoppers use for product types ("cream", "shampoo"): frequent in titles.
        self.product_words = frozenset(t for t, c in df.items() if c >= 3 and not t.isdigit() and len(t) > 2)
        self.brands: dict[tuple[str, ...], str] = {}
        for brand in catalog.brands():
            key = tuple(tokenize(brand))
            if key and (len(key) > 1 or len(key[0]) > 2):
                self.brands[key] = brand
        self.max_brand_len = max((len(k) for k in self.brands), default=0)
        self.category_words = frozenset(
            t for path in catalog.category_paths() for c in path for t in tokenize(c)
        )
        # Catalogs whose titles carry a year ("Heat (1995)", editions of books): there a capitalised
        # name followed by a year is a product claim even when its words are rare in the catalog.
        with_year = sum(bool(_TITLE_YEAR_RE.search(item.title)) for item in catalog)
        self.titles_have_years = with_year >= 0.5 * n

    def idf_of(self, token: str) -> float:
        return self.idf.get(token, 0.0)

    # --- titles -----------------------------------------------------------------
    def find_titles(self, tokens: Sequence[str]) -> list[TitleMention]:
        """Maximal token runs that name catalog items strongly enough to count as a mention."""
        best: dict[tuple[int, int], tuple[float, set[int]]] = {}
        for i, tok in enumerate(tokens):
            for row in self.postings.get(tok, ()):
                ttoks = self.title_tokens[row]
                j = i
                while j < len(tokens) and (tokens[j] in ttoks or tokens[j] in STOPWORDS):
                    j += 1
                while j > i and tokens[j - 1] not in ttoks:  # do not end on a stopword
                    j -= 1
                run = [t for t in tokens[i:j] if t in ttoks]
                strength = self._strength(row, run, tokens[i:j])
                if strength <= 0:
                    continue
                cur = best.get((i, j))
                if cur is None or strength > cur[0] + 1e-9:
                    best[(i, j)] = (strength, {row})
                elif abs(strength - cur[0]) <= 1e-9:
                    cur[1].add(row)
        # Keep maximal spans only (a span inside a longer matched span is the same mention).
        spans = sorted(best, key=lambda s: (s[0], -(s[1] - s[0])))
        out: list[TitleMention] = []
        for i, j in spans:
            if any(o.start <= i and j <= o.end for o in out):
                continue
            strength, rows = best[(i, j)]
            ids = tuple(self.ids[r] for r in sorted(rows))
            out.append(TitleMention(i, j, ids, " ".join(tokens[i:j]), strength))
        return out

    def _strength(self, row: int, run: list[str], span: Sequence[str]) -> float:
        ttoks = self.title_tokens[row]
        distinct = set(run)
        if not distinct:
            return 0.0
        key = self.key_tokens[row]
        exact_key = tuple(span) == key
        coverage = len(distinct) / max(len(ttoks), 1)
        weight = sum(self.idf_of(t) for t in distinct)
        total = sum(self.idf_of(t) for t in ttoks) or 1.0
        if exact_key and (len(key) >= 2 or len(key[0]) >= 6):
            return 1.0 + weight
        if len(distinct) >= 3 and weight / total >= 0.5:
            return weight / total
        if len(distinct) >= 2 and coverage >= 0.8 and weight >= 4.0:
            return coverage
        return 0.0

    def items_containing(self, tokens: Iterable[str]) -> list[str]:
        toks = set(tokens)
        return [self.ids[r] for r, tt in enumerate(self.title_tokens) if toks <= tt]

    # --- brands -----------------------------------------------------------------
    def find_brands(self, text: str) -> list[tuple[str, int, int]]:
        """(catalog brand, token start, token end) for brands written capitalised in ``text``."""
        tokens = tokenize(text)
        raw, cjk = tokenize(text, fold=False), has_cjk(text)
        found = []
        for i in range(len(tokens)):
            for n in range(min(self.max_brand_len, len(tokens) - i), 0, -1):
                brand = self.brands.get(tuple(tokens[i : i + n]))
                if brand is None:
                    continue
                # A lower-case common word ("dove", "nature") is not a brand mention; Chinese text
                # has no case, so there any spelling counts.
                if not cjk and not raw[i][:1].isupper() and n == 1:
                    continue
                found.append((brand, i, i + n))
                break
        return found


@dataclass
class GroundingContext:
    """What the reply is allowed to mention this turn."""

    candidates: Sequence[Item]
    query: str = ""
    # Prices and brands the shopper set or the turn computed (budget, bundle total, "not Olay").
    allowed_prices: Sequence[float] = ()
    allowed_brands: Sequence[str] = ()
    extra_titles: Sequence[str] = field(default_factory=tuple)


class GroundingChecker:
    """Finds unsupported product names, ids, prices and brands in a reply."""

    def __init__(self, catalog: Catalog, matcher: CatalogMatcher | None = None):
        self.catalog = catalog
        self.matcher = matcher or CatalogMatcher(catalog)

    def check(self, text: str, ctx: GroundingContext) -> list[GroundingViolation]:
        violations: list[GroundingViolation] = []
        cand_ids = {it.item_id for it in ctx.candidates}
        cand_tokens = [
            frozenset(tokenize(it.title)) | frozenset(tokenize(it.brand or "")) for it in ctx.candidates
        ]
        query_tokens = tokenize(ctx.query)
        query_grams = {
            tuple(query_tokens[i:j])
            for i in range(len(query_tokens))
            for j in range(i + 1, len(query_tokens) + 1)
        }
        for sentence in split_sentences(text):
            violations.extend(self._check_sentence(sentence, ctx, cand_ids, cand_tokens, query_grams))
        violations.extend(self._check_ids(text, cand_ids))
        violations.extend(self._check_quoted(text, ctx, cand_tokens))
        # One violation per offending phrase is enough to act on.
        seen, unique = set(), []
        for v in violations:
            key = (v.kind, v.text.casefold())
            if key not in seen:
                seen.add(key)
                unique.append(v)
        return unique

    # --- per sentence ------------------------------------------------------------
    def _check_sentence(
        self,
        sentence: str,
        ctx: GroundingContext,
        cand_ids: set[str],
        cand_tokens: list[frozenset[str]],
        query_grams: set[tuple[str, ...]],
    ) -> list[GroundingViolation]:
        out: list[GroundingViolation] = []
        tokens = tokenize(sentence)
        mentions = self.matcher.find_titles(tokens)
        named: list[Item] = []
        covered: list[tuple[int, int]] = []
        for m in mentions:
            if tuple(tokens[m.start : m.end]) in query_grams:
                continue  # the shopper's own words, not a product claim
            ok = [i for i in m.item_ids if i in cand_ids]
            if not ok:
                # The run may also fit a candidate whose title merely ties with others.
                run = [t for t in tokens[m.start : m.end] if t not in STOPWORDS]
                ok = [
                    it.item_id for it, ct in zip(ctx.candidates, cand_tokens, strict=True) if set(run) <= ct
                ]
            if ok:
                named.extend(self.catalog[i] for i in ok[:1])
                covered.append((m.start, m.end))
            else:
                title = self.catalog[m.item_ids[0]].title
                out.append(
                    GroundingViolation(
                        "non_candidate_product",
                        m.text,
                        f"names catalog item {m.item_ids[0]!r} ({title}) not shown",
                    )
                )
                covered.append((m.start, m.end))
        # Weak mentions ("the CeraVe night cream") still tie a price to a candidate.
        toks = set(tokens)
        for it, ct in zip(ctx.candidates, cand_tokens, strict=True):
            brand = set(tokenize(it.brand or ""))
            hits = {t for t in toks & ct if t not in STOPWORDS}
            if it not in named and ((brand and brand <= toks) or len(hits) >= 2):
                named.append(it)
        out.extend(self._check_prices(sentence, ctx, named))
        out.extend(self._check_brands(sentence, ctx, covered))
        if not has_cjk(sentence):
            out.extend(self._check_capitalised(sentence, ctx, cand_tokens, query_grams))
        return out

    def _check_prices(
        self, sentence: str, ctx: GroundingContext, named: list[Item]
    ) -> list[GroundingViolation]:
        out = []
        stated = []
        for m in _PRICE_RE.finditer(sentence):
            raw = (m.group(1) or m.group(2)).replace(",", "")
            stated.append((m.group(0), float(raw)))
        if not stated:
            return out
        allowed = [float(p) for p in ctx.allowed_prices if p is not None]
        pool = [it.price for it in (named or ctx.candidates) if it.price is not None]
        for text, value in stated:
            if any(_price_equal(value, p) for p in allowed):
                continue
            if not any(_price_equal(value, p) for p in pool):
                who = f" for {named[0].title!r}" if len(named) == 1 else ""
                out.append(
                    GroundingViolation("price_mismatch", text, f"price {value:g}{who} is not in the catalog")
                )
        return out

    def _check_brands(
        self, sentence: str, ctx: GroundingContext, covered: list[tuple[int, int]]
    ) -> list[GroundingViolation]:
        allowed = {(it.brand or "").casefold() for it in ctx.candidates}
        allowed |= {b.casefold() for b in ctx.allowed_brands}
        query = ctx.query.casefold()
        out = []
        for brand, i, j in self.matcher.find_brands(sentence):
            if brand.casefold() in allowed or brand.casefold() in query:
                continue
            if any(s <= i and j <= e for s, e in covered):
                continue  # part of a title already judged
            out.append(GroundingViolation("brand_mismatch", brand, "brand of no shown product"))
        return out

    def _check_capitalised(
        self,
        sentence: str,
        ctx: GroundingContext,
        cand_tokens: list[frozenset[str]],
        query_grams: set[tuple[str, ...]],
    ) -> list[GroundingViolation]:
        """Made-up names: runs of capitalised words built from product vocabulary, matching nothing."""
        out = []
        runs: list[list[str]] = []
        cur: list[str] = []
        for w in re.finditer(r"\d+(?:\.\d+)?[A-Za-z]*|[\w'&+-]+", sentence):
            if _CAP_WORD_RE.fullmatch(w.group(0)):
                cur.append(w.group(0))
                continue
            if cur:
                runs.append(cur)
            cur = []
        if cur:
            runs.append(cur)
        for run in runs:
            while run and run[0].casefold() in _NON_PRODUCT_WORDS:
                run = run[1:]
            toks = [t for w in run for t in tokenize(w)]
            content = [t for t in toks if t not in STOPWORDS]
            if len(content) < 2 or tuple(toks) in query_grams:
                continue
            titled = self.matcher.titles_have_years and any(_YEAR_TOKEN_RE.fullmatch(t) for t in content)
            if not titled and not any(t in self.matcher.product_words for t in content):
                continue
            if all(t in self.matcher.category_words or t in _NON_PRODUCT_WORDS for t in content):
                continue
            if tuple(toks) in self.matcher.brands:
                continue
            if self._fits_candidate(content, cand_tokens, ctx.candidates) or self._fits_catalog(content):
                continue
            out.append(
                GroundingViolation("unknown_product", " ".join(run), "product-like name not in the catalog")
            )
        return out

    def _check_quoted(
        self, text: str, ctx: GroundingContext, cand_tokens: list[frozenset[str]]
    ) -> list[GroundingViolation]:
        out = []
        for m in _QUOTED_RE.finditer(text):
            phrase = next(g for g in m.groups() if g)
            content = [t for t in tokenize(phrase) if t not in STOPWORDS]
            if len(content) < 1 or self._fits_candidate(content, cand_tokens, ctx.candidates):
                continue
            if any(tokenize(phrase) == tokenize(t) for t in ctx.extra_titles):
                continue
            ids = self.matcher.items_containing(content) if len(content) >= 2 else []
            if ids:
                continue  # a real catalog product; the per-sentence title check judges it
            if not any(t in self.matcher.product_words for t in content):
                continue  # quoted speech, not a product
            out.append(
                GroundingViolation("unknown_product", phrase, "quoted product name not in the catalog")
            )
        return out

    def _check_ids(self, text: str, cand_ids: set[str]) -> list[GroundingViolation]:
        out = []
        for m in _ID_RE.finditer(text):
            ident = m.group(1) or m.group(2)
            if ident in cand_ids:
                continue
            if m.group(1) and ident.isdigit() and len(ident) <= 2 and ident not in self.catalog:
                continue  # "[1]" is a list position, not an id
            detail = "id of a catalog item not shown" if ident in self.catalog else "id not in the catalog"
            out.append(GroundingViolation("unknown_id", ident, detail))
        return out

    def _fits_candidate(
        self, content: list[str], cand_tokens: list[frozenset[str]], candidates: Sequence[Item]
    ) -> bool:
        """Most words come from one candidate's title, and any brand named is that candidate's brand."""
        need = max(1, math.ceil(0.6 * len(content)))
        brands = {
            self.matcher.brands[tuple(content[i : i + n])].casefold()
            for i in range(len(content))
            for n in range(1, self.matcher.max_brand_len + 1)
            if tuple(content[i : i + n]) in self.matcher.brands
        }
        for it, ct in zip(candidates, cand_tokens, strict=True):
            if sum(t in ct for t in content) >= need and brands <= {(it.brand or "").casefold()}:
                return True
        return False

    def _fits_catalog(self, content: list[str]) -> bool:
        """Every content word is in one real title: the non-candidate title check handles it."""
        rare = [t for t in content if t in self.matcher.postings]
        if not rare:
            return False
        rows = set(self.matcher.postings[rare[0]])
        for t in rare[1:]:
            rows &= set(self.matcher.postings[t])
        return any(set(content) <= self.matcher.title_tokens[r] for r in rows)


def _price_equal(stated: float, actual: float) -> bool:
    if abs(stated - actual) <= 0.011:
        return True
    # "$13" or "about $20" for 12.99 / 19.95: a whole-number price rounds the catalog one.
    return float(stated).is_integer() and abs(stated - actual) < 0.5 + 1e-9


def describe(violations: Sequence[GroundingViolation]) -> str:
    """One line for the repair prompt and logs."""
    return "; ".join(f"{v.kind.replace('_', ' ')}: {v.text!r}" for v in violations) or "none"

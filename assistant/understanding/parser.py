"""Rule-based parsing of one shopper utterance (English and Chinese) into typed constraint edits.

Rules come first because they are instant, deterministic and testable; an optional LLM callable fills
only what the rules flag as unresolved (``ConstraintUpdate`` JSON, validated: ``llm_fallback``).

This module sequences the extractors; each concern has its own module: ``prices`` (price
grammar), ``references`` (the last shown list), ``years``, ``cues`` (control phrases, negation,
query filler), ``categories``, ``vocabulary`` (brands and categories). Word lists are data.

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
* a bare amount with a currency ("a $20 lipstick", "200元的口红") is a ceiling; "about" only when said.
* A number followed by a non-money unit (stars, ml, oz, %, pack, years, SPF...), preceded by
  ``#``/``SPF``/``rated`` or glued to letters (``350buy``, ``SPF30``; ``20ish`` is) is no price.
* relative price: ``cheap(er)|less expensive|affordable|budget-friendly|too expensive``, ZH
  ``便宜(一)?点|实惠|平价|太贵`` -> "lower"; ``more expensive|pricier|high-end|premium|luxury|too
  cheap``, ZH ``贵一点|更贵|高端|高档`` -> "higher". The dialogue state resolves them against the
  prices it last showed (see ``DialogueState.apply``).
* currency is recorded, never converted: a price in another currency than the catalog's keeps its
  number and adds an ``Issue`` so the reply can say which currency the catalog uses.
* absurd prices (negative, zero ceilings, non-finite such as ``1e309``, above 1e9) yield an
  ``Issue`` with a clarifying message and no price constraint; never an exception.
* negation: ``not|no|never|without|except (for)|excluding|besides|other than|anything but|but
  not|avoid|instead of|rather than|don't want|don't like|no more|nothing from|nothing by``, ZH ``不要|不想要|除了|别|不喜欢
  |排除|不含|不考虑|去掉`` before a brand or category (up to four filler words between, e.g. "not
  anything from OPI") and every further mention joined by ``, / or and nor 和 或 、``.
* inclusion: ``only|just|exclusively|solely|nothing but|stick to``, ZH ``只要|只看|只买|仅``;
  mentioned brands are any-of ("OPI or Essie"). ``also|too|as well|or ...``, ZH ``也|还有|或者``
  add to earlier brands instead of replacing them.
* ``something else|none of these|a different one``/``换一个`` exclude what was shown, ``more like the
  second one``/``类似`` also marks ``similar``, ``a different brand``/``换个牌子`` ``other_brand``.
* references to the last shown list: ``the second (one)``, ``#3``, ``the first two``, ``the last
  one``, ``both``, ``that one``, ``the cheapest one``; ZH ``第二个``, ``前两个``, ``这款``,
  ``最便宜的那个``. A like/dislike cue next to a reference ("I like the first one", "不喜欢第二个",
  "not the first one") is feedback on that item.
* brands and categories: see ``assistant.understanding.vocabulary``. Words are evidence; a mention
  becomes a hard filter only on confident evidence (``_is_filter``): a brand whose name is a plain word
  ("Dove", "Shea Moisture") needs brand context ("by|from Dove", "Dove brand", "Dove's", "only Dove", or
  typed with its capitals right before a product type: "Dove soap"); a category phrase must name its
  nodes by the catalog's titles (``CatalogVocabulary.category_confident``); a typo repair (fuzzy) never
  filters. An explicit exclusion ("not OPI") of a brand is always a filter. Everything else is a soft
  preference (``preferences``), kept in ``query`` (a typo'd brand or category also adds its catalog
  spelling there).
* ``query`` is what remains for retrieval after removing prices, references, negated mentions and
  control phrases (and filler such as "show me", "please", "我想要"). Positive brand and category
  words stay in it: they help the dense and BM25 retrievers while the filter enforces them.

Input is NFKC-normalised (full-width digits work), control and format characters become spaces,
and only the first ``MAX_PARSE_CHARS`` characters are parsed (an info ``Issue`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.understanding.categories import exact_category_names, modified_elsewhere, refine_categories
from assistant.understanding.crosslingual import english_for, english_words
from assistant.understanding.cues import (
    NegatedWord,
    assign_polarity,
    build_query,
    claim_negations,
    control_phrases,
    cue,
    negated_words,
)
from assistant.understanding.everyday import everyday_categories
from assistant.understanding.jobs import job_tools
from assistant.understanding.leanings import Era, extract_era, extract_niche
from assistant.understanding.llm_fallback import llm_fallback
from assistant.understanding.matches import (
    Ambiguous,
    BrandMatch,
    CategoryMatch,
    Mention,
    drop_descendants,
    path_related,
)
from assistant.understanding.mentions import ItemMention, TitleIndex, find_items
from assistant.understanding.prices import check_currency, combine_prices, extract_prices, relative_price
from assistant.understanding.references import extract_references, feedback
from assistant.understanding.spans import clean, mask, overlaps, take
from assistant.understanding.tokens import normalize, stem_phrase
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.utterance import (
    AROUND_BAND,
    MAX_PARSE_CHARS,
    MAX_SANE_PRICE,
    Issue,
    LLMFallback,
    ParsedUtterance,
    PriceSpec,
    Reference,
)
from assistant.understanding.vocabulary import CatalogVocabulary, generic_category_words
from assistant.understanding.works import titled_works
from assistant.understanding.years import extract_years
from retrieval.hybrid import GENERIC_WORDS
from retrieval.text import HAN_RE, STOPWORDS, detect_language, words

__all__ = [
    "AROUND_BAND",
    "MAX_PARSE_CHARS",
    "MAX_SANE_PRICE",
    "ConstraintUpdate",
    "Issue",
    "LLMFallback",
    "ParsedUtterance",
    "PriceSpec",
    "Reference",
    "parse",
]


def parse(
    utterance: str,
    vocab: CatalogVocabulary,
    currency: str | None = "USD",
    *,
    llm: LLMFallback | None = None,
    titles: TitleIndex | None = None,
    shown: Sequence[Sequence[str]] = (),
) -> ParsedUtterance:
    """Parse one utterance. Never raises on any text; ``currency`` is the catalog's (ISO code).

    ``titles`` (optional) finds catalog items named in the text (``mentions.find_items``; ``shown``:
    the lists of item ids this session showed, latest first, for "the Garnier one").

    ``llm`` (optional) is called only when the rules flag something unresolved, as
    ``llm(prompt, ConstraintUpdate.model_json_schema())``; it returns a dict or a JSON string."""
    try:
        parsed = _parse_rules(utterance, vocab, currency, titles, shown)
    except Exception as exc:  # the contract is "never raises": degrade to a plain query
        text = utterance if isinstance(utterance, str) else ""
        return ParsedUtterance(
            text=text[:MAX_PARSE_CHARS],
            query=" ".join(text[:300].split()),
            issues=(Issue("parse_error", f"Internal parser error: {type(exc).__name__}", "内部解析错误", "info"),),
            unresolved=("parse_error",),
        )
    if llm is not None and parsed.needs_llm:
        parsed = llm_fallback(parsed, vocab, currency, llm)
    return parsed


def _parse_rules(
    utterance: str,
    vocab: CatalogVocabulary,
    currency: str | None,
    titles: TitleIndex | None,
    shown: Sequence[Sequence[str]],
) -> ParsedUtterance:
    text, issues = clean(utterance)
    language, confident = (detected := detect_language(text)).language, detected.confident
    taken = bytearray(len(text))
    unresolved: list[str] = []

    # 1. References first ("the first two" must not become a price), then prices.
    refs = extract_references(text, taken)
    items, unknown = _items(text, taken, titles, shown, vocab)
    years = extract_years(text, taken, ranges=vocab.facets.has_years)  # before prices ("from 1995")
    era = extract_era(text, taken) if vocab.facets.has_years else None  # "Classic Ivory" is a shade
    era = era or _newer_than_catalog(vocab.facets.latest_year, items, unknown)
    niche = extract_niche(text, taken)
    price = _price(text, taken, issues, unresolved)

    # 2. Control phrases.
    controls = control_phrases(text, taken)
    relative, price_preference = relative_price(text, taken, price)

    # 3. Brand and category mentions, and the cues that govern them; a film's title is a name: "Star Wars" is no War
    masked = mask(text, taken, () if vocab.facets.has_brands else [(m.start, m.end) for m in items])
    read = _read_mentions(vocab, text, masked, taken)

    # 4. Feedback on referenced items ("I like the first one", "not the second one").
    said = feedback(text, refs, read.neg_cues)
    # 4b. Negated words, everyday words, Chinese words in the catalog's words.
    wanted_types, avoided_types, avoided_words, english = _words_read(text, taken, vocab, read)

    # 5. Currency sanity.
    cur_seen = price.currency if price else None
    price, currency_issues = check_currency(price, currency, vocab.has_prices)
    issues.extend(currency_issues)
    if relative is not None and not vocab.has_prices:
        relative = None

    # 6. Things the rules saw but could not place.
    unresolved.extend(_unplaced(text, masked, read, bool(refs)))
    return ParsedUtterance(
        text=text,
        language=language,
        language_confident=confident,
        price=price,
        relative_price=relative,
        price_preference=price_preference,
        currency=cur_seen,
        brands_in=tuple(dict.fromkeys(b for b in read.brands_in if b not in read.brands_out)),
        brands_out=tuple(dict.fromkeys(read.brands_out)),
        categories_in=read.categories_in,
        categories_out=drop_descendants(read.cats_out),
        weak_categories=read.weak_paths,
        only=read.only,
        additive=bool(cue("additive").search(masked)) and not read.only,
        exclude_shown=controls.exclude_shown,
        similar=controls.similar,
        other_brand=controls.other_brand,
        references=tuple(refs),
        feedback=said,
        query=_with_corrections(build_query(text, taken), [*read.corrections, *((-1, w) for w in english)]),
        preferences=_preferences(text, taken, read),
        soft_brands=tuple(dict.fromkeys(s for b in read.soft_brands for s in b.spellings)),
        soft_categories=drop_descendants(
            [*(p for c in read.soft_categories for p in c.paths), *wanted_types]
        ),
        avoided_categories=drop_descendants([*read.avoided, *avoided_types]),
        avoided_words=avoided_words,
        years=years,
        era=era,
        niche=niche,
        ambiguities=tuple(read.ambiguities),
        issues=tuple(issues),
        unresolved=tuple(unresolved),
        mentions=tuple(read.mentions),
        item_mentions=items,
    )


def _price(text: str, taken: bytearray, issues: list[Issue], unresolved: list[str]) -> PriceSpec | None:
    """The price said, if any; its problems go to ``issues`` and ``unresolved``."""
    specs, price_issues, price_unresolved = extract_prices(text, taken)
    issues.extend(price_issues)
    if price_unresolved and not specs:
        unresolved.append("price")
    price, combine_issues = combine_prices(specs)
    issues.extend(combine_issues)
    return price


def _words_read(
    text: str, taken: bytearray, vocab: CatalogVocabulary, read: _MentionReading
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...], tuple[str, ...], list[str]]:
    """(wanted kinds, avoided kinds, avoided words, English words for the query). Negated plain
    words leave the query (claimed in ``taken`` with their cue) and are avoided; everyday words
    among them are avoided kinds; curated Chinese words and product types said in Chinese are
    searched by their English words."""
    negated = bytearray(len(text))
    governed, works = negated_words(text, taken), vocab.facets.has_years  # titles are names, not descriptions
    for w in governed:
        take(negated, w.start, w.end)
    wanted, avoided_kinds, searched = everyday_categories(text, taken, vocab.nodes, negated, works)
    avoided_words = tuple(dict.fromkeys((*read.avoided_words, *_avoided_words(text, taken, governed))))
    claim_negations(text, taken, governed)
    english = english_words(text, taken, [(w.start, w.end) for w in governed]) if HAN_RE.search(text) else []
    english += [  # "口红" -> Lipstick; not one ruled out ("不要口红")
        m.resolved.name
        for m in (*read.mentions, *read.soft)
        if isinstance(m.resolved, CategoryMatch)
        and HAN_RE.search(m.resolved.surface)
        and not overlaps(negated, m.start, m.end)
        and not set(m.resolved.paths) & set(read.cats_out)
    ]
    english += searched  # "date night" is searched as Romance Comedy, "breaking out" as acne
    return wanted, avoided_kinds, avoided_words, english


def _avoided_words(text: str, taken: bytearray, governed: Sequence[NegatedWord]) -> tuple[str, ...]:
    """The content words under a negation that nothing else read ("not yellow"; "不要亮片的" by its
    curated English word, glitter)."""
    out: list[str] = []
    for w in governed:
        span = text[w.start : w.end].casefold()
        if any(taken[w.start : w.end]):
            continue  # read as something else (an everyday kind, a brand)
        out += (english_for if HAN_RE.search(span) else words)(span)
    return tuple(
        w for w in dict.fromkeys(out) if w not in STOPWORDS and w not in GENERIC_WORDS and not w.isdigit()
    )


def _items(
    text: str,
    taken: bytearray,
    titles: TitleIndex | None,
    shown: Sequence[Sequence[str]],
    vocab: CatalogVocabulary,
) -> tuple[tuple[ItemMention, ...], list[tuple[int, int, int]]]:
    """Catalog items named in the text, and the (start, end, year) of titled works the catalog
    lacks. An item with an opinion ("loved Toy Story", "not the Olay") is feedback, not words to
    search for or filter by: its words leave the query; a bare name ("do you have Toy Story?")
    stays searchable."""
    if titles is None:
        return (), []
    found = find_items(text, titles, shown=shown, taken=taken)
    # A titled work the catalog lacks ("Avengers: Infinity War (2018)") names no kind and no item:
    # neither its "War" nor a catalog film called "Infinity" inside it.
    unknown = [w[:3] for w in titled_works(text) if not any(m.start <= w.year_at < m.end + 3 for m in found)]
    found = tuple(
        m
        for m in found
        if not any(a <= m.start and m.end <= b for a, b, _ in unknown) and not _names_a_kind(m, vocab)
    )
    for a, b, _ in unknown:
        take(taken, a, b)
    for m in found:
        if m.polarity != "neutral" or m.seen:
            take(taken, m.start, m.end)
            if m.cue is not None:
                take(taken, *m.cue)
    return found, unknown


def _newer_than_catalog(
    latest: int | None, items: Sequence[ItemMention], unknown: Sequence[tuple[int, int, int]]
) -> Era | None:
    """ "I love The Matrix (1999)" of a catalog whose newest film is from 1998: lean to its newest
    films (only when no catalog film is named beside it: that one speaks for the shopper's taste)."""
    if latest is None or not unknown or items:
        return None
    return "newer" if min(y for *_, y in unknown) > latest else None


def _names_a_kind(m: ItemMention, vocab: CatalogVocabulary) -> bool:
    """A part of one title that is a category's name ("loves hair conditioners", in one title's
    "... Hair Conditioners And Treatments") names the kind, not that item."""
    if m.how != "partial":
        return False
    covered = bytearray(len(m.surface))
    for c in vocab.find_mentions(m.surface):
        if isinstance(c.resolved, CategoryMatch):
            take(covered, c.start, c.end)
    rest = "".join(" " if covered[i] else ch for i, ch in enumerate(m.surface)).casefold().split()
    return all(w in generic_category_words() or w in STOPWORDS for w in rest)


@dataclass
class _MentionReading:
    """Brand and category mentions sorted by polarity ("not OPI", "only Essie")."""

    mentions: list[Mention]
    neg_cues: list[tuple[int, int]]
    negated: list[bool]
    only: bool
    brands_in: list[str]
    brands_out: list[str]
    categories_in: tuple[tuple[str, ...], ...]
    cats_out: list[tuple[str, ...]]
    weak_paths: tuple[tuple[str, ...], ...]
    ambiguities: list[Ambiguous]
    soft: list[Mention]  # mentions without the evidence for a filter: soft preferences
    soft_brands: list[BrandMatch]  # the positive ones among them
    soft_categories: list[CategoryMatch]
    avoided: list[tuple[str, ...]]  # types negated with a degree: "不要太恐怖" (a penalty, no filter)
    avoided_words: list[str]  # negated mentions that are no filter: "not inkjet" (a penalty)
    corrections: list[tuple[int, str]]  # (where, catalog spelling) of typo'd (fuzzy) mentions


def _read_mentions(vocab: CatalogVocabulary, text: str, masked: str, taken: bytearray) -> _MentionReading:
    mentions = job_tools(vocab, masked, exact_category_names(vocab, masked, vocab.find_mentions(masked)))
    negated, onlyed, neg_cues = assign_polarity(text, masked, mentions, taken)

    brands_in: list[str] = []
    brands_out: list[str] = []
    cats_in: list[CategoryMatch] = []
    cats_out: list[tuple[str, ...]] = []
    weak: list[CategoryMatch] = []
    ambiguities: list[Ambiguous] = []
    soft: list[Mention] = []
    corrections: list[tuple[int, str]] = []
    filtered: list[Mention] = []
    soft_brands: list[BrandMatch] = []
    soft_categories: list[CategoryMatch] = []
    avoided: list[tuple[str, ...]] = []
    avoided_words: list[str] = []
    for i, (m, neg) in enumerate(zip(mentions, negated, strict=True)):
        r = m.resolved
        if (
            neg
            and isinstance(r, CategoryMatch)
            and _DEGREE_BEFORE.search(masked[max(0, m.start - 12) : m.start])
        ):
            take(taken, m.start, m.end)  # "nothing too scary", "不要太恐怖的": spare it, not rule it out
            avoided.extend(r.paths)
            continue
        if not _is_filter(vocab, masked, mentions, i, neg or onlyed[i]):
            soft.append(m)
            name = r.brand if isinstance(r, BrandMatch) else r.name
            if r.how == "fuzzy" and stem_phrase(normalize(name)) != stem_phrase(normalize(r.surface)):
                corrections.append((m.start, name))  # "maybeline" -> "Maybelline"; not "disposable"
            if neg:
                take(taken, m.start, m.end)  # "not caps", "not inkjet" (no filter): a penalty, never a wish
                avoided_words += [] if HAN_RE.search(r.surface) else [r.surface.casefold()]
            elif isinstance(r, BrandMatch):
                soft_brands.append(r)
            elif r.how == "fuzzy" and not r.weak:  # a typo'd type; a word the titles use elsewhere is none
                soft_categories.append(r)
            continue
        filtered.append(m)
        if isinstance(m.match, Ambiguous):
            ambiguities.append(m.match)
        if neg:
            take(taken, m.start, m.end)
        if isinstance(r, BrandMatch):
            (brands_out if neg else brands_in).extend(r.spellings)
        elif neg:
            if not r.weak:
                cats_out.extend(r.paths)
        elif r.weak:
            weak.append(r)
        else:
            cats_in.append(r)
    categories_in = refine_categories(cats_in, weak)
    weak_paths = drop_descendants(p for w in weak for p in w.paths) if not categories_in else ()
    return _MentionReading(
        mentions=filtered,
        neg_cues=neg_cues,
        negated=negated,
        only=any(onlyed),
        brands_in=brands_in,
        brands_out=brands_out,
        categories_in=categories_in,
        cats_out=cats_out,
        weak_paths=weak_paths,
        ambiguities=ambiguities,
        soft=soft,
        soft_brands=soft_brands,
        soft_categories=soft_categories,
        avoided=avoided,
        avoided_words=avoided_words,
        corrections=corrections,
    )


# A category word right after an attribute frame describes the wanted item ("ideally styling",
# "something peel", "more matte", "a lip balm with spf"); a product type is asked for with a
# request ("I need peels").
_ATTRIBUTE_BEFORE = re.compile(
    r"(?:\b(?:something|anything|ideally|preferably|maybe|rather|more|bit|kind\s+of|sort\s+of|(?<!help\s)with|"
    r"that\s+has|containing|has\s+to\s+be|must\s+be|should\s+be|needs?\s+to\s+be|one\s+that'?s|"
    r"one\s+thats|ones?\s+that\s+(?:is|are))\s+"
    r"|(?:最好是?|偏|带(?:有|点)?|含有?|比较|有点|更))$",
    re.I,
)
# A wish frame after the word describes the wanted item too: "scanner ones", "powder would be
# nice", "fax if you have it", "duplex is a must"; Chinese marks it with a closing 的
# ("要sunscreen的": "one with sunscreen"; "护肤类的" / "面霜方面的" name a kind and stay filters).
_ATTRIBUTE_AFTER = re.compile(
    r"^\s*(?:(?:一点|一些|点)?\s*的(?![\u4e00-\u9fff])|ones?\b|would\s+be\s+(?:nice|great|good|ideal|perfect|"
    r"better|cool)|if\s+(?:you\s+(?:have|got)|possible|available)|is\s+(?:important|a\s+must|a\s+plus|key))",
    re.I,
)
# What the wanted item is for or where it goes, not what it is: "ink for my printer", "a case that
# fits my phone", "a pen that won't bleed through the paper", "my printer is an HP", "给我的打印机用".
_CONTEXT_FOR = re.compile(
    r"\b(?:(?:for|fits?|compatible\s+with|works?\s+with)\s+(?:my|your|his|her|our|their)\s+(?:[\w'-]+\s+){0,2}|"
    r"(?:through|onto|into|on|off|against)\s+(?:the|my|your|his|her|our|their)\s+(?:[\w'-]+\s+)?)$",
    re.I,
)
# "a travel case for cosmetics", "a brush for foundation": what the named thing is for (the word
# before "for" is a thing, not a request such as "looking for", "shopping for", "it's for"),
# unless the category holds such things: PURPOSE_MIN_SHARE of the titles that use the word sit
# under it ("rhinestones for nail art": 30 % in Nail Art; "a case for cosmetics": 9 % in Makeup).
PURPOSE_MIN_SHARE = 0.2
_PURPOSE_BEFORE = re.compile(
    r"(?<![\w'’])(?!(?:something|anything|one|ones|stuff|things?|looking|look|shopping|shop|searching|search|"
    r"ask(?:ing)?|hoping|hunting|out|gifts?|presents?|me|us|it|them|that|this|it'?s|that'?s|is|are|was|"
    r"were|be|just|only|also|mainly|mostly|market|mood|ideas?|options?|suggestions?|recommendations?|"
    r"help|go|went|pay|paying|spend|budget|good|great|best|perfect|nice|better|used|use|made|all|"
    r"and|or|but|so|not|even|especially|ready|time|need|needs|want|wants)\b)(?P<thing>[a-z][\w'-]*)\s+for\s+"
    r"(?:the\s+|a\s+|an\s+|some\s+|all\s+)?$",
    re.I,
)
_CONTEXT_BEFORE = re.compile(r"(?:\bmy\s+(?:[\w'-]+\s+){0,2}|给我的|我的)$", re.I)
_CONTEXT_AFTER = re.compile(
    r"^\s*(?:(?:is|are|was|were|has|have|keeps?|needs?|ran|runs?|broke|died|stopped|won'?t|doesn'?t|jam(?:s|med)?|"
    r"leaks?|takes?|uses?)\b|用)", re.I)
_FREE_AFTER = re.compile(r"^\s*-?\s*free\b", re.I)
_DEGREE_BEFORE = re.compile(r"(?:\b(?:too|so|overly)\s+|太|那么|过于)$", re.I)
# Brand context: "by X", "X brand", and a preference for a name typed as one ("I prefer Brother",
# "a fan of Dove"; "for my brother" is none).
_BRAND_BEFORE = re.compile(
    r"(?:\b(?:by|from|brand(?:ed)?|made\s+by|label|prefer(?:ably)?|fan\s+of|(?:i|we)\s+(?:really\s+)?"
    r"(?:like|love|use|usually\s+buy|always\s+buy))(?:\s+(?:kinda|maybe|perhaps|probably))?|品牌|牌子)"
    r"[\s\"'“”‘’:]*$",
    re.I,
)
_BRAND_AFTER = re.compile(r"^(?:['’]s\b|\s*(?:brand|products?|line|range)\b|\s*(?:牌|品牌|家的))", re.I)


def _is_filter(vocab: CatalogVocabulary, text: str, mentions: list[Mention], i: int, governed: bool) -> bool:
    """Is mention ``i`` confident evidence for a hard filter (see the module docstring)?"""
    m = mentions[i]
    r = m.resolved
    if r.how == "job":
        return True  # a job names its tool (jobs.py)
    if r.how == "fuzzy":
        return False
    if isinstance(r, CategoryMatch):
        if _FREE_AFTER.match(text[m.end :]):
            return False  # "fragrance free", "alcohol-free": without it, a quality of the item
        if _ATTRIBUTE_BEFORE.search(text[max(0, m.start - 24) : m.start]) or _ATTRIBUTE_AFTER.match(
            text[m.end :]
        ):
            return False  # "maybe something peel": a quality the shopper wants, not a new product type
        before = text[max(0, m.start - 40) : m.start]
        purpose = None if r.weak else _PURPOSE_BEFORE.search(before)
        if purpose and (vocab.title_share(purpose["thing"], r.paths) or 0.0) >= PURPOSE_MIN_SHARE:
            purpose = None
        if (
            _CONTEXT_FOR.search(before)
            or purpose
            or (_CONTEXT_BEFORE.search(before) and _CONTEXT_AFTER.match(text[m.end :]))
        ):
            return False  # "ink for my printer", "my printer is an HP": what it is for
        nxt = mentions[i + 1] if i + 1 < len(mentions) else None
        if (
            not r.weak
            and nxt is not None
            and isinstance(nxt.resolved, CategoryMatch)
            and not nxt.resolved.weak
            and not text[m.end : nxt.start].strip()
            and not any(path_related(p, q) for p in r.paths for q in nxt.resolved.paths)
            and vocab.category_confident(nxt.resolved)
        ):
            return False  # "printer paper", "eyeliner brush": the last noun is the product type
        return r.weak or (vocab.category_confident(r) and vocab.stocked(r) and not modified_elsewhere(vocab, text, m))
    if r.how == "alias" or not vocab.brand_needs_context(r) or governed:
        return True
    if _BRAND_BEFORE.search(text[max(0, m.start - 16) : m.start]) or _BRAND_AFTER.match(text[m.end :]):
        return True
    nxt = mentions[i + 1] if i + 1 < len(mentions) else None
    typed_as_name = text[m.start : m.start + 1].isupper()
    return bool(
        typed_as_name
        and nxt is not None
        and isinstance(nxt.resolved, CategoryMatch)
        and not text[m.end : nxt.start].strip()
    )


def _with_corrections(query: str, corrections: list[tuple[int, str]]) -> str:
    """The query plus the catalog's words for names said otherwise: a typo ("maybeline" -> also
    "Maybelline"), a Chinese word ("控油" -> "oil control", "口红" -> "Lipstick")."""
    have = f" {query.casefold()} "
    extra = [c for c in dict.fromkeys(c for _, c in corrections) if f" {c.casefold()} " not in have]
    return " ".join([query, *extra]).strip()[:300]


def _preferences(text: str, taken: bytearray, read: _MentionReading) -> tuple[str, ...]:
    """Soft terms: unfiltered mentions (as said, or their catalog spelling) and the other query words."""
    covered = bytearray(taken)
    for m in (*read.mentions, *read.soft):
        take(covered, m.start, m.end)
    found = [(m.start, text[m.start : m.end].strip()) for m in read.soft if not any(taken[m.start : m.end])]
    found += read.corrections
    cursor = 0
    for word in build_query(text, covered).split():
        at = text.find(word, cursor)
        cursor = at + len(word) if at >= 0 else cursor
        found.append((at if at >= 0 else len(text), word))
    prefs = [t for _, t in sorted(found, key=lambda x: x[0])]
    seen: set[str] = set()
    out = []
    for p in prefs:
        if p and p.casefold() not in seen:
            seen.add(p.casefold())
            out.append(p)
    return tuple(out)


def _unplaced(text: str, masked: str, read: _MentionReading, has_refs: bool) -> list[str]:
    """What the rules saw but could not place: a negation with no target, a script they can't read."""
    unresolved: list[str] = []
    if (
        read.neg_cues
        and not any(read.negated)
        and not has_refs
        and re.search(
            r"\b(?:not|no|without|except|excluding|besides|other\s+than|anything\s+but)\s+[A-Z][\w'&.-]+",
            masked,
        )
    ):
        unresolved.append("negation_target")
    other = sum(1 for c in text if c.isalpha() and ord(c) > 0x24F and not HAN_RE.match(c))
    if other >= 3 and other > sum(1 for c in text if c.isascii() and c.isalpha()):
        unresolved.append("language")  # e.g. Cyrillic, kana or Hangul: the rules only read EN and ZH (Han)
    return unresolved

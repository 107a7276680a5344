"""The understanding stage: parse, classify, fold into the dialogue state, apply the clarify policy.

``Understander.understand(message, record) -> UnderstoodTurn``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from typing import Any

from assistant.dialogue_state import DialogueState
from assistant.llm_setup import chunk_text
from assistant.sessions import SessionRecord
from assistant.stage_context import Stage, StageContext
from assistant.understanding import lexicon
from assistant.understanding.facets import CatalogFacets, Facet
from assistant.understanding.intents import (
    IntentResult,
    classify_intent,
    has_searchable_content,
    needs_clarification,
)
from assistant.understanding.llm_prompt import UnderstandContext, understand_chat
from assistant.understanding.matches import CategoryMatch, path_under
from assistant.understanding.mentions import TitleIndex
from assistant.understanding.parser import parse
from assistant.understanding.safety import refuse_reason
from assistant.understanding.spelling import TitleSpelling
from assistant.understanding.superlatives import Superlative, page_superlative
from assistant.understanding.tokens import normalize, stem, stem_phrase
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.utterance import ParsedUtterance
from assistant.understanding.vocabulary import CatalogVocabulary
from llm.constrained import generate_constrained_json
from llm.messages import to_chat_dicts
from retrieval.filters import Constraints
from retrieval.hybrid import is_vague
from retrieval.text import HAN_RE, detect_language

# A category word this share of the current type's titles say is a feature of that type; said
# while reacting to the page ("the 3rd one's close but no. oh and eraser", of marker kits), a
# quarter of it (and at least REACTION_MIN_TITLES titles): the shopper is steering among the shown.
FEATURE_MIN_COVER = 0.1
REACTION_MIN_TITLES = 3
# "Been using Cetaphil for years, want something different", "anything but Swingline": with no
# kind said, the shopper still means the kind of goods the brand is left for: the narrowest
# category (below the catalog's root) holding this share of the brand's items, a soft preference.
BRAND_KIND_SHARE = 0.5


def _medium_words() -> re.Pattern[str]:
    """The words naming the medium of a catalog of works ("movies", "watch", 电影)."""
    return lexicon.cue("query_filler", "medium")


_ASKED_AS_A_THING = re.compile(r"\b(?:a|an|some|any|the|few|more|new|another)\s+(?:[\w'-]+\s+)?$", re.I)


@dataclass
class UnderstoodTurn:
    """The understood turn: the state after it, the constraints in force, what to do."""

    message: str
    lang: str
    record: SessionRecord
    state: DialogueState
    parsed: ParsedUtterance
    intent: str
    constraints: Constraints
    query: str
    referenced: list[str]
    # The question of this turn: the whole reply when ``intent`` is "clarify", else asked after
    # the items; ``ask``: the facets a question after the items may name (the planner keeps those
    # that split its candidates), worded from ``facets``.
    clarify: str | None = None
    ask: tuple[Facet, ...] = ()
    facets: CatalogFacets = field(default_factory=CatalogFacets)
    budget: float | None = None
    refuse_kind: str | None = None
    notes: list[str] = field(default_factory=list)
    # "which of these is the cheapest?": the attribute a question about the page ranks ``referenced``
    # (the shown items it asks about) by; None for every other turn.
    superlative: Superlative | None = None


class Understander(Stage):
    """One message in the context of its session -> an ``UnderstoodTurn``."""

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        self.vocab = CatalogVocabulary.from_catalog(ctx.catalog)
        # Best sellers first: the first of duplicate titles leads, and "like the Cetaphil cleanser"
        # stands for that brand's best-selling cleansers.
        popularity = ctx.index.popularity
        by_sales = sorted(ctx.catalog, key=lambda it: -popularity.get(it.item_id, 0.0))
        # A stand-in title ("Untitled item 9178 (Nail Polish)") is no name: "into nail polish" is a kind.
        self.titles = TitleIndex.from_items(
            (it.item_id, it.title, it.brand) for it in by_sales if not it.untitled
        )
        title_words = [(it, normalize(it.title).split()) for it in ctx.catalog]
        # Free words typed wrong ("dandruf"), also searched as the titles spell them; where titles
        # are names (films) a title word is no description, so none is corrected.
        self.spelling = (
            TitleSpelling.from_title_words(
                [words for it, words in title_words if not it.untitled],
                [it.brand for it, _ in title_words if not it.untitled],
            )
            if ctx.catalog.has_brands
            else TitleSpelling()
        )
        # Words three or more titles use: a message that says one is about the goods, whatever
        # off-topic word it holds ("my hair is frizzy in humid weather"). The spelling index counts
        # them; it is empty where titles are names, and so is this.
        self._title_vocab = frozenset(w for w, n in self.spelling.counts.items() if n >= 3)
        # Each item's category paths and title stems, for the features of the type in force.
        self._title_stems = [
            (it.paths, frozenset(stem(w) for w in words)) for it, words in title_words
        ]
        self._brand_kinds = _brand_kinds(ctx.catalog) if ctx.catalog.has_brands else {}

    def understand(self, message: str, record: SessionRecord) -> UnderstoodTurn:
        """Parse, classify, fold into the dialogue state, apply the clarify policy."""
        state = record.state
        parsed, result = self._read(message, state)
        asked = self._page_question(message, parsed, result, state)
        if asked is not None:  # "which of these is the cheapest?" asks about the page, wishes nothing new
            parsed = ParsedUtterance(parsed.text, parsed.language, parsed.language_confident)
            result = IntentResult("compare", 0.85, asked[0].surface)
        lang = parsed.language if parsed.language_confident or parsed.language == "zh" else state.language
        intent, refuse_kind = result.intent, result.refuse_reason
        if refuse_kind == "offtopic" and self._about_the_goods(parsed.query, result.cue):
            intent, refuse_kind = "recommend", None
        # Defence in depth: injection / other users' data are refused whatever the classifier said.
        unsafe = refuse_reason(message)
        if unsafe is not None:
            intent, refuse_kind = "refuse", unsafe
        if intent == "refuse":  # nothing from a refused message enters the state
            return UnderstoodTurn(
                message,
                lang,
                record,
                state,
                parsed,
                "refuse",
                state.constraints,
                state.query,
                [],
                refuse_kind=refuse_kind,
            )
        # "like the Cetaphil cleanser but cheaper": cheaper than the items named as liked or as a model
        named = [
            self.catalog[i].price for m in parsed.item_mentions if m.polarity == "like" for i in m.item_ids
        ]
        new_state = state.apply(parsed, intent=intent, named_prices=named)
        question = new_state.clarification  # the parser's own question (an absurd price...)
        ask: tuple[Facet, ...] = ()
        finding = intent in ("recommend", "search")
        # Items the shopper said they like are history too: the ranker has their taste to go on.
        user_known = finding and (
            bool(new_state.liked) or (record.user_id is not None and bool(self.history(record.user_id)))
        )
        vague = finding and not user_known and not has_searchable_content(new_state, parsed)
        if vague and new_state.topic_key not in new_state.clarifications_asked:
            # Nothing to search ("can you recommend something?"): the catalog's opening question,
            # asked once, goes with what most shoppers have (the question goes with the items,
            # never instead of them: a shopper who asked for recommendations gets some).
            question = question or self.vocab.facets.opening_question(
                lang, ask_budget=not new_state.constraints.has_price
            )
            new_state = new_state.mark_clarified()
        elif question is None and finding:
            ask = needs_clarification(new_state, parsed, user_known, intent=intent, facets=self.vocab.facets)
            if ask:
                new_state = new_state.mark_clarified()
        elif intent == "clarify" and question is None:
            question = self.ctx.strings(lang).format("smalltalk")
        elif question and not finding:  # compare/details/bundle cannot run on an unreadable edit
            intent = "clarify"
        c = new_state.constraints
        return UnderstoodTurn(
            message=message,
            lang=lang,
            record=record,
            state=new_state,
            parsed=parsed,
            intent=intent,
            constraints=c,
            # A message the rules read but that leaves no words ("I loved Heat", "not that violent")
            # has nothing to search for: the raw text would retrieve titles sharing its words.
            query=self._searchable(
                new_state.query or parsed.query or ("" if parsed.has_content or vague else message)
            ),
            referenced=asked[1] if asked else [i for i in new_state.referenced if i in self.catalog],
            superlative=asked[0] if asked else None,
            clarify=question,
            ask=ask,
            facets=self.vocab.facets,
            budget=c.price_max,
            notes=list(new_state.info),
        )

    def _page_question(
        self, message: str, parsed: ParsedUtterance, result: IntentResult, state: DialogueState
    ) -> tuple[Superlative, list[str]] | None:
        """A superlative asked of the page on show ("which of these is the cheapest?", "哪个最新") and
        the shown items it asks about: the page, those of it the message names ("which of the
        comedies is the newest", "the first three") when any. With nothing shown, or naming a kind or
        brand the page lacks, it stays a search ("what's the cheapest moisturizer": low prices first)."""
        if not state.last_shown or result.intent == "refuse":
            return None
        if parsed.relative_price or parsed.exclude_shown or parsed.similar or parsed.feedback:
            return None  # "cheaper", "something else", "more like": a new page
        asked = page_superlative(message)
        if asked is None:
            return None
        named = Constraints(brands_in=parsed.brands_in, categories=parsed.categories_in)
        among = [i for i in state.last_shown if i in self.catalog and named.matches(self.catalog[i])]
        # "the Olay ones", "Alien or Brazil": the shown items it names (items off the page are ignored)
        pointed = {i for m in parsed.item_mentions for i in m.item_ids} & set(state.last_shown)
        positions = tuple(r for r in parsed.references if r.kind in ("index", "first_n", "last_n", "all"))
        if positions:  # "which of the first three"
            pointed.update(state.apply(ParsedUtterance(parsed.text, references=positions)).referenced)
        among = [i for i in among if i in pointed] or among
        return (asked, among) if among else None

    def _about_the_goods(self, query: str, cue: str) -> bool:
        """Whether ``query`` says a word that titles use, besides the off-topic ``cue`` ("weather")."""
        return bool((set(normalize(query).split()) - set(normalize(cue).split())) & self._title_vocab)

    def _searchable(self, query: str) -> str:
        """The retrieval query: Chinese words the parser could not put in the catalog's words
        leave it when no title is written in Chinese (they would match nothing and blur the
        English embedding); the state keeps them. In a catalog of works, the words of the medium
        ("movies", "watch") describe every item: "I like to watch movies" asks for no item in
        particular (titles that echo it, "Quiz Show", are no answer; the best-liked items are),
        and "action movies" asks for action."""
        if not self.vocab.facets.has_brands:
            query = " ".join(_medium_words().sub(" ", query).split())
        if self.vocab.has_cjk_titles or not HAN_RE.search(query):
            return query
        return " ".join(HAN_RE.sub(" ", query).split())

    def _read(self, message: str, state: DialogueState) -> tuple[ParsedUtterance, IntentResult]:
        """The rules' reading of ``message`` and its intent, with the LLM's JSON where the rules
        are unsure: spans they flagged as unread; with ``understand_llm`` off, only when that
        left the turn unreadable and the intent unclear."""
        shown = (state.last_items, tuple(reversed(state.shown)))  # "the Garnier one": latest list first
        parsed = parse(message, self.vocab, self.currency, titles=self.titles, shown=shown)
        parsed = self._features_of_current(parsed, state)
        parsed = self._other_brands(parsed, state)
        parsed = self._kind_of_brands_left(parsed, state)
        if fixed := self.spelling.corrections(parsed.query):
            parsed = replace(parsed, query=" ".join([parsed.query, *fixed]))
        result = classify_intent(message, parsed)
        unsure = parsed.needs_llm and (
            self.config.understand_llm or (not parsed.has_content and result.low_confidence)
        )
        if unsure and self._understand_llm is not None:
            fallback = self._json_fallback(detect_language(message).language, state)
            parsed = parse(message, self.vocab, self.currency, llm=fallback, titles=self.titles, shown=shown)
            result = classify_intent(message, parsed)
        return parsed, result

    def _other_brands(self, parsed: ParsedUtterance, state: DialogueState) -> ParsedUtterance:
        """"a different brand", "换个牌子": the brands of the page last shown are ruled out, but
        for a brand the same message asks for ("another brand, maybe Olay")."""
        if not parsed.other_brand:
            return parsed
        wanted = {b.casefold() for b in parsed.brands_in}
        shown = (self.catalog[i].brand for i in state.last_shown if i in self.catalog)
        out = [b for b in shown if b and b.casefold() not in wanted]
        return replace(parsed, brands_out=tuple(dict.fromkeys([*parsed.brands_out, *out])))

    def _kind_of_brands_left(self, parsed: ParsedUtterance, state: DialogueState) -> ParsedUtterance:
        """A brand ruled out with no kind said or in force ("been using Cetaphil for years, want
        something different"): the kinds of goods that brand sells are a soft preference."""
        if (
            not parsed.brands_out
            or parsed.categories_in
            or parsed.soft_categories
            or parsed.weak_categories
            or state.constraints.categories
            or not is_vague(parsed.query)
        ):
            return parsed
        kinds = [self._brand_kinds[b.casefold()] for b in parsed.brands_out if b.casefold() in self._brand_kinds]
        return replace(parsed, soft_categories=tuple(dict.fromkeys(kinds)))

    def _features_of_current(self, parsed: ParsedUtterance, state: DialogueState) -> ParsedUtterance:
        """ "shredders ... oh and paper", "a laser printer, also copier": a bare category word that
        the titles of the type in force often say (FEATURE_MIN_COVER of its items) is a feature of
        it, not another product type; the word stays in the query. With an article or quantity it
        asks for the thing ("also some printer paper"). A reaction to the page lowers the bar."""
        current = state.constraints.categories
        mentions = [
            m for m in parsed.mentions if isinstance(m.resolved, CategoryMatch) and not m.resolved.weak
        ]
        if not current or not parsed.categories_in or not mentions:
            return parsed
        titles = [
            words
            for paths, words in self._title_stems
            if any(path_under(p, c) for p in paths for c in current)
        ]
        reacting = bool(parsed.references or parsed.exclude_shown or parsed.similar)
        floor = max(REACTION_MIN_TITLES, FEATURE_MIN_COVER / 4 * len(titles)) if reacting else None
        drop: set[tuple[str, ...]] = set()
        for m in mentions:
            if _ASKED_AS_A_THING.search(parsed.text[max(0, m.start - 24) : m.start]) or any(
                path_under(p, c) for p in m.resolved.paths for c in current
            ):
                continue  # asked as a thing, or a narrowing ("makeup ... narrow it to lipstick")
            said = set(stem_phrase(normalize(parsed.text[m.start : m.end])).split())
            if titles and sum(said <= t for t in titles) >= (floor or FEATURE_MIN_COVER * len(titles)):
                drop.update(m.resolved.paths)
        if not drop:
            return parsed
        return replace(parsed, categories_in=tuple(p for p in parsed.categories_in if p not in drop))

    @property
    def _understand_llm(self) -> Any | None:
        """The model behind the JSON fallback: the understanding adapter's, else the chat model."""
        return self.ctx.understand_model if self.ctx.understand_model is not None else self.llm

    def _json_fallback(self, lang: str, state: DialogueState) -> Any:
        """The parser's LLM hook: one validated JSON object (or None), from the parse template
        around ``understand_prompt`` with this session's state (``context``), the very chat the
        understanding adapter is trained on (``understand_messages``). An adapter is always run
        under the grammar it was trained for."""
        llm = self._understand_llm
        constrained = self.config.understand_llm or self.ctx.understand_model is not None

        def call(prompt: str, schema: dict[str, Any]) -> Any:
            msgs = understand_chat(prompt, lang)
            if constrained and hasattr(llm, "loaded") and find_spec("llguidance"):
                return generate_constrained_json(llm.loaded, to_chat_dicts(msgs), schema, max_new_tokens=128)
            if self.config.understand_llm and hasattr(llm, "with_structured_output"):
                return llm.with_structured_output(ConstraintUpdate).invoke(msgs)
            if hasattr(llm, "generate_json"):
                return llm.generate_json(msgs, schema, max_new_tokens=96)
            msgs[0].content += "\nSCHEMA: " + json.dumps(schema)
            return chunk_text(llm.invoke(msgs))

        call.context = UnderstandContext.from_state(state, self.catalog)  # type: ignore[attr-defined]
        return call


def _brand_kinds(catalog: Any) -> dict[str, tuple[str, ...]]:
    """Brand (casefolded) -> the narrowest category below the root holding ``BRAND_KIND_SHARE`` of
    its items (Cetaphil: Skin Care; Swingline: Staplers); brands with none are left out."""
    counts: dict[str, Counter[tuple[str, ...]]] = {}
    totals: Counter[str] = Counter()
    for it in catalog:
        if it.brand and it.categories:
            brand, path = it.brand.casefold(), it.categories
            totals[brand] += 1
            counts.setdefault(brand, Counter()).update(path[:k] for k in range(2, len(path) + 1))
    kinds = {}
    for brand, c in counts.items():
        held = [p for p, n in c.items() if n >= BRAND_KIND_SHARE * totals[brand]]
        if held:
            kinds[brand] = max(held, key=lambda p: (len(p), c[p]))
    return kinds

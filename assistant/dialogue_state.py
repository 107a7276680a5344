"""What the conversation has established so far, and how each parsed utterance revises it.

Size exception: module: the one owner of conversation state; its revision rules (below) live
next to the transitions that implement them, and the JSON round trip beside the fields.

``DialogueState`` is immutable: ``apply`` and ``record_shown`` return a new state, so a turn
that fails half-way never leaves a half-edited state behind, and the state round-trips through
JSON for persistence (``to_json`` / ``from_json``).

Per turn the orchestrator does::

    parsed = parse(text, vocab, currency)            # assistant.understanding.parser
    state = state.apply(parsed, intent=intent)       # revise constraints, resolve references
    question = state.clarification                   # ask it instead of searching, if any
    ... retrieve with state.constraints and state.query ...
    state = state.record_shown(item_ids, prices)     # what "the second one" will refer to

Revision rules (deliberate, and what users expect from a shop assistant):

* Constraints accumulate across turns; a new statement about the same thing replaces the old
  one. A new price bound replaces the old bound of that side ("under 20" then "under 30" ->
  max 30); a floor above the ceiling drops the ceiling (the newest statement wins) and vice versa.
* "cheaper" after a page with prices means cheaper than everything on it (the shopper rejected
  the page as too expensive): ``price_max`` = the cheapest shown price, never above the current
  ceiling; "more expensive" sets ``price_min`` = the priciest shown price. A fraction of the
  median would exclude items the shopper still accepts (a page at 1.2x the wanted price capped
  at 0.8 x 1.2 = 0.96x). With nothing shown yet (or no prices), the optional
  ``reference_prices`` (e.g. the category's prices) give ``CHEAPER_FACTOR`` / ``PRICIER_FACTOR``
  x their median, else only a soft ``price_preference`` ("low"/"high") is recorded for the ranker.
* "more like the second one" makes that item an *anchor* of this topic: later pages rank items
  similar to the anchors higher (with the words said so far), and the words said in the same
  breath ("more like the second one, something matte") still join the query. Everyday-word
  preferences ("for a family night" -> Children's, Animation, Comedy) hold for the topic too,
  until another product type is named or one is ruled out ("not a comedy").
* "not OPI" adds OPI to ``brands_out`` and removes it from ``brands_in``; "just Revlon" /
  "Revlon" replaces ``brands_in``; "also Essie" / "or Essie" adds to it. Naming a brand you had
  excluded lifts the exclusion.
* A category mention replaces the category ("only nail polish"); "also lipstick" adds one.
  **Topic change** = the new category is neither inside nor above the old one. On a topic
  change the budget (explicit price bounds), excluded brands, liked/disliked items and
  language persist - they describe the shopper - while ``brands_in`` (brands are tied to a
  product type: OPI makes no shampoo), bounds derived from "cheaper" (relative to the old
  category's prices) and the free-text query are reset.
* A weak category word ("for the face") only narrows the current category when it can.
* Release years ("from the 1990s", "released in 1995") replace earlier ones and persist across
  topic changes; the assistant applies them only to catalogs whose items carry a release year.
* "something else" / "换一个" adds every item shown last turn to ``exclude_items``; disliked
  items are excluded too.
* Catalog items named in chat ("I loved Toy Story", "not the Olay") go through the like/dislike
  buttons' transition (``with_feedback``) and join ``mentioned``; an item the shopper knows from
  outside this session (liked, disliked or had: "I watched Heat") is not shown back. "The Garnier
  one" (a shown item named by its words) is also what the turn refers to.
* References resolve against the last shown list (1-based for the shopper, 0-based inside);
  "that one" means the item last referred to, or the only item shown. An out-of-range
  reference ("the fifth one" when three were shown) adds a clarifying note, never an error.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from assistant.understanding.categories import restated_types
from assistant.understanding.matches import path_related, path_under
from assistant.understanding.mentions import ItemMention
from assistant.understanding.utterance import Era, Issue, ParsedUtterance, Reference
from prompts.loader import load_strings
from retrieval.filters import MAX_CATEGORY_DEPTH, Constraints, PricePreference
from retrieval.text import format_money, words

__all__ = ["CHEAPER_FACTOR", "MAX_TURNS", "PRICIER_FACTOR", "DialogueState", "Turn"]

CHEAPER_FACTOR = 0.8
PRICIER_FACTOR = 1.25
MAX_TURNS = 50  # transcript kept in the state; older turns are dropped (the session store has them)
MAX_QUERY_PARTS = 4
MAX_ANCHORS = 3  # "more like ..." items remembered per topic: the newest few say where the shopper is heading
STATE_VERSION = 1

Path = tuple[str, ...]


@dataclass(frozen=True)
class Turn:
    """One user turn as the state remembers it."""

    text: str
    intent: str | None = None
    shown: tuple[str, ...] = ()


def _dedupe_paths(paths: Sequence[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for p in sorted({tuple(p[:MAX_CATEGORY_DEPTH]) for p in paths}, key=lambda p: (len(p), p)):
        if not any(path_under(p, k) for k in out):
            out.append(p)
    return tuple(out)


def _cf(values: Sequence[str]) -> set[str]:
    return {v.casefold() for v in values}


def _era(value: Any) -> Era | None:
    if value is not None and value not in get_args(Era):
        raise ValueError(f"era must be one of {get_args(Era)} or null, got {value!r}")
    return value


def _years(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    lo, hi = (int(v) for v in value)
    if lo > hi:
        raise ValueError(f"years must be (first, last) with first <= last, got {value!r}")
    return lo, hi


@dataclass
class _Draft:
    """The parts of a state that ``DialogueState.apply`` revises, while it revises them."""

    notes: list[Issue]
    cats: tuple[Path, ...]
    cats_out: tuple[Path, ...]
    brands_in: tuple[str, ...]
    brands_out: tuple[str, ...]
    price_min: float | None
    price_max: float | None
    price_origin: Literal["explicit", "relative"] | None
    preference: PricePreference | None
    query_parts: tuple[str, ...]
    exclude: list[str]

    def constraints(self, old: Constraints) -> Constraints:
        try:
            return replace(
                old,
                price_min=self.price_min,
                price_max=self.price_max,
                brands_in=self.brands_in,
                brands_out=self.brands_out,
                categories=_dedupe_paths(self.cats),
                categories_out=_dedupe_paths(self.cats_out),
                exclude_items=tuple(dict.fromkeys(self.exclude)),
            )
        except ValueError as exc:  # defensive: the rules keep bounds consistent
            self.notes.append(Issue.note("constraints_rejected", error=exc))
            return old


def _restated_types(current: tuple[Path, ...], parsed: ParsedUtterance) -> tuple[Path, ...]:
    """The types in force a refinement only restates ("rhinestones for nail art" while Nail Art
    Equipment is shown keeps it; "face moisturizer" after "moisturizer" keeps the face one);
    () when it names a new type."""
    if not parsed.categories_in:
        return ()
    return restated_types(current, list(parsed.mentions), parsed.text)


def _revise_categories(d: _Draft, parsed: ParsedUtterance) -> bool:
    """Categories, and on a topic change the reset of what was tied to the old topic; returns
    whether the topic changed."""
    topic_changed = False
    kept = _restated_types(d.cats, parsed)
    d.cats = kept or d.cats
    if parsed.categories_in and not kept:
        new = tuple(parsed.categories_in)
        topic_changed = bool(d.cats) and not any(path_related(p, q) for p in new for q in d.cats)
        d.cats = _dedupe_paths([*d.cats, *new]) if parsed.additive and d.cats else _dedupe_paths(new)
        d.cats_out = tuple(p for p in d.cats_out if not any(path_related(p, q) for q in new))
    elif parsed.weak_categories and d.cats:
        narrowed = [w for w in parsed.weak_categories for q in d.cats if path_under(w, q)]
        narrowed += [q for q in d.cats if any(path_under(q, w) for w in parsed.weak_categories)]
        if narrowed:
            d.cats = _dedupe_paths(narrowed)
    if parsed.categories_out:
        d.cats_out = _dedupe_paths([*d.cats_out, *parsed.categories_out])
        d.cats = tuple(p for p in d.cats if not any(path_under(p, o) for o in parsed.categories_out))
    if topic_changed:
        d.query_parts = ()
        if not parsed.brands_in:
            d.brands_in = ()
        if d.price_origin == "relative":
            d.price_min = d.price_max = None
            d.price_origin = None
        d.preference = None
    return topic_changed


def _revise_brands(d: _Draft, parsed: ParsedUtterance) -> None:
    if parsed.brands_out:
        d.brands_out = tuple(dict.fromkeys([*d.brands_out, *parsed.brands_out]))
        out_cf = _cf(parsed.brands_out)
        d.brands_in = tuple(b for b in d.brands_in if b.casefold() not in out_cf)
    if parsed.brands_in:
        new_in = tuple(parsed.brands_in)
        d.brands_in = tuple(dict.fromkeys([*d.brands_in, *new_in])) if parsed.additive else new_in
        in_cf = _cf(new_in)
        d.brands_out = tuple(b for b in d.brands_out if b.casefold() not in in_cf)


def _explicit_price(d: _Draft, parsed: ParsedUtterance) -> None:
    """A stated bound replaces the old bound of that side; one that crosses the other drops it."""
    p = parsed.price
    assert p is not None
    if p.op == "max":
        d.price_max = p.high
        if d.price_min is not None and p.high is not None and d.price_min > p.high:
            d.price_min = None
    elif p.op == "min":
        d.price_min = p.low
        if d.price_max is not None and p.low is not None and d.price_max < p.low:
            d.price_max = None
    else:
        d.price_min, d.price_max = p.low, p.high
    d.price_origin, d.preference = "explicit", None


def _cheaper(d: _Draft, cap: float, factor: float | None, basis: str) -> None:
    cap = round(cap, 2)
    if d.price_max is not None:
        cap = min(cap, d.price_max)
    if cap <= 0:
        d.notes.append(Issue.note("already_cheapest"))
        return
    d.price_max = cap
    if d.price_min is not None and d.price_min > cap:
        d.price_min = None
    d.notes.append(_relative_rule("cheaper", cap, factor, basis))
    d.price_origin, d.preference = "relative", "low"


def _relative_rule(
    direction: Literal["cheaper", "pricier"], bound: float, factor: float | None, basis: str
) -> Issue:
    """The info note saying how "cheaper" / "more expensive" became a price bound: against the page
    just shown (``factor`` None: below its cheapest / above its priciest item), or a share of the
    median price of ``basis`` (a notes key), rendered in each language."""
    code = f"{direction}_rule" if factor is not None else f"{direction}_{basis.removeprefix('basis_')}_rule"
    return Issue(
        code,
        *(
            load_strings("notes", lang).format(
                code,
                money=format_money(bound, None),
                percent=int((factor or 1.0) * 100),
                basis=load_strings("notes", lang).format(basis),
            )
            for lang in ("en", "zh")
        ),
        "info",
    )


@dataclass(frozen=True)
class DialogueState:
    """The conversation so far: constraints in force, what was shown, what the shopper said."""

    constraints: Constraints = field(default_factory=Constraints)
    query_parts: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = ()
    last_shown: tuple[str, ...] = ()
    last_shown_prices: tuple[float | None, ...] = ()
    focus: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()  # every item any reply showed, oldest first (the session's "saw" history)
    mentioned: tuple[str, ...] = ()  # catalog items the shopper named in chat, oldest first
    last_items: tuple[str, ...] = ()  # the cards of the last reply that had cards, in order
    clarifications_asked: tuple[str, ...] = ()
    language: Literal["en", "zh"] = "en"
    currency_seen: str | None = None
    price_origin: Literal["explicit", "relative"] | None = None
    price_preference: PricePreference | None = None
    years: tuple[int, int] | None = None  # release years wanted, inclusive (films, books, music)
    era: Era | None = None  # "something recent" / "old movies" / "black and white": a ranking lean
    niche: bool = False  # "something less known": this topic leans away from the best sellers
    anchors: tuple[str, ...] = ()  # "more like the second one": this topic's reference items, newest last
    soft_categories: tuple[tuple[str, ...], ...] = ()  # this topic's everyday-word preferences
    avoided_categories: tuple[tuple[str, ...], ...] = ()  # this topic's "not too scary" (a penalty)
    avoided_words: tuple[str, ...] = ()  # this topic's "not yellow", "nothing plastic" (a penalty)
    # Outcome of the latest ``apply`` (reset every turn):
    referenced: tuple[str, ...] = ()
    notes: tuple[Issue, ...] = ()
    topic_changed: bool = False

    # ------------------------------------------------------------------ views
    @property
    def query(self) -> str:
        """Free text for retrieval: this topic's query fragments, oldest first."""
        return " ".join(self.query_parts)

    @property
    def clarification(self) -> str | None:
        """The question to ask before searching (in the shopper's language), if the turn needs one."""
        for n in self.notes:
            if n.severity == "clarify":
                return n.text(self.language)
        return None

    @property
    def info(self) -> list[str]:
        """Things to mention in the reply (currency not converted, how "cheaper" was read...)."""
        return [n.text(self.language) for n in self.notes if n.severity == "info"]

    @property
    def topic_key(self) -> str:
        """Identifies the current topic (its categories) for the clarify-once-per-topic policy."""
        return "|".join(" > ".join(p) for p in self.constraints.categories) or "_general"

    # ------------------------------------------------------------------ transitions
    def apply(
        self,
        parsed: ParsedUtterance,
        *,
        intent: str | None = None,
        reference_prices: Sequence[float] | None = None,
        named_prices: Sequence[float | None] = (),
    ) -> DialogueState:
        """Fold one parsed utterance into a new state (pure: ``self`` is not modified). ``named_prices``:
        prices of items named as liked or as a model ("like the Cetaphil cleanser but cheaper")."""
        c = self.constraints
        d = _Draft(
            notes=list(parsed.issues),
            cats=c.categories,
            cats_out=c.categories_out,
            brands_in=c.brands_in,
            brands_out=c.brands_out,
            price_min=c.price_min,
            price_max=c.price_max,
            price_origin=self.price_origin,
            preference=self.price_preference,
            query_parts=self.query_parts,
            exclude=list(c.exclude_items),
        )
        language = parsed.language if parsed.language_confident or parsed.language == "zh" else self.language
        topic_changed = _revise_categories(d, parsed)
        _revise_brands(d, parsed)
        referenced, ref_notes = self._resolve(parsed.references)
        if parsed.price is not None:
            _explicit_price(d, parsed)
        elif parsed.relative_price is not None:  # "like the second one but cheaper": than that one
            named = [*named_prices, *self._prices_of(referenced)]
            self._relative_price(d, parsed.relative_price, reference_prices, named)
        if parsed.price_preference is not None and parsed.relative_price is None:
            d.preference = parsed.price_preference  # "nothing too expensive": ranking leans, no bound
        if parsed.exclude_shown:  # "something else"
            d.exclude.extend(self.last_shown)
        d.notes.extend(ref_notes)
        referenced = referenced or tuple(
            i for m in parsed.item_mentions if m.how == "shown" for i in m.item_ids
        )
        # Free text for turns that look for products: a reference turn is about a shown item ("is it
        # vegan?") unless it asks for more like it ("more like the second, matte") or adds a wish.
        about_shown = bool(parsed.references) and not parsed.similar and parsed.feedback is None
        if parsed.query and not about_shown and intent in (None, "recommend", "search", "bundle"):
            if parsed.categories_in and not parsed.additive:
                d.query_parts = (parsed.query,)
            elif parsed.query not in d.query_parts:
                d.query_parts = (*d.query_parts, parsed.query)[-MAX_QUERY_PARTS:]
        anchors = () if topic_changed else self.anchors
        if parsed.similar and referenced:
            anchors = (*(a for a in anchors if a not in referenced), *referenced)[-MAX_ANCHORS:]
        constraints = d.constraints(c)
        soft, avoided, shunned = self._kind_preferences(parsed, constraints, topic_changed)
        new = replace(
            self,
            constraints=constraints,
            query_parts=d.query_parts,
            turns=(*self.turns, Turn(parsed.text[:500], intent))[-MAX_TURNS:],
            focus=referenced or self.focus,
            language=language,
            currency_seen=parsed.currency or self.currency_seen,
            price_origin=d.price_origin if constraints.has_price else None,
            price_preference=d.preference,
            years=parsed.years or (None if parsed.era else self.years),  # "but newer": past the window
            era=parsed.era or self.era,
            # "less known" holds until the shopper asks for a kind of product again
            niche=parsed.niche or (self.niche and not topic_changed and not parsed.categories_in),
            anchors=anchors,
            soft_categories=soft,
            avoided_categories=avoided,
            avoided_words=shunned,
            referenced=referenced,
            notes=tuple(d.notes),
            topic_changed=topic_changed,
        )
        if referenced and parsed.feedback is not None:  # "I like the first one": the like button's transition
            for item_id in referenced:
                new = new.with_feedback(item_id, liked=parsed.feedback == "like")
        return new._with_mentions(parsed.item_mentions)

    def _kind_preferences(
        self, parsed: ParsedUtterance, constraints: Constraints, topic_changed: bool
    ) -> tuple[tuple[Path, ...], tuple[Path, ...], tuple[str, ...]]:
        """This topic's wanted and avoided kinds and avoided words (the last 8 of each): a new
        product type (not one of the wanted kinds) or topic restarts them, and so do new wanted kinds
        said while ruling out some of the old; a kind ruled out or avoided leaves the wanted, a kind or
        word wanted again the avoided."""
        new_type = bool(parsed.categories_in) and not parsed.additive
        # "a date night movie" then "with a bit of comedy": a kind among the wanted ones narrows to it
        # and keeps the others as leanings ("romantic comedies"); any other product type restarts them.
        narrowing = new_type and all(
            any(path_related(c, k) for k in self.soft_categories) for c in parsed.categories_in
        )
        keep = () if topic_changed or (new_type and not narrowing) else self.soft_categories
        drop = {p[-1] for p in (*constraints.categories_out, *parsed.avoided_categories) if p}
        kept, new_kinds = {p[-1] for p in keep}, {p[-1] for p in parsed.soft_categories}
        ruled_now = {p[-1] for p in (*parsed.categories_out, *parsed.avoided_categories) if p}
        if new_kinds and kept & ruled_now and not kept & new_kinds:
            keep = ()  # "something darker, not a comedy" after "for a family night": a new direction
        soft = tuple(p for p in dict.fromkeys([*keep, *parsed.soft_categories]) if p[-1] not in drop)
        wanted_now = {p[-1] for p in (*parsed.soft_categories, *parsed.categories_in)}
        kept_avoided = () if topic_changed else self.avoided_categories
        avoided = tuple(
            p for p in dict.fromkeys([*kept_avoided, *parsed.avoided_categories]) if p[-1] not in wanted_now
        )
        said = set(words(parsed.query.casefold()))
        kept_words = () if topic_changed else self.avoided_words
        shunned = tuple(w for w in dict.fromkeys([*kept_words, *parsed.avoided_words]) if w not in said)
        return soft[-8:], avoided[-8:], shunned[-8:]

    def _with_mentions(self, mentions: Sequence[ItemMention]) -> DialogueState:
        """Fold catalog items named in chat in (see the module docstring)."""
        if not mentions:
            return self
        new = self
        # "something like X" makes X a model of this topic, not a like: cards may not say "which
        # you liked" of it (a like said with "loved X" is seen; a model is not).
        models = [i for m in mentions if m.polarity == "like" and not m.seen for i in m.item_ids]
        for m in mentions:
            if m.polarity != "neutral" and not (m.polarity == "like" and not m.seen):
                for item_id in m.item_ids:
                    new = new.with_feedback(item_id, liked=m.polarity == "like")
        if models:
            new = replace(new, anchors=(*(a for a in new.anchors if a not in models), *models)[-MAX_ANCHORS:])
        named = [i for m in mentions for i in m.item_ids]
        had = [
            i
            for m in mentions
            if m.how != "shown" and (m.polarity != "neutral" or m.seen)
            for i in m.item_ids
        ]
        c = new.constraints
        if had:
            c = c.excluding(had)
        mentioned = (*(i for i in new.mentioned if i not in named), *dict.fromkeys(named))
        return replace(new, mentioned=mentioned, constraints=c)

    def _prices_of(self, item_ids: Sequence[str]) -> list[float]:
        """The known prices of ``item_ids`` among the items last shown."""
        prices = dict(zip(self.last_shown, self.last_shown_prices, strict=False))
        return [p for i in item_ids if (p := prices.get(i)) is not None]

    def _relative_price(
        self,
        d: _Draft,
        direction: str,
        reference_prices: Sequence[float] | None,
        named_prices: Sequence[float | None] = (),
    ) -> None:
        """ "cheaper" / "more expensive": beyond the items named in the message, else the page last
        shown; else a share of the median of ``reference_prices``; else only a soft preference."""
        named = [x for x in named_prices if x is not None and math.isfinite(x)]
        # the prices to beat: the items named, else the page shown
        beat = named or [x for x in self.last_shown_prices if x is not None and math.isfinite(x)]
        ref = beat or [x for x in (reference_prices or ()) if x is not None and math.isfinite(x)]
        basis = "basis_named" if named else "basis_shown" if beat else "basis_category"
        if not ref:
            d.preference = "low" if direction == "lower" else "high"
            key = "relative_price_low" if d.preference == "low" else "relative_price_high"
            d.notes.append(Issue.note("relative_price_soft", "info", key=key))
            return
        med = statistics.median(ref)
        if direction == "lower":
            if beat:
                _cheaper(d, min(beat), None, basis)
            else:
                _cheaper(d, CHEAPER_FACTOR * med, CHEAPER_FACTOR, basis)
            return
        floor = round(max(beat) if beat else PRICIER_FACTOR * med, 2)
        if d.price_min is not None:
            floor = max(floor, d.price_min)
        d.price_min = floor
        if d.price_max is not None and d.price_max < floor:
            d.price_max = None
        d.notes.append(_relative_rule("pricier", floor, None if beat else PRICIER_FACTOR, basis))
        d.price_origin, d.preference = "relative", "high"

    def _resolve(self, refs: Sequence[Reference]) -> tuple[tuple[str, ...], list[Issue]]:
        if not refs:
            return (), []
        shown = self.last_shown
        n = len(shown)
        if n == 0:
            if any(r.kind == "this" for r in refs) and self.focus:
                return self.focus, []
            return (), [Issue.note("reference_nothing_shown")]
        ids: list[str] = []
        bad: list[int] = []
        for r in refs:
            if r.kind == "index":
                for pos in r.positions:
                    if 0 <= pos < n:
                        ids.append(shown[pos])
                    else:
                        bad.append(pos + 1)
            elif r.kind == "last_n":
                ids.extend(shown[-max(1, r.count) :])
                if r.count > n:
                    bad.append(r.count)
            elif r.kind == "all":
                ids.extend(shown)
            elif r.kind in ("cheapest", "priciest"):
                priced = [
                    (p, i) for p, i in zip(self.last_shown_prices, shown, strict=False) if p is not None
                ]
                if not priced:
                    return (), [Issue.note("reference_no_prices", n=n)]
                ids.append((min if r.kind == "cheapest" else max)(priced)[1])
            elif r.kind == "this":
                if self.focus and all(f in shown for f in self.focus):
                    ids.extend(self.focus)
                elif n == 1:
                    ids.append(shown[0])
                else:
                    return (), [Issue.note("reference_ambiguous", n=n)]
        if bad:
            key = "reference_out_of_range_one" if n == 1 else "reference_out_of_range"
            return (), [Issue.note("reference_out_of_range", key=key, n=n)]
        return tuple(dict.fromkeys(ids)), []

    def record_shown(
        self, item_ids: Sequence[str], prices: Sequence[float | None] | None = None
    ) -> DialogueState:
        """Remember the list just shown (in order) so the next turn can point into it."""
        ids = tuple(str(i) for i in item_ids)
        if prices is None:
            prices_t: tuple[float | None, ...] = (None,) * len(ids)
        else:
            if len(prices) != len(ids):
                raise ValueError(f"got {len(prices)} prices for {len(ids)} shown items")
            prices_t = tuple(None if p is None or not math.isfinite(float(p)) else float(p) for p in prices)
        turns = self.turns
        if turns:
            turns = (*turns[:-1], replace(turns[-1], shown=ids))
        focus = tuple(f for f in self.focus if f in ids)
        return replace(self, last_shown=ids, last_shown_prices=prices_t, turns=turns, focus=focus)

    def record_cards(self, item_ids: Sequence[str]) -> DialogueState:
        """Remember the cards of a reply (any intent): ``last_items`` and the ``shown`` history."""
        ids = tuple(str(i) for i in item_ids)
        if not ids:
            return self
        shown = (*(i for i in self.shown if i not in ids), *ids)
        return replace(self, shown=shown, last_items=ids)

    def mark_clarified(self, key: str | None = None) -> DialogueState:
        """Record that a clarifying question was asked for ``key`` (default: the current topic)."""
        key = key or self.topic_key
        if key in self.clarifications_asked:
            return self
        return replace(self, clarifications_asked=(*self.clarifications_asked, key))

    def with_feedback(self, item_id: str, liked: bool) -> DialogueState:
        """Like / "not for me" on one item, from the UI's buttons or said in chat ("I like the first
        one"); a disliked item is also excluded from later pages."""
        likes = [i for i in self.liked if i != item_id]
        dislikes = [i for i in self.disliked if i != item_id]
        c = self.constraints
        if liked:
            likes.append(item_id)
            c = replace(c, exclude_items=tuple(i for i in c.exclude_items if i != item_id))
        else:
            dislikes.append(item_id)
            c = c.excluding([item_id])
        anchors = self.anchors if liked else tuple(a for a in self.anchors if a != item_id)
        return replace(self, liked=tuple(likes), disliked=tuple(dislikes), constraints=c, anchors=anchors)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "constraints": self.constraints.to_dict(),
            "query_parts": list(self.query_parts),
            "turns": [{"text": t.text, "intent": t.intent, "shown": list(t.shown)} for t in self.turns],
            "last_shown": list(self.last_shown),
            "last_shown_prices": list(self.last_shown_prices),
            "focus": list(self.focus),
            "liked": list(self.liked),
            "disliked": list(self.disliked),
            "shown": list(self.shown),
            "mentioned": list(self.mentioned),
            "last_items": list(self.last_items),
            "clarifications_asked": list(self.clarifications_asked),
            "language": self.language,
            "currency_seen": self.currency_seen,
            "price_origin": self.price_origin,
            "price_preference": self.price_preference,
            "years": None if self.years is None else list(self.years),
            "era": self.era,
            "niche": self.niche,
            "anchors": list(self.anchors),
            "soft_categories": [list(p) for p in self.soft_categories],
            "avoided_categories": [list(p) for p in self.avoided_categories],
            "avoided_words": list(self.avoided_words),
            "referenced": list(self.referenced),
            "notes": [n.to_dict() for n in self.notes],
            "topic_changed": self.topic_changed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogueState:
        if not isinstance(data, dict):
            raise ValueError(f"dialogue state must be a JSON object, got {type(data).__name__}")
        version = data.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"unsupported dialogue state version {version!r} (expected {STATE_VERSION})")
        try:
            language = data.get("language", "en")
            if language not in ("en", "zh"):
                raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
            return cls(
                constraints=Constraints.from_dict(data.get("constraints", {})),
                query_parts=tuple(str(q) for q in data.get("query_parts", ())),
                turns=tuple(
                    Turn(str(t["text"]), t.get("intent"), tuple(t.get("shown", ())))
                    for t in data.get("turns", ())
                ),
                last_shown=tuple(data.get("last_shown", ())),
                last_shown_prices=tuple(
                    None if p is None else float(p) for p in data.get("last_shown_prices", ())
                ),
                focus=tuple(data.get("focus", ())),
                liked=tuple(data.get("liked", ())),
                disliked=tuple(data.get("disliked", ())),
                shown=tuple(data.get("shown", ())),
                mentioned=tuple(data.get("mentioned", ())),
                last_items=tuple(data.get("last_items", ())),
                clarifications_asked=tuple(data.get("clarifications_asked", ())),
                language=language,
                currency_seen=data.get("currency_seen"),
                price_origin=data.get("price_origin"),
                price_preference=data.get("price_preference"),
                years=_years(data.get("years")),
                era=_era(data.get("era")),
                niche=bool(data.get("niche", False)),
                anchors=tuple(str(a) for a in data.get("anchors", ())),
                soft_categories=tuple(tuple(str(x) for x in p) for p in data.get("soft_categories", ())),
                avoided_categories=tuple(
                    tuple(str(x) for x in p) for p in data.get("avoided_categories", ())
                ),
                avoided_words=tuple(str(w) for w in data.get("avoided_words", ())),
                referenced=tuple(data.get("referenced", ())),
                notes=tuple(Issue.from_dict(n) for n in data.get("notes", ())),
                topic_changed=bool(data.get("topic_changed", False)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"invalid dialogue state: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> DialogueState:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"dialogue state is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

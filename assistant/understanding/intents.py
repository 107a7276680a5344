"""Rule-based intent classification (EN + ZH) and the clarifying-question policy.

Rules run in microseconds and never hallucinate; ``IntentResult.confidence`` tells the
orchestrator when to ask the LLM instead (``low_confidence``: below ``LOW_CONFIDENCE``).

Intents and their cues, checked in this order (first hit wins):

1. ``clarify``: nothing readable (empty, only punctuation/emoji) or only a confused reply
   ("hmm", "huh?", "what do you mean", "嗯", "什么意思") with no shopping content.
2. ``refuse``: prompt injection ("ignore your instructions", "what's your system prompt",
   "developer mode", "忽略之前的指令", "系统提示") and requests for another user's data
   ("another user's history", "what did user 42 buy", "别人的购买记录") always (the rules are
   ``assistant.understanding.safety``, shared with the assistant's own check); off-topic
   requests (weather, politics, code, homework, maths, jokes, translation, "天气", "写代码",
   "作业") only when the message has no shopping content ("moisturizer for cold weather" is
   shopping). ``refuse_reason`` is "injection", "private" or "offtopic".
3. ``compare``: "compare", "vs", "versus", "difference between", "which is better", "pros and
   cons", "比较", "对比", "区别", "哪个好"; or two referenced items joined by "or".
4. ``bundle``: "what goes with", "pair with", "bundle", "starter set", "kit", "routine",
   "complete the look", "搭配", "套装", "配什么", "一套".
5. ``details``: "tell me more about", "details", "ingredients", "how big", "what size",
   "how much is", "reviews of", "is it vegan/waterproof...", "详情", "介绍一下", "成分", "多大",
   "怎么样"; or a reference to a shown item asked as a question ("the second one?").
6. ``smalltalk``: greetings, thanks, goodbyes, "how are you", "who are you", "你好", "谢谢",
   "再见" with no shopping content.
7. ``search``: "show me", "find", "search for", "looking for", "do you have/sell", "is there",
   "找", "搜索", "有没有", "给我看".
8. ``recommend``: "recommend", "suggest", "what should I buy", "gift", "best", "推荐", "建议",
   "送礼"; and the default for any shopping content (a category, brand, price, "something
   else", "cheaper"). With no content at all the default is still ``recommend`` but with low
   confidence.

``needs_clarification`` is the deliberate policy for asking alongside the items, and
``has_searchable_content`` says when there is nothing to search (ask only then); see their docstrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from assistant.reply import INTENTS, Intent
from assistant.understanding import lexicon
from assistant.understanding.cues import small_talk_sentences
from assistant.understanding.facets import CatalogFacets, Facet
from assistant.understanding.safety import INJECTION, OTHER_USERS
from assistant.understanding.utterance import ParsedUtterance
from assistant.understanding.works import blank_titled_works
from retrieval.filters import Constraints, PricePreference
from retrieval.hybrid import is_vague
from retrieval.text import Language, words

__all__ = [
    "INTENTS",
    "LOW_CONFIDENCE",
    "ClarificationState",
    "IntentResult",
    "classify_intent",
    "has_searchable_content",
    "is_closing",
    "needs_clarification",
]

LOW_CONFIDENCE = 0.6
RefuseReason = Literal["injection", "private", "offtopic"]


@dataclass(frozen=True)
class IntentResult:
    """The chosen intent, how sure the rules are, and the cue that decided it."""

    intent: Intent
    confidence: float
    cue: str = ""
    refuse_reason: RefuseReason | None = None

    @property
    def low_confidence(self) -> bool:
        return self.confidence < LOW_CONFIDENCE


def _cue(key: str) -> re.Pattern[str]:
    """An intent's cue phrases (``data/intent_cues.yaml``)."""
    return lexicon.cue("intent_cues", key)


_ALNUM = re.compile(r"[^\W_]", re.UNICODE)


def is_closing(text: str) -> bool:
    """Does a small-talk message close the talk ("thanks, bye!", "谢谢")? A question keeps it open
    ("thanks! what else can you do?")."""
    return bool(_cue("closing").search(text)) and not re.search(r"[?？]", text)


def _paths(mention: object) -> tuple[tuple[str, ...], ...]:
    return tuple(getattr(getattr(mention, "resolved", None), "paths", ()) or ())


def _outside_mentions(text: str, parsed: ParsedUtterance | None) -> str:
    """The text with brand/category mentions and titled works blanked, so a catalog name that
    contains a cue word ("Hair Cutting Kits", "Sets & Kits", the brand "Pac-Kit", "Freddy vs.
    Jason (2003)") is not read as that cue."""
    if parsed is None or not parsed.mentions:
        return blank_titled_works(text)
    src = parsed.text  # mention offsets index the parser's cleaned text
    chars = list(blank_titled_works(src))
    strong = {p for m in parsed.mentions if not getattr(m.resolved, "weak", False) for p in _paths(m)}
    for m in parsed.mentions:
        # A weak word ("set") is a catalog name only as part of a strong mention's node
        # ("nail tools sets & kits"); alone it keeps its cue ("a starter set").
        if not getattr(m.resolved, "weak", False) or strong & set(_paths(m)):
            chars[m.start : m.end] = " " * (m.end - m.start)
    return "".join(chars)


def classify_intent(text: str, parsed: ParsedUtterance | None = None) -> IntentResult:
    """Classify one utterance; pass its ``ParsedUtterance`` so shopping content is recognised."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:2000]
    content = bool(parsed and (parsed.has_reading or parsed.mentions))
    refs = parsed.references if parsed else ()

    if not _ALNUM.search(text):
        return IntentResult("clarify", 0.9, "empty")
    if m := INJECTION.search(text):
        return IntentResult("refuse", 0.95, m.group(), "injection")
    if m := OTHER_USERS.search(text):
        return IntentResult("refuse", 0.9, m.group(), "private")
    if (m := _cue("offtopic").search(text)) and not content:
        return IntentResult("refuse", 0.85, m.group(), "offtopic")
    plain = blank_titled_works(text)  # cue words inside "Freddy vs. Jason (2003)" are a name
    if m := _cue("compare").search(plain):
        return IntentResult("compare", 0.9, m.group())
    n_refs = sum(max(len(r.positions), r.count, 1) for r in refs)
    if n_refs >= 2 and re.search(r"\bor\b|\bwhich\b|还是|或者|哪|[??]", text, re.I):
        return IntentResult("compare", 0.75, "two references")
    if m := _cue("bundle").search(_outside_mentions(text, parsed)):
        return IntentResult("bundle", 0.85, m.group())
    if m := _cue("details").search(plain):
        return IntentResult("details", 0.85, m.group())
    # "is the second one waterproof?" asks about it; "the first one looks nice but do you have one
    # with glitter?" asks for another item with a wish.
    wish_beside = bool(parsed and parsed.query and _cue("search").search(text))
    moves_on = parsed and (parsed.exclude_shown or parsed.similar)
    if refs and re.search(r"[??]\s*$", text) and not moves_on and not wish_beside:
        return IntentResult("details", 0.7, "reference question")
    # "Thanks for the suggestions!" asks for none: a wish said inside small talk is no wish
    chat = list(plain)
    for a, b in small_talk_sentences(plain):
        chat[a:b] = " " * (b - a)
    asking = "".join(chat)
    asks = _cue("search").search(asking) or _cue("recommend").search(asking) or _cue("wish").search(asking)
    # "sure, red please": a greeting word before a wish is no small talk
    said = parsed is not None and not is_vague(parsed.query)
    if (m := _cue("smalltalk").search(plain)) and not content and not asks and not said:
        # "hello! I need something for dry skin" greets and asks: the request wins
        return IntentResult("smalltalk", 0.9, m.group())
    if (m := _cue("confused").search(plain)) and not content:
        return IntentResult("clarify", 0.8, m.group())
    if m := _cue("search").search(plain):
        return IntentResult("search", 0.8, m.group())
    if m := _cue("recommend").search(plain):
        return IntentResult("recommend", 0.85, m.group())
    if content or (parsed and parsed.query):
        conf = 0.75 if content else 0.55
        return IntentResult("recommend", conf, "shopping content" if content else "free text")
    return IntentResult("recommend", 0.4, "default")


def _descriptive_words(parsed: ParsedUtterance) -> list[str]:
    """Query words that are not brand/category mentions ("red", "matte", "for dry skin")."""
    mention_words: set[str] = set()
    for m in parsed.mentions:
        mention_words.update(w.casefold() for w in words(parsed.text[m.start : m.end]))
        # ... and its catalog name, which the query carries for a type said in Chinese ("口红")
        name = getattr(m.resolved, "name", None) or getattr(m.resolved, "brand", "")
        mention_words.update(w.casefold() for w in words(name))
    out = []
    for w in words(parsed.query):
        if w.casefold() in mention_words:
            continue
        # CJK queries have no spaces: count each leftover run of 2+ characters as a word.
        if len(w) >= 3 or (len(w) >= 2 and not w.isascii()):
            out.append(w)
    return out


class ClarificationState(Protocol):
    """What ``needs_clarification`` reads of the conversation (``DialogueState`` has all of it):
    understanding reads the state without importing the module that folds utterances into it."""

    @property
    def constraints(self) -> Constraints: ...
    @property
    def query_parts(self) -> tuple[str, ...]: ...
    @property
    def clarifications_asked(self) -> tuple[str, ...]: ...
    @property
    def language(self) -> Language: ...
    @property
    def price_preference(self) -> PricePreference | None: ...
    @property
    def topic_key(self) -> str: ...
    @property
    def soft_categories(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def avoided_categories(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def anchors(self) -> tuple[str, ...]: ...
    @property
    def years(self) -> tuple[int, int] | None: ...
    @property
    def era(self) -> str | None: ...
    @property
    def niche(self) -> bool: ...
    @property
    def query(self) -> str: ...


def has_searchable_content(state: ClarificationState, parsed: ParsedUtterance) -> bool:
    """Whether there is anything to search for: a word of the topic's query that is not filler
    ("something", "recommend"), a constraint in force, a year range, a reference to shown items,
    kinds to prefer or spare ("nothing too scary") or items named as models ("something like Pulp
    Fiction please"). "hi", "help me shop" and "recommend something" have none; "a gift", "a movie"
    and "hair dye" do."""
    if parsed.references or parsed.exclude_shown or parsed.years or state.years or state.era or state.niche:
        return True
    if state.anchors:
        return True
    if state.soft_categories or state.avoided_categories:
        return True
    c = state.constraints
    if c.has_price or c.brands_in or c.brands_out or c.categories or c.categories_out:
        return True
    return not is_vague(state.query)


def needs_clarification(
    state: ClarificationState,
    parsed: ParsedUtterance,
    user_known: bool,
    *,
    intent: str | None = None,
    facets: CatalogFacets | None = None,
) -> tuple[Facet, ...]:
    """The facets worth a question after this turn's items; empty = ask nothing.

    Policy: the question goes *with* the items, never instead of them (a shopper who said
    anything searchable gets results straight away; with nothing to search, as
    ``has_searchable_content`` decides, the catalog's opening question goes with what most shoppers
    have). Ask only a *cold* shopper
    (``user_known`` False: no purchase history) who gave too little to rank well - fewer than two
    constraints counted over the conversation so far (price or price preference, brand, category,
    descriptive words such as "matte" or "for dry skin") - and only for a product-finding turn
    (recommend/search, not a refinement such as "cheaper", "something else" or "the second one").
    At most once per topic: pass the state *after* ``apply`` and call ``state.mark_clarified()``
    when you ask. Never asks a known user: their history already tells the ranker what they like.
    The facets returned are the ones the catalog has (``facets``, e.g. ``vocab.facets``: no brand
    or colour for movies, no price without prices) and the conversation has not settled; the
    planner keeps those that split its candidates (``CatalogFacets.splitting``) and words them.
    """
    facets = facets or CatalogFacets()
    if user_known:
        return ()
    if intent is not None and intent not in ("recommend", "search"):
        return ()
    if parsed.references or parsed.exclude_shown or parsed.relative_price:
        return ()
    if any(i.severity == "clarify" for i in parsed.issues):  # the state already asks about that
        return ()
    if state.topic_key in state.clarifications_asked:
        return ()
    c = state.constraints
    has_price = c.has_price or state.price_preference is not None
    has_brand = bool(c.brands_in or c.brands_out)
    has_category = bool(c.categories)
    descriptive = _descriptive_words(parsed)
    if sum((has_price, has_brand, has_category, bool(descriptive) or len(state.query_parts) > 1)) >= 2:
        return ()
    colours = lexicon.words("vocabulary", "colour_words")
    settled = {
        "kind": has_category,
        "price": has_price,
        "brand": has_brand,
        "decade": state.years is not None,
        "colour": any(w.casefold() in colours for w in descriptive),
    }
    return tuple(f for f in facets.available if not settled[f])

"""Per-item reasons built only from evidence: ranker signals, the user's history, co-purchases,
the constraints the item meets, and review quotes.

Every reason names its evidence ("like <title> you bought", "bought together
with <title> by 12 shoppers", "under $20", a quoted review line), and reasons
are ordered by how much their signal contributed to the item's fused score. A
reason claims only what is true of the shopper: "you bought" for their purchase
history, "you liked" for a like, "shown earlier" for an item a reply only showed.
Reasons are written in the shopper's language (``prompts/templates/reasons``).
The LLM may rephrase these lines but never adds to them; the cards show them as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from assistant.understanding.safety import INJECTION, OTHER_USERS
from prompts import ReplyStrings, load_strings
from retrieval.data.schema import Item
from retrieval.filters import Constraints
from retrieval.text import MINOR_WORDS, STOPWORDS, format_money, split_sentences, tokenize

MAX_REASONS = 4
MAX_QUOTE = 90
HISTORY_SIM_MIN = 0.45  # cosine above which a history item is "similar" enough to name
# Words too common to make a review sentence relevant to the query.
_QUOTE_STOP = STOPWORDS | MINOR_WORDS

# Ranker signal names -> the evidence family they stand for (matched by substring).
SIGNAL_FAMILIES: tuple[tuple[str, str], ...] = (
    ("dense", "relevance"),
    ("semantic", "relevance"),
    ("vector", "relevance"),
    ("bm25", "relevance"),
    ("lexical", "relevance"),
    ("relevance", "relevance"),
    ("hybrid", "relevance"),
    ("retriev", "relevance"),
    ("cf", "personal"),
    ("collab", "personal"),
    ("sasrec", "personal"),
    ("ease", "personal"),
    ("itemknn", "personal"),
    ("knn", "personal"),
    ("seq", "personal"),
    ("session", "personal"),
    ("user", "personal"),
    ("pop", "popularity"),
    ("rating", "rating"),
    ("liked", "liked"),
    ("feedback", "liked"),
    ("constraint", "constraints"),
    ("soft", "constraints"),
    ("complement", "cobought"),
    ("cooc", "cobought"),
)


def signal_family(signal: str) -> str:
    s = signal.casefold()
    for key, fam in SIGNAL_FAMILIES:
        if key in s:
            return fam
    return "other"


# What a history item is to the shopper: in their purchase history, liked in this chat, or only
# shown by an earlier reply (a new shopper's session history is that).
Relation = Literal["bought", "liked", "named", "shown"]
_HISTORY_KEYS = {
    "bought": "history_bought",
    "liked": "history_liked",
    "named": "history_named",
    "shown": "history_shown",
}


@dataclass
class Evidence:
    """Facts about one candidate, gathered by the assistant from its indexes."""

    contributions: Mapping[str, float] = field(default_factory=dict)
    # Most similar item of the history the ranker used (item, cosine), and what it is to the
    # shopper (also what the history as a whole is, when no neighbour is close enough to name).
    history_neighbor: tuple[Item, float] | None = None
    history_relation: Relation = "bought"
    # A session-liked item this one resembles (item, cosine).
    liked_neighbor: tuple[Item, float] | None = None
    # A history/session item often bought with this one (item, number of shoppers).
    co_bought: tuple[Item, int] | None = None
    popularity: int | None = None  # shoppers in the log who have it
    query: str = ""
    # What the shopper typed in this chat: a query word they did not type (a need's search word,
    # a film mood's genre, the English of a Chinese word) is "what you described", not "as you asked".
    said: str = ""


def constraint_reasons(
    item: Item, constraints: Constraints, currency: str | None = "USD", lang: str = "en"
) -> list[str]:
    """Which of the shopper's hard constraints this item meets, in the shopper's terms."""
    s = load_strings("reasons", lang)
    out: list[str] = []
    if constraints.price_max is not None and item.price is not None:
        out.append(s.format("under", money=format_money(constraints.price_max, currency, trim_cents=True)))
    elif constraints.price_min is not None and item.price is not None:
        out.append(s.format("over", money=format_money(constraints.price_min, currency, trim_cents=True)))
    if constraints.brands_in and item.brand:
        out.append(s.format("brand_asked", names=item.brand))
    if constraints.brands_out:
        out.append(s.format("brands_out", names=or_names(constraints.brands_out, lang)))
    if constraints.categories and item.categories:
        for path in constraints.categories:
            if any(q[: len(path)] == path for q in item.paths):
                out.append(s.format("in_category", names=path[-1]))
                break
    if constraints.in_stock:
        out.append(s.format("in_stock"))
    return out


def or_names(names: Sequence[str], lang: str) -> str:
    """ "A or B" in the shopper's language, each name once ("Shampoos" sits under several parents)."""
    return ("或" if lang == "zh" else " or ").join(dict.fromkeys(names))


# Review text addressed to the assistant or about other shoppers (planted instructions), never quoted.
_UNQUOTABLE = re.compile(
    r"\b(?:new|updated|hidden)\s+(?:instructions?|rules)\b|\breveal\b|\border\s+history\b|\bassistant\b|#{2,}|<\|",
    re.I,
)


def review_quote(item: Item, query: str = "", max_len: int = MAX_QUOTE) -> str | None:
    """The review sentence sharing most words with the query (none when nothing overlaps)."""
    q = {w for w in tokenize(query) if w not in _QUOTE_STOP and len(w) > 2}
    best, best_score = None, 0.0
    for review in item.reviews:
        for sent in split_sentences(review):
            if (
                len(sent) < 12
                or _UNQUOTABLE.search(sent)
                or INJECTION.search(sent)
                or OTHER_USERS.search(sent)
            ):
                continue  # a "review" that talks to the assistant is no evidence to quote
            words = {w for w in tokenize(sent) if w not in _QUOTE_STOP}
            score = len(q & words) + 0.5 * sum(
                any(w.startswith(x[:5]) for w in words) for x in q if len(x) > 5
            )
            if score > best_score:
                best, best_score = sent, score
    if best is None:
        return None
    if len(best) > max_len:
        best = best[: max_len - 1].rsplit(" ", 1)[0] + "…"
    return best


def build_reasons(
    item: Item,
    evidence: Evidence,
    constraints: Constraints,
    currency: str | None = "USD",
    max_reasons: int = MAX_REASONS,
    lang: str = "en",
) -> list[str]:
    """Reasons for one card, strongest signal first; each one cites real evidence."""
    s = load_strings("reasons", lang)
    contrib: dict[str, float] = {}
    for sig, val in evidence.contributions.items():
        fam = signal_family(sig)
        contrib[fam] = contrib.get(fam, 0.0) + float(val)
    candidates: list[tuple[float, str]] = []

    def add(weight: float, text: str | None) -> None:
        if text:
            candidates.append((weight, text))

    personal = contrib.get("personal", 0.0)
    if evidence.history_neighbor and evidence.history_neighbor[1] >= HISTORY_SIM_MIN:
        hist, _ = evidence.history_neighbor
        add(personal + 0.5, s.format(_HISTORY_KEYS[evidence.history_relation], title=_short(hist.title)))
    elif personal > 0:
        add(personal, s.format("fits_purchases" if evidence.history_relation == "bought" else "fits_session"))
    if evidence.liked_neighbor and evidence.liked_neighbor[1] >= HISTORY_SIM_MIN:
        add(
            contrib.get("liked", 0.0) + 0.6,
            s.format("history_liked", title=_short(evidence.liked_neighbor[0].title)),
        )
    if evidence.co_bought and evidence.co_bought[1] > 0:
        add(contrib.get("cobought", 0.0) + 0.4, co_bought_reason(*evidence.co_bought, s))
    relevance = contrib.get("relevance", 0.0)
    if relevance > 0 and evidence.query.strip():
        quote = review_quote(item, evidence.query)
        words = matched_words(item, evidence.query)
        typed = set(tokenize(evidence.said))
        asked = [w for w in words if set(tokenize(w)) <= typed]
        described = [w for w in words if w not in asked]
        if quote:
            add(relevance, s.format("review", quote=quote))
        elif not words:
            add(relevance, s.format("matches"))
        if asked and not quote:
            add(relevance, s.format("matches_words", words=_quoted(asked, lang)))
        if described and not quote:
            add(relevance - 0.01, s.format("matches_described", words=_quoted(described, lang)))
    for i, text in enumerate(constraint_reasons(item, constraints, currency, lang)):
        add(0.3 + contrib.get("constraints", 0.0) - 0.01 * i, text)
    if contrib.get("rating", 0.0) > 0 and item.rating is not None:
        add(contrib["rating"], s.format("rated", rating=f"{item.rating:.1f}"))
    if contrib.get("popularity", 0.0) > 0 and evidence.popularity:
        add(contrib["popularity"], s.format("popular", n=evidence.popularity))
    candidates.sort(key=lambda t: -t[0])
    out: list[str] = []
    for _, text in candidates:
        if text not in out:
            out.append(text)
        if len(out) >= max_reasons:
            break
    return out


def _quoted(words: Sequence[str], lang: str) -> str:
    return (", " if lang == "en" else "、").join(f"“{w}”" if lang == "zh" else f'"{w}"' for w in words)


def matched_words(item: Item, query: str, limit: int = 3) -> list[str]:
    """The shopper's own words (as said) that the item's title, description or reviews contain:
    the soft preferences this card answers, so the reason names them instead of "matches". Its
    category and brand do not count: "in <category>" is its own reason, and a card in Body Scrubs
    whose title is "Cuticle Remover" does not say "body scrubs"."""
    have = set(tokenize(" ".join((item.title, item.description or "", *item.reviews[:2]))))
    out: list[str] = []
    said: set[tuple[str, ...]] = set()  # "hand" and "Hand" (the category's name) are one word
    for word in dict.fromkeys(query.split()):
        terms = tokenize(word)
        fresh = tuple(terms) not in said
        if terms and terms[0] not in STOPWORDS and all(t in have for t in terms) and word.isalpha() and fresh:
            said.add(tuple(terms))
            out.append(word)
        if len(out) == limit:
            break
    return out


def co_bought_reason(other: Item, shoppers: int, strings: ReplyStrings) -> str:
    """ "bought together with <title> by N shoppers", in ``strings``' language."""
    key = "cobought_one" if shoppers == 1 else "cobought"
    return strings.format(key, title=_short(other.title), n=shoppers)


def _short(title: str, n: int = 60) -> str:
    return title if len(title) <= n else title[: n - 1].rsplit(" ", 1)[0] + "…"


def format_card(rank: int, item: Item, reasons: Sequence[str], currency: str | None = "USD") -> str:
    """One candidate line for the LLM prompt: id, exact title, facts and the allowed reasons."""
    facts = []
    if item.brand:
        facts.append(f"brand {item.brand}")
    if item.price is not None:
        facts.append(f"price {format_money(item.price, currency, trim_cents=True)}")
    if item.categories:
        facts.append(item.categories[-1])
    if item.rating is not None:
        facts.append(f"rating {item.rating:.1f}")
    why = "; ".join(reasons) if reasons else "-"
    return f"{rank}. [id={item.item_id}] {item.title} ({', '.join(facts)}). Why: {why}"

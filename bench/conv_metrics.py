"""Conversational recommendation metrics over recorded transcripts (pure functions).

A ``Dialogue`` is what one simulated shopper and one system said to each other; every metric
here is a plain function of a list of them (plus the catalog where a fact must be looked
up), so each can be checked against numbers computed by hand.

* Hit@k: the target was among the first ``k`` items shown in some turn <= ``max_turns``.
* AT@k (average turns): mean turn of the first hit; a failure counts as ``max_turns + 1``.
* Hit@k by turn t: share of dialogues with a hit at or before turn t (the curve in the plot).
* Constraint satisfaction: share of shown catalog items that satisfy ``Constraints.matches``
  of what the *shopper* stated by that turn (the simulator's ground truth, not the parse).
* Error rates per shown item: out of catalogue, duplicate (same id earlier in the same list),
  already bought (in the shopper's history).
* Unsupported claims: turns whose reply text states a price or brand the shown items and the
  shopper's own filters do not support (``assistant.grounding.GroundingChecker``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from retrieval.data.schema import Catalog
from retrieval.filters import Constraints

DEFAULT_K = 5
CLAIM_KINDS = ("price_mismatch", "brand_mismatch")


@dataclass
class TurnRecord:
    """One exchange: the shopper's message and what the system showed and said."""

    turn: int  # 1-based
    user_text: str
    shown: list[str]
    intent: str = "recommend"
    reply_text: str = ""
    constraints: Constraints = field(default_factory=Constraints)  # ground truth stated so far
    facets: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    tokens: int | None = None
    unsupported_claims: int = 0  # price/brand statements the catalog does not support
    ungrounded: int = 0  # any grounding violation (names, ids, prices, brands)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["constraints"] = {k: v for k, v in self.constraints.to_dict().items() if v not in (None, [], ())}
        return d


@dataclass
class Dialogue:
    """One simulated conversation with one system."""

    system: str
    user_id: str
    target_id: str
    history: list[str]
    turns: list[TurnRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "user_id": self.user_id,
            "target_id": self.target_id,
            "history_len": len(self.history),
            "first_hit": first_hit(self),
            "turns": [t.to_dict() for t in self.turns],
        }


# --- success ------------------------------------------------------------------------------
def first_hit(d: Dialogue, k: int = DEFAULT_K, max_turns: int | None = None) -> int | None:
    """Turn number (1-based) of the first turn that showed the target in its top ``k``, else None."""
    for t in d.turns:
        if max_turns is not None and t.turn > max_turns:
            break
        if d.target_id in t.shown[:k]:
            return t.turn
    return None


def hit_rate(dialogues: Sequence[Dialogue], k: int = DEFAULT_K, max_turns: int = 5) -> float:
    _need(dialogues)
    return float(np.mean([first_hit(d, k, max_turns) is not None for d in dialogues]))


def average_turns(dialogues: Sequence[Dialogue], k: int = DEFAULT_K, max_turns: int = 5) -> float:
    """AT@k: mean first-hit turn, failures counted as ``max_turns + 1``."""
    _need(dialogues)
    turns = [first_hit(d, k, max_turns) or (max_turns + 1) for d in dialogues]
    return float(np.mean(turns))


def hit_by_turn(dialogues: Sequence[Dialogue], k: int = DEFAULT_K, max_turns: int = 5) -> list[float]:
    """Cumulative Hit@k after turns 1..max_turns."""
    _need(dialogues)
    hits = [first_hit(d, k, max_turns) for d in dialogues]
    return [float(np.mean([h is not None and h <= t for h in hits])) for t in range(1, max_turns + 1)]


# --- list quality ---------------------------------------------------------------------------
def constraint_satisfaction(
    dialogues: Sequence[Dialogue], catalog: Catalog, k: int = DEFAULT_K
) -> dict[str, float | int | None]:
    """Shown catalog items meeting the shopper's stated constraints (items; and whole turns)."""
    checked = ok = turns = turns_ok = 0
    for d in dialogues:
        for t in d.turns:
            items = [catalog[i] for i in t.shown[:k] if i in catalog]
            if not items:
                continue
            good = [t.constraints.matches(it) for it in items]
            checked += len(good)
            ok += sum(good)
            turns += 1
            turns_ok += all(good)
    return {
        "items": checked,
        "item_rate": ok / checked if checked else None,
        "turn_rate": turns_ok / turns if turns else None,
        "violations": checked - ok,
    }


def error_rates(
    dialogues: Sequence[Dialogue], catalog: Catalog, k: int = DEFAULT_K
) -> dict[str, float | None]:
    """Per shown item: out of catalogue, duplicate within the list, already in the shopper's history."""
    shown = ooc = dup = bought = 0
    for d in dialogues:
        hist = set(d.history)
        for t in d.turns:
            seen: set[str] = set()
            for i in t.shown[:k]:
                shown += 1
                ooc += i not in catalog
                dup += i in seen
                bought += i in hist
                seen.add(i)
    if not shown:
        return {"out_of_catalogue_rate": None, "duplicate_rate": None, "already_bought_rate": None}
    return {
        "out_of_catalogue_rate": ooc / shown,
        "duplicate_rate": dup / shown,
        "already_bought_rate": bought / shown,
    }


# --- text, dialogue behaviour, cost ---------------------------------------------------------
def count_unsupported_claims(
    checker: Any,
    text: str,
    shown_items: Sequence[Any],
    query: str,
    stated: Constraints,
    history_items: Sequence[Any] = (),
) -> tuple[int, int]:
    """(price/brand claims not supported, all grounding violations) in ``text``.

    Reuses ``assistant.grounding.GroundingChecker``: the reply may state the shown items'
    prices and brands and the shopper's own price bounds and brands. A shown item's title, or
    one of the shopper's own past items (``history_items``: "like X you bought"), quoted
    verbatim states nothing beyond the catalog (a title may name another brand, "... for OPI
    tips"), so such quotes are not checked as claims; the history items' brands may be named.
    """
    if not text.strip():
        return 0, 0
    from assistant.grounding import GroundingContext

    titles = {str(getattr(it, "title", "") or "") for it in (*shown_items, *history_items)}
    for title in sorted(titles, key=len, reverse=True):
        if len(title) >= 8:
            text = re.sub(re.escape(title), " [item] ", text, flags=re.IGNORECASE)
    if "…" in text:  # a title cut short for the reply ("Sexy Little Things NOIR by…")
        for title in sorted(titles, key=len, reverse=True):
            for cut in range(len(title) - 1, 11, -1):
                head = title[:cut].rstrip() + "…"
                if head in text:
                    text = text.replace(head, " [item] ")
                    break

    allowed = [
        *_spellings(checker, [*stated.brands_in, *stated.brands_out]),
        *(b for b in (getattr(it, "brand", None) for it in history_items) if b),
    ]
    # Names the reply may use as such: the allowed brands ("Biolage by Matrix" is not the brand
    # "Matrix") and the category names of the stated filters and shown items ("in Skin Care" is
    # no claim about the brand "Skin Care").
    names = {*allowed, *(n for p in stated.categories for n in p)}
    names |= {n for it in shown_items for n in (getattr(it, "categories", None) or ())}
    for name in sorted(names, key=len, reverse=True):
        if len(name) >= 3:
            text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " [name] ", text, flags=re.IGNORECASE)
    prices = [p for p in (stated.price_min, stated.price_max) if p is not None]
    ctx = GroundingContext(
        list(shown_items),
        query=query,
        allowed_prices=prices,
        allowed_brands=allowed,
    )
    violations = checker.check(text, ctx)
    return sum(v.kind in CLAIM_KINDS for v in violations), len(violations)


def _spellings(checker: Any, brands: Sequence[str]) -> list[str]:
    """``brands`` and every catalog spelling of them ("Its a 10" = "It's a 10" = "ITS A 10")."""
    if not brands:
        return []
    from assistant.understanding.tokens import normalize

    catalog = getattr(checker, "catalog", None)
    known = catalog.brands() if catalog is not None else []
    wanted = {normalize(b) for b in brands}
    same = [b for b in known if normalize(b) in wanted]
    # Sub-lines too ("Nivea" -> "Nivea Men"), as the simulator's ground truth reads a brand.
    from bench.simulator import brand_family

    family = [f for b in dict.fromkeys([*brands, *same]) for f in brand_family(b, known)]
    return list(dict.fromkeys([*brands, *same, *family]))


def _turns(dialogues: Sequence[Dialogue]) -> list[TurnRecord]:
    return [t for d in dialogues for t in d.turns]


def text_rates(dialogues: Sequence[Dialogue]) -> dict[str, float | None]:
    """Share of replies with text that make an unsupported price/brand claim (or any violation)."""
    with_text = [t for t in _turns(dialogues) if t.reply_text.strip()]
    if not with_text:
        return {"unsupported_claim_rate": None, "ungrounded_rate": None}
    return {
        "unsupported_claim_rate": float(np.mean([t.unsupported_claims > 0 for t in with_text])),
        "ungrounded_rate": float(np.mean([t.ungrounded > 0 for t in with_text])),
    }


def clarify_rate(dialogues: Sequence[Dialogue]) -> float | None:
    turns = _turns(dialogues)
    return float(np.mean([t.intent == "clarify" for t in turns])) if turns else None


def latency(dialogues: Sequence[Dialogue]) -> dict[str, float | None]:
    lat = [t.latency_s for t in _turns(dialogues)]
    if not lat:
        return {"latency_p50_s": None, "latency_p95_s": None}
    return {"latency_p50_s": float(np.percentile(lat, 50)), "latency_p95_s": float(np.percentile(lat, 95))}


def tokens_per_turn(dialogues: Sequence[Dialogue]) -> float | None:
    toks = [t.tokens for t in _turns(dialogues) if t.tokens is not None]
    return float(np.mean(toks)) if toks else None


def summarize(
    dialogues: Sequence[Dialogue], catalog: Catalog, k: int = DEFAULT_K, max_turns: int = 5
) -> dict[str, Any]:
    """Every metric for one system, under the keys the report uses."""
    _need(dialogues)
    cs = constraint_satisfaction(dialogues, catalog, k)
    turns = _turns(dialogues)
    return {
        f"hit@{k}": hit_rate(dialogues, k, max_turns),
        f"at@{k}": average_turns(dialogues, k, max_turns),
        f"hit@{k}_by_turn": hit_by_turn(dialogues, k, max_turns),
        "constraint_satisfaction": cs["item_rate"],
        "constraint_satisfaction_turns": cs["turn_rate"],
        "constraint_violations": cs["violations"],
        **error_rates(dialogues, catalog, k),
        **text_rates(dialogues),
        "clarify_rate": clarify_rate(dialogues),
        **latency(dialogues),
        "tokens_per_turn": tokens_per_turn(dialogues),
        "dialogues": len(dialogues),
        "turns": len(turns),
        "turns_per_dialogue": len(turns) / len(dialogues),
    }


def _need(dialogues: Sequence[Dialogue]) -> None:
    if not dialogues:
        raise ValueError("no dialogues to score")

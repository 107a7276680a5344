"""The one prompt of the understanding LLM: (compact dialogue state, shopper message) -> the
``ConstraintUpdate`` JSON. The product's JSON fallback (``assistant.understanding_stage``) and the
fine-tuning data (``finetune generate --task understand``) both build it here, so an adapter is
served exactly the text it was trained on.

Also ``update_from_parse``: the rules' reading (``ParsedUtterance``) projected onto the same
``ConstraintUpdate``, so rules and LLMs are scored on one schema (``finetune evaluate --task
understand``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import prompts
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.utterance import ParsedUtterance
from llm.messages import to_chat_dicts
from retrieval.text import detect_language

__all__ = [
    "MAX_SHOWN",
    "UnderstandContext",
    "understand_chat",
    "understand_messages",
    "understand_prompt",
    "update_from_parse",
    "update_json",
]

MAX_SHOWN = 5
"""Titles of the last shown list the prompt numbers (the references the model may resolve)."""
_TITLE_CHARS = 48


@dataclass(frozen=True)
class UnderstandContext:
    """What the conversation holds before the message: product types, brands and price so far,
    and the titles of the last shown list in display order (1-based in the prompt)."""

    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    shown: tuple[str, ...] = ()

    @classmethod
    def from_state(cls, state: Any, catalog: Any = None) -> UnderstandContext:
        """From a ``DialogueState`` (its constraints and ``last_items``; titles from ``catalog``)."""
        c = state.constraints
        titles: list[str] = []
        if catalog is not None:
            for iid in state.last_items[:MAX_SHOWN]:
                if iid in catalog:
                    titles.append(catalog[iid].title)
        return cls(
            categories=tuple(dict.fromkeys(p[-1] for p in c.categories if p)),
            brands=tuple(c.brands_in),
            price_min=c.price_min,
            price_max=c.price_max,
            shown=tuple(titles),
        )


def _num(x: float) -> str:
    return f"{x:g}"


def _state_lines(ctx: UnderstandContext) -> list[str]:
    lines = []
    if ctx.categories:
        lines.append("Looking for: " + ", ".join(ctx.categories[:3]))
    if ctx.brands:
        lines.append("Brands: " + ", ".join(ctx.brands[:3]))
    if ctx.price_min is not None or ctx.price_max is not None:
        lo, hi = ctx.price_min, ctx.price_max
        if lo is not None and hi is not None:
            lines.append(f"Price: {_num(lo)} to {_num(hi)}")
        else:
            lines.append(f"Price: up to {_num(hi)}" if hi is not None else f"Price: from {_num(lo)}")
    if ctx.shown:
        lines.append("Shown:")
        for k, t in enumerate(ctx.shown[:MAX_SHOWN], start=1):
            t = " ".join(t.split())
            lines.append(f"{k}. {t if len(t) <= _TITLE_CHARS else t[: _TITLE_CHARS - 3] + '...'}")
    return lines


def understand_prompt(message: str, currency: str | None, context: UnderstandContext | None = None) -> str:
    """The user text of the understanding prompt: the instruction, the dialogue state (when
    there is one) and the message."""
    lines = [
        "Extract shopping constraints from the shopper's message as JSON matching the schema. "
        "Use only what the message states; leave other fields empty. "
        f"Catalog prices are in {currency or 'an unknown currency'}; copy numbers as stated, do not convert."
    ]
    if context is not None:
        lines += _state_lines(context)
    lines.append(f"Message: {message[:1000]}")
    return "\n".join(lines)


def understand_chat(prompt: str, lang: str) -> list[Any]:
    """The ``parse`` template around ``prompt`` (langchain messages, as the product sends them)."""
    return prompts.load("parse", lang).messages(utterance=prompt)


def understand_messages(
    message: str, currency: str | None, context: UnderstandContext | None = None
) -> list[dict[str, str]]:
    """The whole chat (role/content dicts) for ``message``: what training records hold and what
    ``Understander._json_fallback`` sends (the language is the message's, as there)."""
    lang = detect_language(message).language
    return to_chat_dicts(understand_chat(understand_prompt(message, currency, context), lang))


def update_json(update: ConstraintUpdate | dict[str, Any]) -> str:
    """The training target: the non-empty fields in schema order, compact separators (the form
    llguidance's JSON grammar produces), integral numbers without ``.0``."""
    upd = update if isinstance(update, ConstraintUpdate) else ConstraintUpdate.model_validate(update)
    out: dict[str, Any] = {}
    for name in ConstraintUpdate.model_fields:
        v = getattr(upd, name)
        if v is None or v == [] or v == "" or v is False:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out[name] = v
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def update_from_parse(parsed: ParsedUtterance, n_shown: int = 0) -> ConstraintUpdate:
    """The rules' reading as a ``ConstraintUpdate`` (the inverse of ``llm_fallback``'s fold):
    prices as stated, brands by their catalog spelling, category nodes by name, positional
    references 1-based (``last_n`` needs ``n_shown``; selectors such as "the cheapest" have no
    position and are left out), preferences as soft terms, the rules' query."""
    refs: list[int] = []
    for r in parsed.references:
        if r.kind == "index":
            refs += [p + 1 for p in r.positions]
        elif r.kind == "first_n":
            refs += list(range(1, r.count + 1))
        elif r.kind == "last_n" and n_shown:
            refs += list(range(max(1, n_shown - r.count + 1), n_shown + 1))
    price = parsed.price
    return ConstraintUpdate(
        price_min=price.low if price else None,
        price_max=price.high if price else None,
        currency=parsed.currency,
        relative_price=parsed.relative_price,
        brands_include=_first_spellings(parsed.brands_in),
        brands_exclude=_first_spellings(parsed.brands_out),
        categories_include=list(dict.fromkeys(p[-1] for p in parsed.categories_in if p)),
        categories_exclude=list(dict.fromkeys(p[-1] for p in parsed.categories_out if p)),
        exclude_shown=parsed.exclude_shown,
        references=list(dict.fromkeys(refs)),
        soft_terms=list(parsed.preferences),
        query=parsed.query[:300],
    )


def _first_spellings(brands: Sequence[str]) -> list[str]:
    """One name per brand: the parser lists every catalog spelling of a brand it matched."""
    seen: set[str] = set()
    out = []
    for b in brands:
        key = "".join(ch for ch in b.casefold() if ch.isalnum())
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out

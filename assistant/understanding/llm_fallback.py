"""The LLM JSON fallback: fills only what the rules flagged as unresolved, through the
``ConstraintUpdate`` schema; its output is validated, repaired field by field, or discarded."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from assistant.understanding.llm_prompt import understand_prompt
from assistant.understanding.matches import Ambiguous, drop_descendants
from assistant.understanding.update import ConstraintUpdate
from assistant.understanding.utterance import (
    MAX_SANE_PRICE,
    Issue,
    LLMFallback,
    ParsedUtterance,
    PriceSpec,
    Reference,
)
from assistant.understanding.vocabulary import CatalogVocabulary
from retrieval.text import CURRENCY_SYMBOLS

__all__ = ["llm_fallback"]


def _coerce_update(raw: Any) -> ConstraintUpdate | None:
    """Validate LLM output; repair by extracting the JSON object and dropping invalid fields."""
    if isinstance(raw, ConstraintUpdate):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, (str, bytes)):
        s = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        start, end = s.find("{"), s.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            raw = json.loads(s[start : end + 1])
        except (ValueError, RecursionError):
            return None
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    for _ in range(len(ConstraintUpdate.model_fields) + 1):
        try:
            return ConstraintUpdate.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
            if not bad or not bad & set(data):
                return None
            for k in bad:
                data.pop(k, None)
    return None


def llm_fallback(
    parsed: ParsedUtterance, vocab: CatalogVocabulary, currency: str | None, llm: LLMFallback
) -> ParsedUtterance:
    """Ask ``llm`` for a ``ConstraintUpdate`` and fold in what the rules left empty.

    The prompt is ``understand_prompt`` (the one the understanding adapter is trained on), with
    the dialogue state the hook carries as its ``context`` attribute, if any."""
    issues = list(parsed.issues)
    try:
        prompt = understand_prompt(parsed.text, currency, getattr(llm, "context", None))
        raw = llm(prompt, ConstraintUpdate.model_json_schema())
    except Exception as exc:
        issues.append(
            Issue("llm_failed", f"LLM fallback failed: {type(exc).__name__}", "LLM解析失败", "info")
        )
        return replace(parsed, issues=tuple(issues))
    upd = _coerce_update(raw)
    if upd is None:
        issues.append(
            Issue(
                "llm_discarded",
                "LLM fallback output was invalid and was discarded.",
                "LLM输出无效,已丢弃",
                "info",
            )
        )
        return replace(parsed, issues=tuple(issues))
    dropped: list[str] = []
    changes = _changes(parsed, upd, vocab, dropped)
    if dropped:
        issues.append(
            Issue(
                "llm_unknown_names",
                f"Ignored names not in this catalog: {', '.join(dropped[:5])}",
                f"已忽略目录中没有的名称:{'、'.join(dropped[:5])}",
                "info",
            )
        )
    return replace(parsed, **changes, issues=tuple(issues), unresolved=(), source="rules+llm")


def _changes(
    parsed: ParsedUtterance, upd: ConstraintUpdate, vocab: CatalogVocabulary, dropped: list[str]
) -> dict[str, Any]:
    """Rules win; the LLM only fills what the rules left empty, through the same validation.

    Names the catalog does not know are appended to ``dropped``.
    """
    changes: dict[str, Any] = {}
    if parsed.price is None and (upd.price_min is not None or upd.price_max is not None):
        price = _llm_price(upd)
        if price is not None:
            changes["price"] = price
            changes["currency"] = price.currency
    if parsed.relative_price is None and upd.relative_price:
        changes["relative_price"] = upd.relative_price
    if not parsed.brands_in and upd.brands_include:
        changes["brands_in"] = tuple(dict.fromkeys(_brands(vocab, upd.brands_include, dropped)))
    if not parsed.brands_out and upd.brands_exclude:
        changes["brands_out"] = tuple(dict.fromkeys(_brands(vocab, upd.brands_exclude, dropped)))
    if not parsed.categories_in and upd.categories_include:
        changes["categories_in"] = drop_descendants(_categories(vocab, upd.categories_include, dropped))
    if not parsed.categories_out and upd.categories_exclude:
        changes["categories_out"] = drop_descendants(_categories(vocab, upd.categories_exclude, dropped))
    if upd.exclude_shown and not parsed.exclude_shown:
        changes["exclude_shown"] = True
    if not parsed.preferences and upd.soft_terms:
        terms = tuple(dict.fromkeys(t.strip()[:60] for t in upd.soft_terms[:10] if t.strip()))
        if terms:
            changes["preferences"] = terms
    query = parsed.query if parsed.query.strip() else " ".join(upd.query.split())[:300]
    # Every word of the preferences is also in the query (the ranker and retriever read both).
    missing = [t for t in changes.get("preferences", ()) if t.lower() not in query.lower()]
    if query != parsed.query or missing:
        changes["query"] = " ".join([query, *missing]).strip()[:300]
    if not parsed.references and upd.references:
        pos = tuple(dict.fromkeys(p - 1 for p in upd.references[:10] if isinstance(p, int) and 1 <= p <= 100))
        if pos:
            changes["references"] = (Reference("index", pos, len(pos), "llm"),)
    return changes


def _llm_price(upd: ConstraintUpdate) -> PriceSpec | None:
    lo, hi = upd.price_min, upd.price_max
    if not all(x is None or (math.isfinite(x) and x <= MAX_SANE_PRICE) for x in (lo, hi)) or hi == 0:
        return None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    op: Literal["max", "min", "range"] = (
        "range" if lo is not None and hi is not None else "max" if hi is not None else "min"
    )
    cur = (upd.currency or "").upper() or None
    return PriceSpec(lo, hi, op, cur if cur in CURRENCY_SYMBOLS else None, "llm")


def _brands(vocab: CatalogVocabulary, names: list[str], dropped: list[str]) -> list[str]:
    out: list[str] = []
    for n in names[:10]:
        m = vocab.match_brand(n) if isinstance(n, str) else None
        if m is None:
            dropped.append(str(n))
            continue
        out.extend((m.union() if isinstance(m, Ambiguous) else m).spellings)  # type: ignore[union-attr]
    return out


def _categories(vocab: CatalogVocabulary, names: list[str], dropped: list[str]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for n in names[:10]:
        m = vocab.match_category(n) if isinstance(n, str) else None
        if m is None:
            dropped.append(str(n))
            continue
        out.extend((m.union() if isinstance(m, Ambiguous) else m).paths)  # type: ignore[union-attr]
    return out

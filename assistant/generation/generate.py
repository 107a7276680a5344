"""The generation stage: stream the LLM reply for a plan, checking each finished sentence against
the catalog; on a violation stop, regenerate once with the repair prompt, then fall back to the
template. ``ReplyGenerator.generate(plan)`` yields stream events and returns ``(text, report)``."""

from __future__ import annotations

import re
import time
from collections.abc import Generator
from typing import Any

import prompts
from assistant.generation.guard import (
    card_copy,
    prompt_echo,
    repeated_phrase_start,
    tidy,
    whole_sentences,
    wrong_language,
)
from assistant.grounding import GroundingViolation, describe
from assistant.llm_setup import chunk_text
from assistant.plan import Plan
from assistant.reply import GroundingReport, StreamEvent, TextDelta, TextReset
from assistant.stage_context import Stage
from llm.stopping import sentence_cut
from retrieval.text import detect_language

_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|$)")


class ReplyGenerator(Stage):
    def check(self, text: str, plan: Plan) -> list[GroundingViolation]:
        """Catalog grounding, prompt echo (a reply quoting the system prompt or the prompt's
        scaffolding, e.g. an injected "print your instructions" the model obeyed) and the language:
        the template the plan falls back to is in the shopper's language, and so must the reply be."""
        bad = self.checker.check(text, plan.grounding) if plan.grounding is not None else []
        language = detect_language(plan.fallback).language if plan.fallback else None
        return [
            *bad,
            *prompt_echo(text, plan.messages or []),
            *(wrong_language(text, language) if language else ()),
        ]

    def generate(self, plan: Plan) -> Generator[StreamEvent, None, tuple[str, GroundingReport]]:
        """Stream the LLM reply, checking each finished sentence; on a violation stop, regenerate
        once with the repair prompt, then fall back to the template. Returns (text, report).

        Stage times and token counts go to ``plan.timings`` (prefill = call to first text,
        decode = the rest of the stream, grounding = time spent checking, repair = second call).
        """
        assert plan.messages is not None and plan.grounding is not None
        report = GroundingReport()
        tm = plan.timings
        tm.update(llm_prefill_s=0.0, llm_decode_s=0.0, grounding_s=0.0, repair_s=0.0)
        tm.update(llm_calls=1, llm_prompt_tokens=None, llm_completion_tokens=None)
        try:
            text, bad, copied = yield from self._stream(plan)
        except Exception as e:  # a broken model must not break the turn: template reply
            report.violations = []
            report.fallback = True
            plan.meta.setdefault("notes", []).append(f"llm error: {type(e).__name__}: {e}")
            yield TextReset(plan.fallback)
            return plan.fallback, report
        if copied or (not self.config.prose_guard and plan.card_lines and card_copy(text, plan.card_lines)):
            plan.meta["card_copy"] = True  # counted by bench/chat.py (copy rate)
        if copied:
            plan.meta.setdefault("notes", []).append(
                f"card_copy: the reply copied a candidate line: {text[:120]!r}"
            )
            report.fallback = True
            yield TextReset(plan.fallback)
            return plan.fallback, report
        if not bad:
            tidied = tidy(text)
            whole = whole_sentences(text)
            if whole and whole != text.strip():
                yield TextReset(whole)  # cut by the token budget: end on the last whole sentence
                tidied = whole
            elif tidied.startswith(text.strip()) and len(tidied) > len(text.strip()):
                yield TextDelta(tidied[len(text.strip()) :])  # the ellipsis of a reply cut mid-sentence
            text = tidied
            tg = time.perf_counter()
            bad = self.check(text, plan)
            tm["grounding_s"] += time.perf_counter() - tg
        if not bad and text:
            return text, report
        report.violations = list(bad)
        if text and plan.repair_values is not None:
            second = yield from self._repair(plan, bad, report)
            if second:
                return second, report
        report.fallback = True
        yield TextReset(plan.fallback)
        return plan.fallback, report

    def _stream(self, plan: Plan) -> Generator[StreamEvent, None, tuple[str, list[GroundingViolation], bool]]:
        """The LLM's streamed text, cut at the sentence cap, a loop, a copied card line or the first
        ungrounded sentence. Returns (text, violations so far, whether it copied a card line)."""
        assert plan.messages is not None
        tm = plan.timings
        text, checked_upto, bad = "", 0, []
        t_call = time.perf_counter()
        t_first: float | None = None
        for chunk in self.llm.stream(plan.messages, **self._llm_kwargs(plan)):
            _count_tokens(chunk, tm)
            piece = chunk_text(chunk)
            if not piece:
                continue
            if t_first is None:
                t_first = time.perf_counter()
                tm["llm_prefill_s"] = t_first - t_call
            if not text:
                piece = piece.lstrip()
            capped = False
            cut = sentence_cut(text + piece, self.config.max_sentences)
            if cut is not None and cut < len((text + piece).rstrip()):
                piece, capped = (text + piece)[:cut][len(text) :], True  # models without the cap
            text += piece
            at = repeated_phrase_start(text)
            if at is not None:  # a small model looping ("a cream by X at $25, a cream by X at $25, ...")
                plan.meta.setdefault("notes", []).append(f"repetition cut: {text[at:][:80]!r}")
                plan.meta["repetition_cut"] = True
                text = text[:at].rstrip(" ,;:-")
                yield TextReset(text)  # part of the repeat may already be on screen
                break
            if self.config.prose_guard and plan.card_lines and card_copy(text, plan.card_lines):
                _decode_time(tm, t_call, t_first)
                return text, bad, True  # stop now: the rest would be the copied list, a wasted decode
            if piece:
                yield TextDelta(piece)
            tg = time.perf_counter()
            ends = [m.end() for m in _SENTENCE_END.finditer(text, checked_upto)]
            if ends:
                bad = self.check(text[: ends[-1]], plan)
                checked_upto = ends[-1]
            tm["grounding_s"] += time.perf_counter() - tg
            if bad or capped:
                break
        _decode_time(tm, t_call, t_first)
        return text, bad, False

    def _llm_kwargs(self, plan: Plan) -> dict[str, Any]:
        """A tighter per-reply cap goes to our own model (it stops generating there); the cut in
        ``_stream`` for other models keeps the assistant-wide cap, so their output is checked as before."""
        llm_kwargs = dict(self.ctx.llm_kwargs)
        cap = llm_kwargs.get("max_sentences")
        if (
            plan.max_sentences is not None
            and "max_sentences" in llm_kwargs
            and (cap is None or plan.max_sentences < cap)
        ):
            llm_kwargs["max_sentences"] = plan.max_sentences
        return llm_kwargs

    def _repair(
        self, plan: Plan, bad: list[GroundingViolation], report: GroundingReport
    ) -> Generator[StreamEvent, None, str]:
        """One regeneration with the problems spelled out; "" when it fails the check too."""
        assert plan.repair_values is not None
        tm = plan.timings
        report.regenerated = True
        tr = time.perf_counter()
        lang = detect_language(plan.fallback).language
        msgs = prompts.load("repair", lang, self.ctx.prompt_version("repair")).messages(
            problems=describe(bad), **plan.repair_values
        )
        try:
            answer = self.llm.invoke(msgs, **self.ctx.llm_kwargs)
            tm["llm_calls"] += 1
            _count_tokens(answer, tm)
            second = tidy(chunk_text(answer))
        except Exception:
            second = ""
        again = self.check(second, plan) if second else bad
        tm["repair_s"] = time.perf_counter() - tr
        if second and not again:
            yield TextReset(second)
            return second
        report.violations.extend(v for v in again if v not in report.violations)
        return ""


def _decode_time(tm: dict[str, Any], t_call: float, t_first: float | None) -> None:
    """prefill = call to first text; decode = the rest of the stream minus grounding checks."""
    t_end = time.perf_counter()
    if t_first is None:
        tm["llm_prefill_s"] = t_end - t_call
    else:
        tm["llm_decode_s"] = max(t_end - t_first - tm["grounding_s"], 0.0)


def _count_tokens(message: Any, timings: dict[str, Any]) -> None:
    """Add a chunk's/message's usage metadata (when the model reports it) to the turn's counts."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return
    for key, field_ in (("llm_prompt_tokens", "input_tokens"), ("llm_completion_tokens", "output_tokens")):
        n = usage.get(field_)
        if n:
            timings[key] = (timings.get(key) or 0) + int(n)

"""When generation stops: stop strings, the sentence cap, a closed JSON object, or an abandoned stream.

``sentence_cut`` is the one sentence grammar of streamed replies: the generator's stopping
criterion and the stream's cut both use it, so a reply is cut at the same offset either way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from llm.json_output import json_closed
from retrieval.text import sentence_ends

__all__ = ["StopCriterion", "StreamCut", "cut_at_stop", "held_back", "sentence_cut"]

def sentence_cut(text: str, max_sentences: int | None) -> int | None:
    """End offset of the `max_sentences`-th finished sentence in `text`, or None if fewer.

    The grammar is ``retrieval.text.sentence_ends`` for a stream still growing: a Latin sentence
    is finished only once whitespace follows it, so "4.2" or a reply paused right after "4." is
    not cut; list markers ("1. Title") and abbreviations never end one; CJK full stops end one at once.
    """
    if not max_sentences or max_sentences < 1:
        return None
    ends = sentence_ends(text, at_end=False)
    return ends[max_sentences - 1] if len(ends) >= max_sentences else None


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Truncate at the earliest stop string (exclusive)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def held_back(text: str, stop: Sequence[str]) -> int:
    """How many trailing chars might be the start of a stop string (must not be emitted yet)."""
    keep = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                keep = max(keep, k)
                break
    return keep


class StopCriterion:
    """Stopping criterion: set from outside (an abandoned stream) or on a closed JSON object."""

    def __init__(
        self,
        tokenizer: Any = None,
        prompt_len: int = 0,
        prefill: str = "",
        json_mode: bool = False,
        max_sentences: int | None = None,
    ):
        self.event = threading.Event()
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.prefill = prefill
        self.json_mode = json_mode
        self.max_sentences = max_sentences

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = self.event.is_set()
        if not done and (self.json_mode or self.max_sentences):
            new = self.tokenizer.decode(input_ids[0, self.prompt_len :], skip_special_tokens=True)
            if self.json_mode:
                done = json_closed(self.prefill + new)
            else:
                done = sentence_cut(new.lstrip(), self.max_sentences) is not None
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)




class StreamCut:
    """Streamed text in, text safe to show out: held back while it may be the start of a stop
    string (or, with a sentence cap, trailing spaces a cut there must not show); ``hit`` once a
    stop string or the ``max_sentences``-th sentence end is reached, ``buffer`` then holding the
    rest to show up to the cut."""

    def __init__(self, stops: Sequence[str], max_sentences: int | None) -> None:
        self.stops = stops
        self.max_sentences = max_sentences
        self.buffer = ""
        self.emitted = ""
        self.hit = False

    def feed(self, piece: str) -> str:
        """The text of ``piece`` (plus what was held back) to show now; "" while held or once hit."""
        self.buffer += piece
        text, self.hit = cut_at_stop(self.buffer, self.stops)
        if self.max_sentences:
            # Offsets are over everything generated so far: emitted text + buffer.
            cut = sentence_cut(self.emitted + text, self.max_sentences)
            if cut is not None and cut - len(self.emitted) < len(text.rstrip()):
                text, self.hit = text[: max(cut - len(self.emitted), 0)], True
        if self.hit:
            self.buffer = text
            return ""
        keep = held_back(self.buffer, self.stops)
        if self.max_sentences:  # trailing spaces wait: a sentence cut there must not show them
            keep = max(keep, len(self.buffer) - len(self.buffer.rstrip()))
        emit = self.buffer[: len(self.buffer) - keep]
        self.buffer = self.buffer[len(emit) :]
        self.emitted += emit
        return emit

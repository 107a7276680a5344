"""``AssistantConfig``: every setting of a ``ShoppingAssistant``, as validated data.

One frozen dataclass, checked in ``__post_init__`` (a bad value raises ``ValueError`` naming the
field), loadable from YAML (``AssistantConfig.from_yaml``) and overridable by keyword
(``dataclasses.replace(config, k=8)``, ``ShoppingAssistant(..., config, k=8)``,
``ShoppingAssistant.from_dataset(name, config=config, k=8)``).

The latency defaults were chosen with bench/chat.py (docs/latency.md); the relevance defaults
with the conversation bench (the numbers are in the field comments).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from assistant.adapters import route_adapters
from assistant.understanding.utterance import MAX_PARSE_CHARS  # what the parser reads

__all__ = ["MAX_ID_CHARS", "AssistantConfig"]

MAX_ID_CHARS = 256  # session and user ids (they key sqlite rows and log lines)


@dataclass(frozen=True)
class AssistantConfig:
    """Settings of one assistant: the turn pipeline, generation, and what ``from_dataset`` loads."""

    # --- recommendation turn
    k: int = 5  # cards per recommendation
    retrieve_pool: int = 50  # candidates the hybrid retriever returns before ranking
    # The collaborative scorer's own top items (under the same hard filters) join the retrieved
    # pool: for a known shopper they are strong candidates that a query naming only a category
    # ("I need a moisturizer") would rank anywhere in the category.
    cf_pool: int = 50
    # The items nearest to those the shopper pointed at or liked ("more like the second one", "like
    # the NYX crayon") join the pool too, under the same hard filters.
    anchor_pool: int = 50
    # In a catalog of works, the best-known items of the kinds asked for ("I like comedies") join
    # the pool too: there the words retrieve the films whose text echoes them, not the best of the kind.
    kind_pool: int = 50
    profile_history: int = 50  # a known user's profile vector: the mean of their last this-many items
    # When the query says nothing the hard filters do not already enforce ("a moisturizer from
    # Olay under $20"), text relevance within the filtered set mostly measures how a title echoes
    # the category name; a known shopper's history is the better guide, so relevance counts less
    # (x0.3: MovieLens-100k conversation bench, 100 users, Hit@5 0.57 -> 0.70; Beauty unchanged).
    filter_only_relevance: float | None = 0.3
    # In a catalog of works without makers (movies, books: ``Catalog.has_brands`` false) a title
    # is a name, so free words ("my all time favourite", "I'm fine") match titles by accident
    # ("Somewhere in Time", "One Fine Day"); what such words mean reaches the ranking through
    # genres and named titles instead, and text relevance counts this much. Chosen on real
    # dialogues, the ReDial dev replay (Recall@5: 1.0 -> 0.090, 0.5 -> 0.097, 0.3 -> 0.098,
    # 0.2 -> 0.099, 0 -> 0.086); the simulated MovieLens describe shoppers (seed 1, 100), who
    # say title words, move the other way (Hit@5 0.82 -> 0.79, turns to hit 2.85 -> 2.80).
    name_title_relevance: float = 0.3
    near_duplicate_cos: float = 0.92  # "not for me" also hides items this similar to the rejected one
    session_history_for_cf: int = 10  # an anonymous session's last shown items the CF scorer reads
    # Longest message (after stripping) a turn accepts; the parser reads 2,000 characters, so a
    # longer one is answered, not silently cut. See docs/limits.md.
    max_message_chars: int = 2000

    # --- generation (the prompts ask for at most two short sentences: generation stops after
    # the second one, capped at max_new_tokens)
    max_new_tokens: int = 40
    max_sentences: int | None = 2
    llm_cards: int | None = 3  # the LLM writes about the top cards; the UI shows all of them
    prose_guard: bool = True  # a reply that copies a candidate line is stopped and replaced by the template
    prompt_version: int | None = None  # pin a prompt set (each template at its newest version <= it)

    # The understanding LLM (constrained JSON) on every turn the rules are unsure of (unresolved
    # spans); off keeps only the narrow fallback for unreadable, low-confidence turns. Off by
    # default until the describe bench shows it wins.
    understand_llm: bool = False

    # --- LLM re-ranking (off by default: docs/latency.md says what it costs and what it changed)
    rerank: Literal["none", "llm"] = "none"
    rerank_top: int = 20  # the LLM re-ranker reorders this many fused candidates (letters A-T)
    reranker_adapter: str | None = None  # a LoRA adapter from ``python -m finetune train``

    # --- what from_dataset loads
    llm: str | None = "qwen2.5-coder-0.5b"  # registry name, local dir, "openai:MODEL@URL", or None
    # LoRA adapters from ``finetune train`` on ``llm``'s model: one path, or several (a YAML list);
    # each one's training task picks its stage: an understanding adapter (``generate --task
    # understand``) runs the understanding stage's JSON fallback, any other (reply, listwise) the
    # chat model; at most one per stage (``assistant.adapters``), checked when the config is made
    # (the folders must exist by then). Without a chat adapter the replies stay with the base model.
    adapter: str | tuple[str, ...] | None = None
    llm_url: str | None = None  # serve ``llm`` (default: the endpoint's first model) from this OpenAI URL
    # "int8" (dynamic int8 Linear layers, the CPU default), None/"none" for full precision, or
    # "auto": $SHOPASSIST_LLM_QUANTIZE if set, else int8 on CPU.
    llm_quantize: Literal["auto", "int8", "none"] | None = "auto"
    prefix_cache: bool = True  # reuse the KV cache of the (static) system prompt across turns
    embedder: str = "minilm"
    scorer: str | None = "auto"
    # A Chroma server http://host:port[?tenant=T&database=D] for the vectors (default
    # $SHOPASSIST_CHROMA_URL, else an embedded Chroma in the cache dir).
    store_url: str | None = None
    cache_dir: str | None = None
    # Sessions, chat events (a signed-in shopper's likes join their history) and profile edits;
    # default <cache_dir>/sessions. A benchmark gives each run its own, so no run sees another's.
    sessions_dir: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.rerank is None:  # ``rerank=None`` was the documented "off"
            object.__setattr__(self, "rerank", "none")
        for path_field in ("llm", "reranker_adapter", "adapter", "cache_dir", "sessions_dir"):
            value = getattr(self, path_field)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, path_field, os.fspath(value))
        if isinstance(self.adapter, list | tuple):  # one path stays a str, none is None
            paths = tuple(os.fspath(p) if isinstance(p, os.PathLike) else p for p in self.adapter)
            object.__setattr__(self, "adapter", paths[0] if len(paths) == 1 else paths or None)
        _check_types(self)
        _at_least(self, "k", 1)
        _at_least(self, "retrieve_pool", 1)
        _at_least(self, "cf_pool", 0)
        _at_least(self, "anchor_pool", 0)
        _at_least(self, "kind_pool", 0)
        _at_least(self, "profile_history", 1)
        _at_least(self, "session_history_for_cf", 0)
        _at_least(self, "max_new_tokens", 1)
        _at_least(self, "max_sentences", 1)
        _at_least(self, "llm_cards", 1)
        _at_least(self, "threads", 1)
        _at_least(self, "prompt_version", 1)
        if not 1 <= self.max_message_chars <= MAX_PARSE_CHARS:
            raise ValueError(
                f"max_message_chars must be in 1..{MAX_PARSE_CHARS} (what the parser reads), "
                f"got {self.max_message_chars}"
            )
        if not 2 <= self.rerank_top <= 20:
            raise ValueError(f"rerank_top must be in 2..20 (letters A-T), got {self.rerank_top}")
        if not 0 < self.near_duplicate_cos <= 1:
            raise ValueError(f"near_duplicate_cos must be a cosine in (0, 1], got {self.near_duplicate_cos}")
        if not 0 <= self.name_title_relevance <= 1:
            raise ValueError(f"name_title_relevance must be in [0, 1], got {self.name_title_relevance}")
        if self.filter_only_relevance is not None and not 0 <= self.filter_only_relevance <= 1:
            raise ValueError(
                f"filter_only_relevance must be in [0, 1] or None, got {self.filter_only_relevance}"
            )
        _check_adapters(self)

    @property
    def adapters(self) -> tuple[str, ...]:
        """``adapter`` as a tuple of paths (empty without one)."""
        if self.adapter is None:
            return ()
        return (self.adapter,) if isinstance(self.adapter, str) else self.adapter

    # ------------------------------------------------------------------ YAML
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssistantConfig:
        if not isinstance(data, dict):
            raise ValueError(f"an assistant config must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown assistant config fields {unknown}; expected some of {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> AssistantConfig:
        """Fields from a YAML mapping; the ones it leaves out keep their defaults."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(data or {})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _at_least(cfg: AssistantConfig, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if value is not None and value < low:
        raise ValueError(f"{name} must be >= {low}{' or None' if _optional(name) else ''}, got {value}")


def _optional(name: str) -> bool:
    return type(None) in typing.get_args(_HINTS[name])


def _allowed(value: Any, hint: Any) -> bool:
    """``value`` fits the annotation (bool is not accepted as int, int is accepted as float)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_allowed(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:  # tuple[X, ...]
        return isinstance(value, tuple) and all(_allowed(v, typing.get_args(hint)[0]) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _check_adapters(cfg: AssistantConfig) -> None:
    """Every adapter is a LoRA adapter trained on ``llm``, at most one per stage (each a
    ValueError naming ``adapter``, the paths and their tasks): none is dropped at load time."""
    if not cfg.adapters:
        return
    if cfg.llm_url:
        raise ValueError(
            f"adapter: a LoRA adapter cannot be applied to a remote LLM (llm_url {cfg.llm_url}); "
            "serve it with the endpoint"
        )
    route_adapters(cfg.adapters, cfg.llm)


def _check_types(cfg: AssistantConfig) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not _allowed(value, _HINTS[f.name]):
            raise ValueError(f"{f.name}: {value!r} is not a valid value (expected {_HINTS[f.name]})")


_HINTS = typing.get_type_hints(AssistantConfig)

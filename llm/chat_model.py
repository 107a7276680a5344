"""The in-process LLM as a langchain chat model, plus JSON and choice-scoring helpers.

Being a `BaseChatModel` lets prompts, retrievers and parsers compose with it as ordinary
runnables (`prompt | llm | parser`) and gives streaming, callbacks and tracing for free. The
model weights are loaded once per process and shared: every `LocalChatModel` naming the same
(model, adapter, dtype) reuses one `LoadedLLM`, and a lock serialises generation on it (torch on
2 CPU cores gains nothing from running two generations at once).
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel, PrivateAttr, ValidationError

from llm.models import DEFAULT_LLM, load_llm, parse_dtype, parse_quantize, resolve_llm

__all__ = [
    "LoadedLLM",
    "LocalChatModel",
    "clear_llm_cache",
    "extract_json_block",
    "get_loaded_llm",
    "parse_json_output",
    "score_choices",
    "score_choices_batch",
    "sentence_cut",
    "to_chat_dicts",
]


# --------------------------------------------------------------------------------------------
# Process-wide model cache
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedLLM:
    """A loaded model + tokenizer shared by every chat model in the process, with its generate lock."""

    model: Any
    tokenizer: Any
    path: Path
    adapter: Path | None = None
    quantize: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    prefix_caches: OrderedDict[tuple[int, ...], Any] = field(default_factory=OrderedDict, repr=False)
    """Prompt-prefix KV caches (token ids -> KV cache), LRU; only touched under `lock`."""
    cache_kwarg: str = field(init=False, repr=False)
    """What `generate` calls its KV-cache argument: transformers >= 5.24 renamed `past_key_values`
    to `cache` (the old name warns on every call and goes in 6.0); older releases know only it."""

    def __post_init__(self) -> None:
        self.cache_kwarg = _cache_kwarg(self.model)

    @property
    def name(self) -> str:
        return (
            self.path.name
            + (f"+{self.adapter.name}" if self.adapter else "")
            + (f"@{self.quantize}" if self.quantize else "")
        )


STREAM_THREAD_NAME = "LocalChatModel-stream"
"""Name of the thread that runs a streamed `generate` (one per `stream` call)."""

PREFIX_CACHE_SIZE = 16  # one entry per (prompt template, language): a handful in practice

_LOADED: dict[tuple[str, str | None, str, str | None], LoadedLLM] = {}
_LOADED_LOCK = threading.Lock()


def get_loaded_llm(
    name_or_path: str | os.PathLike[str] = DEFAULT_LLM,
    adapter: str | os.PathLike[str] | None = None,
    dtype: Any = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    quantize: str | None = None,
) -> LoadedLLM:
    """Load once per (resolved path, adapter, dtype, quantization) and share it within the process."""
    path = resolve_llm(name_or_path, cache_dir=cache_dir, threads=threads).resolve()
    adapter_path = Path(adapter).expanduser().resolve() if adapter is not None else None
    torch_dtype = parse_dtype(dtype)
    scheme = parse_quantize(quantize)
    key = (str(path), str(adapter_path) if adapter_path else None, str(torch_dtype), scheme)
    with _LOADED_LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            model, tokenizer = load_llm(
                path, adapter=adapter_path, dtype=torch_dtype, threads=threads, quantize=scheme
            )
            loaded = LoadedLLM(
                model=model, tokenizer=tokenizer, path=path, adapter=adapter_path, quantize=scheme
            )
            _LOADED[key] = loaded
    return loaded


def clear_llm_cache() -> None:
    """Forget every shared model (frees memory once no chat model holds a reference)."""
    with _LOADED_LOCK:
        _LOADED.clear()


# --------------------------------------------------------------------------------------------
# Messages -> prompt
# --------------------------------------------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            raise ValueError(f"only text content is supported by the local LLM, got block {block!r}")
    return "".join(parts)


def to_chat_dicts(
    messages: Sequence[BaseMessage] | Sequence[Mapping[str, str]] | str,
) -> list[dict[str, str]]:
    """langchain messages / role dicts / a plain string -> `[{"role", "content"}]` for chat templates."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, Mapping) and "role" in m:
            out.append({"role": str(m["role"]), "content": _content_text(m["content"])})
            continue
        (msg,) = convert_to_messages([m])  # tuples, strings, dicts in langchain's own forms
        if isinstance(msg, ChatMessage):
            role = msg.role
        elif isinstance(msg, ToolMessage):
            role = "tool"
        else:
            role = _ROLES.get(msg.type)
            if role is None:
                raise ValueError(f"unsupported message type {msg.type!r}")
        out.append({"role": role, "content": _content_text(msg.content)})
    return out


def _encode_chat(tokenizer: Any, chat: list[dict[str, str]], prefill: str = "") -> Any:
    """Chat template with the assistant turn opened (plus an optional prefill), as input_ids [1, T]."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:  # base models without a template: a plain transcript
        text = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant: "
    return tokenizer(text + prefill, return_tensors="pt", add_special_tokens=False)["input_ids"]


def _system_prefix_len(tokenizer: Any, chat: list[dict[str, str]], input_ids: Any) -> int:
    """How many leading tokens of `input_ids` are the rendered system message alone (0 if none).

    That block is identical every turn of a given prompt template, so its KV cache can be
    computed once. The count is verified token by token against the real prompt: a template
    or tokenizer that renders the system turn differently in context just gets no cache.
    """
    if not chat or chat[0]["role"] != "system" or len(chat) < 2:
        return 0
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=False)
    else:
        text = f"system: {chat[0]['content']}\n"
    prefix = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = len(prefix)
    if n == 0 or n >= input_ids.shape[1] or input_ids[0, :n].tolist() != prefix:
        return 0
    return n


def _cache_kwarg(model: Any) -> str:
    import inspect

    if hasattr(model, "get_base_model"):  # a PeftModel's forward is (*args, **kwargs)
        model = model.get_base_model()
    try:
        params = inspect.signature(model.forward).parameters
    except (AttributeError, TypeError, ValueError):
        params = {}
    return "cache" if "cache" in params else "past_key_values"


def _prefix_cache(loaded: LoadedLLM, input_ids: Any, n: int, private: bool = True) -> Any:
    """A private copy of the KV cache of `input_ids[:, :n]`, computed on first use (call under the lock)."""
    import torch

    key = tuple(input_ids[0, :n].tolist())
    cache = loaded.prefix_caches.get(key)
    if cache is None:
        with torch.inference_mode():
            out = loaded.model(input_ids=input_ids[:, :n], use_cache=True, logits_to_keep=1)
        cache = out.get(loaded.cache_kwarg)
        loaded.prefix_caches[key] = cache
        while len(loaded.prefix_caches) > PREFIX_CACHE_SIZE:
            loaded.prefix_caches.popitem(last=False)
    else:
        loaded.prefix_caches.move_to_end(key)
    return copy.deepcopy(cache) if private else cache  # generate() appends to the cache it is given


_SENTENCE_DONE = re.compile(r"\.(?=\s)|[!?](?=\s)|[。！？]")
# A "." after a 1-2 digit number that starts a line or follows another sentence/label is a list
# marker ("1. Title", "(1994). 2. Exotica"), not a sentence end; "rated 4 out of 5. " ends one.
_LIST_MARKER = re.compile(r"(?:^|\n|[.!?:;)]\s|\s-\s)\s*\d{1,2}$")


def sentence_cut(text: str, max_sentences: int | None) -> int | None:
    """End offset of the `max_sentences`-th finished sentence in `text`, or None if fewer.

    A Latin sentence counts as finished only once whitespace follows its `.`/`!`/`?`, so "4.2"
    or a reply paused right after "4." is not cut, and list markers ("1. " / "12. " at a line
    start or after another sentence) never end one; CJK full stops end a sentence at once.
    """
    if not max_sentences or max_sentences < 1:
        return None
    done = 0
    for m in _SENTENCE_DONE.finditer(text):
        if m.group() == "." and _LIST_MARKER.search(text, 0, m.start()):
            continue
        done += 1
        if done == max_sentences:
            return m.end()
    return None


# --------------------------------------------------------------------------------------------
# Generation internals
# --------------------------------------------------------------------------------------------


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Truncate at the earliest stop string (exclusive)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _held_back(text: str, stop: Sequence[str]) -> int:
    """How many trailing chars might be the start of a stop string (must not be emitted yet)."""
    keep = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                keep = max(keep, k)
                break
    return keep


def _json_closed(text: str) -> bool:
    """True once the first top-level JSON object/array in `text` is closed (string-aware)."""
    depth, in_str, esc, started = 0, False, False, False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = started
        elif ch in "{[":
            depth += 1
            started = True
        elif ch in "}]" and started:
            depth -= 1
            if depth == 0:
                return True
    return False


class _Cancel:
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
                done = _json_closed(self.prefill + new)
            else:
                done = sentence_cut(new.lstrip(), self.max_sentences) is not None
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


@dataclass
class _GenOutput:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float


# --------------------------------------------------------------------------------------------
# The chat model
# --------------------------------------------------------------------------------------------


class LocalChatModel(BaseChatModel):
    """A transformers causal LM run in-process, as a langchain chat model.

    Greedy by default (`temperature=0`), so replies are reproducible; with `temperature>0` it
    samples, seeded by `seed` for every call.
    """

    model_name: str = DEFAULT_LLM
    """Registry name (see `llm.models.LLM_REGISTRY`), local HF dir, or hub id."""
    adapter: str | None = None
    """Optional PEFT/LoRA adapter directory."""
    dtype: str | None = None
    cache_dir: str | None = None
    threads: int | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    stop: list[str] | None = None
    quantize: str | None = None
    """"int8": dynamic int8 Linear layers (CPU inference; see `llm.models.quantize_model`)."""
    prefix_cache: bool = False
    """Reuse the KV cache of the system message across calls (it is identical every turn of a
    prompt template), so only the variable part of the prompt is prefilled. Same greedy output."""
    max_sentences: int | None = None
    """Stop after this many finished sentences (the prompts ask for 2; small models ramble on)."""

    _loaded: LoadedLLM | None = PrivateAttr(default=None)

    @classmethod
    def from_loaded(cls, loaded: LoadedLLM, **kwargs: Any) -> LocalChatModel:
        """Wrap an already loaded model (e.g. a freshly fine-tuned one) without going through the registry."""
        obj = cls(model_name=str(loaded.path), **kwargs)
        obj._loaded = loaded
        return obj

    @property
    def loaded(self) -> LoadedLLM:
        if self._loaded is None:
            self._loaded = get_loaded_llm(
                self.model_name,
                self.adapter,
                dtype=self.dtype,
                threads=self.threads,
                cache_dir=self.cache_dir,
                quantize=self.quantize,
            )
        return self._loaded

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def _llm_type(self) -> str:
        return "shopassist-local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "adapter": self.adapter,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "quantize": self.quantize,
            "prefix_cache": self.prefix_cache,
            "max_sentences": self.max_sentences,
        }

    # -- generation plumbing -------------------------------------------------------------------

    def _gen_kwargs(self, input_ids: Any, max_new_tokens: int | None, stop: Sequence[str], **kw: Any) -> dict:
        from transformers import GenerationConfig

        tok = self.loaded.tokenizer
        base = self.loaded.model.generation_config
        temperature = float(kw.get("temperature", self.temperature))
        sample = temperature > 0
        cfg = GenerationConfig(
            max_new_tokens=int(max_new_tokens or self.max_new_tokens),
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=float(kw.get("top_p", self.top_p)) if sample else None,
            top_k=None,
            repetition_penalty=float(kw.get("repetition_penalty", self.repetition_penalty)),
            eos_token_id=base.eos_token_id if base.eos_token_id is not None else tok.eos_token_id,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            stop_strings=list(stop) or None,
        )
        return {
            "input_ids": input_ids,
            "attention_mask": input_ids.new_ones(input_ids.shape),
            "generation_config": cfg,
            "tokenizer": tok,
        }

    def _stops(self, stop: list[str] | None) -> list[str]:
        return [s for s in (stop if stop is not None else self.stop or []) if s]

    def _finish_reason(self, new_ids: Any, max_new: int, stopped_by_string: bool) -> str:
        if stopped_by_string:
            return "stop"
        eos = self.loaded.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        if len(new_ids) and int(new_ids[-1]) in eos_ids:
            return "stop"
        return "length" if len(new_ids) >= max_new else "stop"

    def _run(
        self,
        chat: list[dict[str, str]],
        stop: Sequence[str],
        max_new_tokens: int | None = None,
        prefill: str = "",
        json_mode: bool = False,
        **kw: Any,
    ) -> _GenOutput:
        import torch

        loaded = self.loaded
        max_sentences = None if json_mode else kw.pop("max_sentences", self.max_sentences)
        use_prefix = bool(kw.pop("prefix_cache", self.prefix_cache))
        input_ids = _encode_chat(loaded.tokenizer, chat, prefill)
        gen = self._gen_kwargs(input_ids, max_new_tokens, stop, **kw)
        n_prefix = _system_prefix_len(loaded.tokenizer, chat, input_ids) if use_prefix else 0
        cancel = _Cancel(loaded.tokenizer, input_ids.shape[1], prefill, json_mode, max_sentences)
        t0 = time.perf_counter()
        with loaded.lock, torch.inference_mode():
            if n_prefix:
                gen[loaded.cache_kwarg] = _prefix_cache(loaded, input_ids, n_prefix)
            torch.manual_seed(int(kw.get("seed", self.seed)))
            out = loaded.model.generate(**gen, stopping_criteria=[cancel])
        seconds = time.perf_counter() - t0
        new_ids = out[0, input_ids.shape[1] :]
        text = loaded.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, hit = _cut_at_stop(text, stop)
        cut = sentence_cut(text, max_sentences)
        if cut is not None and cut < len(text.rstrip()):
            text, hit = text[:cut], True
        max_new = gen["generation_config"].max_new_tokens
        return _GenOutput(
            text=text,
            prompt_tokens=int(input_ids.shape[1]),
            completion_tokens=len(new_ids),
            finish_reason=self._finish_reason(new_ids, max_new, hit),
            seconds=seconds,
        )

    def _info(self, prompt_tokens: int, completion_tokens: int, finish_reason: str, seconds: float) -> dict:
        return {
            "model_name": self.loaded.name,
            "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "generation_seconds": round(seconds, 4),
            "tokens_per_second": round(completion_tokens / seconds, 2) if seconds > 0 else None,
        }

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )

    # -- langchain hooks -----------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        res = self._run(to_chat_dicts(messages), self._stops(stop), **kwargs)
        info = self._info(res.prompt_tokens, res.completion_tokens, res.finish_reason, res.seconds)
        message = AIMessage(
            content=res.text, usage_metadata=self._usage(res.prompt_tokens, res.completion_tokens)
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info=info)],
            llm_output={
                "model_name": info["model_name"],
                "token_usage": {k: info[k] for k in ("prompt_tokens", "completion_tokens")},
            },
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import TextIteratorStreamer

        loaded = self.loaded
        stops = self._stops(stop)
        max_sentences = kwargs.pop("max_sentences", self.max_sentences)
        use_prefix = bool(kwargs.pop("prefix_cache", self.prefix_cache))
        chat = to_chat_dicts(messages)
        input_ids = _encode_chat(loaded.tokenizer, chat)
        gen = self._gen_kwargs(input_ids, kwargs.pop("max_new_tokens", None), stops, **kwargs)
        n_prefix = _system_prefix_len(loaded.tokenizer, chat, input_ids) if use_prefix else 0
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = _Cancel()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                with loaded.lock, torch.inference_mode():
                    if cancel.event.is_set():  # abandoned while waiting for the lock: skip it
                        streamer.end()
                        return
                    t0 = time.perf_counter()
                    if n_prefix:
                        gen[loaded.cache_kwarg] = _prefix_cache(loaded, input_ids, n_prefix)
                    torch.manual_seed(int(kwargs.get("seed", self.seed)))
                    result["out"] = loaded.model.generate(
                        **gen, streamer=streamer, stopping_criteria=[cancel]
                    )
                    result["seconds"] = time.perf_counter() - t0
            except BaseException as exc:  # surfaced in the consumer thread below
                result["error"] = exc
                streamer.end()

        thread = threading.Thread(target=work, name=STREAM_THREAD_NAME, daemon=True)
        thread.start()
        buffer, hit, emitted = "", False, ""
        try:
            for piece in streamer:
                if "error" in result:
                    break
                buffer += piece
                text, hit = _cut_at_stop(buffer, stops)
                if max_sentences:
                    # Offsets are over everything generated so far: emitted text + buffer.
                    cut = sentence_cut(emitted + text, max_sentences)
                    if cut is not None and cut - len(emitted) < len(text.rstrip()):
                        text, hit = text[: max(cut - len(emitted), 0)], True
                if hit:
                    buffer = text
                    cancel.event.set()
                    break
                keep = _held_back(buffer, stops)
                if max_sentences:  # trailing spaces wait: a sentence cut there must not show them
                    keep = max(keep, len(buffer) - len(buffer.rstrip()))
                emit = buffer[: len(buffer) - keep]
                if emit:
                    buffer = buffer[len(emit) :]
                    emitted += emit
                    if run_manager:
                        run_manager.on_llm_new_token(emit)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=emit))
        finally:
            # Early stop or abandoned consumer: generation must end at its next token. Nothing
            # here may block: an abandoned generator in a reference cycle is closed by the
            # garbage collector in whichever thread collects, often the worker itself mid
            # forward pass, which would then wait for its own stop signal forever.
            cancel.event.set()
        thread.join()  # the loop ended or broke out (not abandoned): at most one more token
        if "error" in result:
            raise result["error"]
        if buffer:
            if run_manager:
                run_manager.on_llm_new_token(buffer)
            yield ChatGenerationChunk(message=AIMessageChunk(content=buffer))
        new_ids = result["out"][0, input_ids.shape[1] :]
        p, c = int(input_ids.shape[1]), len(new_ids)
        finish = self._finish_reason(new_ids, gen["generation_config"].max_new_tokens, hit)
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=self._usage(p, c), chunk_position="last"),
            generation_info=self._info(p, c, finish, result["seconds"]),
        )

    # -- helpers beyond the chat interface -------------------------------------------------------

    def warm_prefix(self, messages: Sequence[BaseMessage] | Sequence[Mapping[str, str]]) -> int:
        """Precompute the system-message KV cache `prefix_cache` would reuse for `messages`.

        Call at start-up with each prompt template so no shopper's turn pays for it. Returns the
        cached prefix length in tokens (0: no system message, or it does not tokenize as a prefix).
        """
        loaded = self.loaded
        chat = to_chat_dicts(messages)
        input_ids = _encode_chat(loaded.tokenizer, chat)
        n = _system_prefix_len(loaded.tokenizer, chat, input_ids)
        if n:
            with loaded.lock:
                _prefix_cache(loaded, input_ids, n, private=False)
        return n

    def generate_json(
        self,
        messages: Sequence[BaseMessage] | Sequence[Mapping[str, str]] | str,
        schema: type[BaseModel] | Mapping[str, Any],
        max_new_tokens: int = 256,
    ) -> BaseModel | dict[str, Any] | None:
        """Ask for one JSON object matching `schema`; validated result, or None if unrepairable.

        The reply is prefilled with `{` and generation stops as soon as the object closes, which
        keeps small models from rambling. Callers should treat None as "discard".
        """
        schema_dict = schema.model_json_schema() if _is_model_class(schema) else dict(schema)  # type: ignore[union-attr]
        instruction = (
            "Reply with exactly one JSON object and nothing else (no prose, no code fences). "
            "It must match this JSON schema:\n" + json.dumps(schema_dict, ensure_ascii=False)
        )
        chat = to_chat_dicts(messages)
        if chat and chat[0]["role"] == "system":
            chat[0] = {"role": "system", "content": chat[0]["content"] + "\n\n" + instruction}
        else:
            chat.insert(0, {"role": "system", "content": instruction})
        res = self._run(chat, stop=[], max_new_tokens=max_new_tokens, prefill="{", json_mode=True)
        return parse_json_output("{" + res.text, schema)

    def score_choices(self, prompt: str | Sequence[Any], choices: Sequence[str]) -> np.ndarray:
        """Next-token log-probabilities of single-token `choices` after `prompt` (see `score_choices`)."""
        loaded = self.loaded
        with loaded.lock:
            return score_choices(loaded.model, loaded.tokenizer, prompt, choices)


# --------------------------------------------------------------------------------------------
# JSON extraction / repair / validation
# --------------------------------------------------------------------------------------------


def _is_model_class(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json_block(text: str) -> str | None:
    """The first balanced `{...}` block in `text` (string-aware); if it never closes, the tail
    from the first `{` closed with the missing brackets/quote. None when there is no `{`."""
    fenced = _FENCE.search(text)
    if fenced and "{" in fenced.group(1):
        text = fenced.group(1)
    start = text.find("{")
    if start < 0:
        return None
    stack: list[str] = []
    in_str = esc = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack and stack[-1] == ch:
                stack.pop()
            if not stack:
                return text[start : i + 1]
    # Truncated (e.g. hit max_new_tokens): close what is open.
    tail = text[start:].rstrip()
    if in_str:
        tail += '"'
    tail = re.sub(r",\s*$", "", tail)
    return tail + "".join(reversed(stack))


def _repairs(block: str) -> Iterator[str]:
    yield block
    fixed = re.sub(r",\s*([}\]])", r"\1", block)  # trailing commas
    yield fixed
    py = re.sub(r"\bTrue\b", "true", fixed)
    py = re.sub(r"\bFalse\b", "false", py)
    py = re.sub(r"\bNone\b", "null", py)
    yield py
    if "'" in py:
        # Python-style single quotes -> JSON double quotes (only when that is the quoting used).
        yield re.sub(r"(?<![\w\\])'|'(?![\w])", '"', py)
    yield re.sub(r"([{,]\s*)([A-Za-z_]\w*)(\s*:)", r'\1"\2"\3', py)  # unquoted keys


def _validate(obj: Any, schema: type[BaseModel] | Mapping[str, Any]) -> BaseModel | dict[str, Any] | None:
    if _is_model_class(schema):
        try:
            return schema.model_validate(obj)  # type: ignore[union-attr]
        except ValidationError:
            return None
    import jsonschema

    try:
        jsonschema.validate(obj, dict(schema))
    except jsonschema.ValidationError:
        return None
    return obj


def parse_json_output(
    text: str, schema: type[BaseModel] | Mapping[str, Any]
) -> BaseModel | dict[str, Any] | None:
    """Extract, repair and validate a JSON object from model output; None when nothing valid.

    `schema` is a pydantic model class (returns an instance) or a JSON schema dict (returns the dict).
    """
    block = extract_json_block(text)
    if block is None:
        return None
    seen: set[str] = set()
    for candidate in _repairs(block):
        if candidate in seen:
            continue
        seen.add(candidate)
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        result = _validate(obj, schema)
        if result is not None:
            return result
    return None


# --------------------------------------------------------------------------------------------
# Verbalizer scoring (LlamaRec-style reranking)
# --------------------------------------------------------------------------------------------


def choice_token_ids(tokenizer: Any, choices: Sequence[str]) -> list[int]:
    """The token id of each single-token choice (letters "A".."T"); an error if one is not one token."""
    if not choices:
        raise ValueError("choices must not be empty")
    ids = []
    for c in choices:
        toks = tokenizer.encode(c, add_special_tokens=False)
        if len(toks) != 1:
            raise ValueError(
                f"choice {c!r} is {len(toks)} tokens for this tokenizer; each choice must be one token"
            )
        ids.append(toks[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"choices {list(choices)!r} map to duplicate token ids {ids}")
    return ids


def _prompt_ids(tokenizer: Any, prompt: str | Sequence[Any]) -> list[int]:
    """A raw string is used as is (already formatted); messages go through the chat template."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return _encode_chat(tokenizer, to_chat_dicts(prompt))[0].tolist()


def score_choices_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str | Sequence[Any]],
    choices: Sequence[str],
    batch_size: int = 8,
) -> np.ndarray:
    """`[len(prompts), len(choices)]` next-token log-probs (over the full vocabulary) of each choice.

    One forward pass per batch; prompts are left-padded so the last position is the one scored.
    Works on a plain or a PEFT model (the caller chooses train/eval mode and grad context).
    """
    import torch

    ids = choice_token_ids(tokenizer, choices)
    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    if any(len(e) == 0 for e in encoded):
        raise ValueError("prompts must not be empty")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    head = model.get_output_embeddings()
    # bf16/fp16 logits are coarse (steps of 1/16-1/8 at typical logit sizes): a flat letter
    # distribution then has ~7 distinct scores for 20 candidates and rankings tie. Recompute the
    # choices' logits in float32 from the head's input; the normaliser stays the model's own.
    exact = isinstance(head, torch.nn.Linear) and head.weight.dtype in (torch.bfloat16, torch.float16)
    captured: list[Any] = []
    hook = head.register_forward_hook(lambda _m, inp, _o: captured.append(inp[0])) if exact else None
    if exact:
        w = head.weight[ids].float()
        bias = head.bias[ids].float() if head.bias is not None else None
    rows = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start : start + batch_size]
                width = max(len(e) for e in chunk)
                input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in chunk], device=device)
                mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in chunk], device=device)
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
                captured.clear()
                out = model(
                    input_ids=input_ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=1
                )
                logits = out.logits[:, -1, :].float()
                norm = torch.logsumexp(logits, dim=-1, keepdim=True)
                if exact:
                    picked = captured[-1][:, -1, :].float() @ w.T
                    if bias is not None:
                        picked = picked + bias
                else:
                    picked = logits[:, ids]
                rows.append((picked - norm).cpu().numpy())
    finally:
        if hook is not None:
            hook.remove()
    return np.concatenate(rows, axis=0).astype(np.float32)


def score_choices(
    model: Any, tokenizer: Any, prompt: str | Sequence[Any], choices: Sequence[str]
) -> np.ndarray:
    """`[len(choices)]` next-token log-probs of single-token `choices` (e.g. letters "A".."T") after `prompt`."""
    return score_choices_batch(model, tokenizer, [prompt], choices, batch_size=1)[0]

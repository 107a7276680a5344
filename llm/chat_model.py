"""The in-process LLM as a langchain chat model.

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
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel, PrivateAttr

from llm.choices import score_choices
from llm.json_output import parse_json_output, schema_dict
from llm.messages import encode_chat, system_prefix_len, to_chat_dicts
from llm.models import load_llm, parse_dtype, parse_quantize, resolve_llm
from llm.registry import DEFAULT_LLM
from llm.stopping import StopCriterion, StreamCut, cut_at_stop, sentence_cut

__all__ = ["STREAM_THREAD_NAME", "LoadedLLM", "LocalChatModel", "clear_llm_cache", "get_loaded_llm"]


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
    """Registry name (see `llm.registry.LLM_REGISTRY`), local HF dir, or hub id."""
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
        input_ids = encode_chat(loaded.tokenizer, chat, prefill)
        gen = self._gen_kwargs(input_ids, max_new_tokens, stop, **kw)
        n_prefix = system_prefix_len(loaded.tokenizer, chat, input_ids) if use_prefix else 0
        cancel = StopCriterion(loaded.tokenizer, input_ids.shape[1], prefill, json_mode, max_sentences)
        t0 = time.perf_counter()
        with loaded.lock, torch.inference_mode():
            if n_prefix:
                gen[loaded.cache_kwarg] = _prefix_cache(loaded, input_ids, n_prefix)
            torch.manual_seed(int(kw.get("seed", self.seed)))
            out = loaded.model.generate(**gen, stopping_criteria=[cancel])
        seconds = time.perf_counter() - t0
        new_ids = out[0, input_ids.shape[1] :]
        text = loaded.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, hit = cut_at_stop(text, stop)
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
        from transformers import TextIteratorStreamer

        loaded = self.loaded
        stops = self._stops(stop)
        max_sentences = kwargs.pop("max_sentences", self.max_sentences)
        use_prefix = bool(kwargs.pop("prefix_cache", self.prefix_cache))
        chat = to_chat_dicts(messages)
        input_ids = encode_chat(loaded.tokenizer, chat)
        gen = self._gen_kwargs(input_ids, kwargs.pop("max_new_tokens", None), stops, **kwargs)
        n_prefix = system_prefix_len(loaded.tokenizer, chat, input_ids) if use_prefix else 0
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = StopCriterion()
        result: dict[str, Any] = {}
        seed = int(kwargs.get("seed", self.seed))
        thread = threading.Thread(
            target=self._stream_worker,
            args=(gen, n_prefix, seed, streamer, cancel, result),
            name=STREAM_THREAD_NAME,
            daemon=True,
        )
        thread.start()
        cut = StreamCut(stops, max_sentences)
        try:
            for piece in streamer:
                if "error" in result:
                    break
                emit = cut.feed(piece)
                if cut.hit:
                    cancel.event.set()
                    break
                if emit:
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
        if cut.buffer:
            if run_manager:
                run_manager.on_llm_new_token(cut.buffer)
            yield ChatGenerationChunk(message=AIMessageChunk(content=cut.buffer))
        new_ids = result["out"][0, input_ids.shape[1] :]
        p, c = int(input_ids.shape[1]), len(new_ids)
        finish = self._finish_reason(new_ids, gen["generation_config"].max_new_tokens, cut.hit)
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=self._usage(p, c), chunk_position="last"),
            generation_info=self._info(p, c, finish, result["seconds"]),
        )

    def _stream_worker(
        self,
        gen: dict[str, Any],
        n_prefix: int,
        seed: int,
        streamer: Any,
        cancel: StopCriterion,
        result: dict[str, Any],
    ) -> None:
        """``generate`` into ``streamer`` (run in its own thread): the output and its time, or the
        error, land in ``result`` for the consuming thread."""
        import torch

        loaded = self.loaded
        try:
            with loaded.lock, torch.inference_mode():
                if cancel.event.is_set():  # abandoned while waiting for the lock: skip it
                    streamer.end()
                    return
                t0 = time.perf_counter()
                if n_prefix:
                    gen[loaded.cache_kwarg] = _prefix_cache(loaded, gen["input_ids"], n_prefix)
                torch.manual_seed(seed)
                result["out"] = loaded.model.generate(**gen, streamer=streamer, stopping_criteria=[cancel])
                result["seconds"] = time.perf_counter() - t0
        except BaseException as exc:  # surfaced in the consumer thread
            result["error"] = exc
            streamer.end()

    # -- helpers beyond the chat interface -------------------------------------------------------

    def warm_prefix(self, messages: Sequence[BaseMessage] | Sequence[Mapping[str, str]]) -> int:
        """Precompute the system-message KV cache `prefix_cache` would reuse for `messages`.

        Call at start-up with each prompt template so no shopper's turn pays for it. Returns the
        cached prefix length in tokens (0: no system message, or it does not tokenize as a prefix).
        """
        loaded = self.loaded
        chat = to_chat_dicts(messages)
        input_ids = encode_chat(loaded.tokenizer, chat)
        n = system_prefix_len(loaded.tokenizer, chat, input_ids)
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
        schema_json = schema_dict(schema)
        instruction = (
            "Reply with exactly one JSON object and nothing else (no prose, no code fences). "
            "It must match this JSON schema:\n" + json.dumps(schema_json, ensure_ascii=False)
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



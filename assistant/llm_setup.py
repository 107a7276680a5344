"""Building the chat model and the LLM re-ranker from names, and reading their messages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from assistant.adapters import route_adapters
from assistant.config import AssistantConfig
from llm.chat_model import LocalChatModel
from llm.models import default_quantize, parse_quantize
from llm.openai_backend import is_openai_spec, openai_chat_model
from llm.registry import DEFAULT_LLM
from llm.reranker import LLMReranker  # the one implementation of the listwise prompt

_DEFAULTS = AssistantConfig()


def resolve_chat_model(
    llm: Any,
    adapter: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    cache_dir: Any = None,
    quantize: str | None = "auto",
    prefix_cache: bool = _DEFAULTS.prefix_cache,
    max_new_tokens: int = _DEFAULTS.max_new_tokens,
) -> Any:
    """``None``/"none" -> None; a chat model instance as is; ``"openai:MODEL@URL"`` -> a
    ``ChatOpenAI`` on that OpenAI-compatible endpoint (``max_new_tokens`` as its ``max_tokens``);
    a name or path -> ``LocalChatModel`` with the product's latency defaults (int8 on CPU,
    system-prompt KV cache, 2-sentence cap).

    ``quantize``: None (full precision), "int8", or "auto" (``llm.models.default_quantize``:
    $SHOPASSIST_LLM_QUANTIZE, else int8 on CPU).
    """
    if llm is None or (isinstance(llm, str) and llm.lower() == "none"):
        return None
    if is_openai_spec(llm):
        if adapter is not None:
            raise ValueError("a LoRA adapter cannot be applied to a remote LLM; serve it with the endpoint")
        return openai_chat_model(llm, max_tokens=max_new_tokens)
    if isinstance(llm, str | Path):
        scheme = default_quantize() if quantize == "auto" else parse_quantize(quantize)
        model = LocalChatModel(
            model_name=str(llm),
            adapter=None if adapter is None else str(adapter),
            threads=threads,
            cache_dir=None if cache_dir is None else str(cache_dir),
            max_new_tokens=_DEFAULTS.max_new_tokens,
            max_sentences=_DEFAULTS.max_sentences,
            quantize=scheme,
            prefix_cache=prefix_cache,
        )
        _ = model.loaded  # load now, not in the first turn
        return model
    if not hasattr(llm, "stream") or not hasattr(llm, "invoke"):
        raise TypeError(
            f"llm must be a model name/path, a langchain chat model or None; got {type(llm).__name__}"
        )
    return llm


def chat_models(llm: Any, cfg: AssistantConfig) -> tuple[Any, Any | None]:
    """The chat model and the understanding stage's model (None: the chat model does both).

    Each of ``cfg.adapters`` goes where its training data says (``assistant.adapters``): an
    understanding adapter (``finetune generate --task understand``) runs the understanding stage's
    JSON fallback on its own copy of the base model, any other adapter (reply, listwise) is the
    chat model's; without a chat adapter the replies stay with the base model."""
    routes = route_adapters(cfg.adapters, llm)
    options = {
        "threads": cfg.threads, "cache_dir": cfg.cache_dir, "quantize": cfg.llm_quantize,
        "prefix_cache": cfg.prefix_cache, "max_new_tokens": cfg.max_new_tokens,
    }  # fmt: skip
    chat = resolve_chat_model(llm, adapter=routes.chat, **options)
    understand = None
    if routes.understand is not None:  # its own copy of the base model, the adapter merged in
        understand = resolve_chat_model(llm, adapter=routes.understand, **options)
    return chat, understand


def build_llm_reranker(
    chat_model: Any,
    llm: Any,
    adapter: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    quantize: str | None = "auto",
    cache_dir: Any = None,
) -> Any:
    """The listwise LLM re-ranker stage: the chat model's own loaded weights (no second copy in
    memory) unless ``adapter`` names a LoRA adapter, which is loaded on the same base model."""
    if adapter is None and isinstance(chat_model, LocalChatModel):
        return LLMReranker.from_chat_model(chat_model)
    if adapter is not None and not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise ValueError(
            f"reranker_adapter {adapter} is not a LoRA adapter directory (no adapter_config.json)"
        )
    base = chat_model.model_name if isinstance(chat_model, LocalChatModel) else llm
    if not isinstance(base, str | Path) or str(base).lower() == "none" or str(base).startswith("openai:"):
        base = DEFAULT_LLM  # a remote or template-only chat model: re-rank with the packaged model
    scheme = default_quantize() if quantize == "auto" else parse_quantize(quantize)
    return LLMReranker(base, adapter_dir=adapter, threads=threads, quantize=scheme, cache_dir=cache_dir)


def chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return str(content or "")


# Card-line scaffolding in a reply: an id tag, a list marker starting a line, the v2 cards' field
# separator or "why:" label.


def model_name(llm: Any) -> str:
    return str(getattr(llm, "model_name", None) or type(llm).__name__)

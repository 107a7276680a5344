"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, TGI, ``llm.openai_server``) as
the assistant's LLM, through ``langchain-openai``: for shops whose model does not fit in-process.

Selected by a spec string wherever a model name is accepted (``from_dataset(llm=...)``,
``app.py --llm``):

- ``openai:MODEL@http://host:8000/v1``: MODEL served at that base URL;
- ``openai:MODEL``: base URL from ``$SHOPASSIST_LLM_URL`` (else ``$OPENAI_BASE_URL``, else the
  OpenAI API itself);
- ``openai@http://host:8000/v1`` (or ``openai``): the first model the endpoint lists at ``/models``.

The API key comes from ``$SHOPASSIST_LLM_API_KEY``, else ``$OPENAI_API_KEY``, else a placeholder
(local servers ignore it; the SDK insists on one). The turn logic needs nothing beyond
``stream``/``invoke``: the sentence cap is applied while streaming, the token cap is the client's
``max_tokens``, and an endpoint error becomes the template reply with an "llm error" note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from llm.local_only import ensure_local_url

PREFIX = "openai"
URL_ENV = "SHOPASSIST_LLM_URL"
KEY_ENV = "SHOPASSIST_LLM_API_KEY"
TIMEOUT_S = 120.0  # one request; CPU-served models can take a while to prefill
PLACEHOLDER_KEY = "not-needed"
OPENAI_API_URL = "https://api.openai.com/v1"  # what the SDK uses when no base URL is given


@dataclass(frozen=True)
class OpenAISpec:
    """A parsed ``openai:MODEL@URL`` spec; None fields are resolved from the environment / endpoint."""

    model: str | None
    base_url: str | None

    def __str__(self) -> str:
        return (
            PREFIX + (f":{self.model}" if self.model else "") + (f"@{self.base_url}" if self.base_url else "")
        )


def is_openai_spec(llm: Any) -> bool:
    return isinstance(llm, str) and (llm == PREFIX or llm.startswith((f"{PREFIX}:", f"{PREFIX}@")))


def parse_openai_spec(spec: str) -> OpenAISpec:
    """``openai[:MODEL][@URL]`` -> OpenAISpec; a clear ValueError for anything else."""
    if not is_openai_spec(spec):
        raise ValueError(f"not an OpenAI-compatible LLM spec (openai:MODEL@URL): {spec!r}")
    rest = spec[len(PREFIX) :]
    model, url = rest, None
    at = rest.find("@http")
    if at >= 0:
        model, url = rest[:at], rest[at + 1 :]
    elif "@" in rest:
        raise ValueError(f"LLM endpoint URL in {spec!r} must start with http:// or https://")
    model = model.removeprefix(":").strip() or None
    if url is not None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"bad LLM endpoint URL {url!r} in {spec!r} (expected http://host:port/v1)")
        url = url.rstrip("/")
    return OpenAISpec(model, url)


def with_endpoint(llm: Any, url: str, default_name: str | None = None) -> Any:
    """The spec for ``llm`` served at ``url`` (``--llm-url``): None/"none" stay None, an ``openai:``
    spec keeps its model, ``default_name`` (the in-process default, not something an endpoint
    serves) means the endpoint's first model, anything else is the served model's name."""
    if llm is None or (isinstance(llm, str) and llm.lower() == "none"):
        return None
    if is_openai_spec(llm):
        return str(OpenAISpec(parse_openai_spec(llm).model, url.rstrip("/")))
    if not isinstance(llm, str):
        raise TypeError(f"with an LLM URL, llm must be a served model name; got {type(llm).__name__}")
    model = None if llm == default_name else llm
    return str(OpenAISpec(model, url.rstrip("/")))


def _api_key() -> str:
    return os.environ.get(KEY_ENV) or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY


def served_models(base_url: str | None, timeout: float = 10.0) -> list[str]:
    """Model ids the endpoint lists at ``/models`` (ConnectionError naming the URL if none answers)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=_api_key(), timeout=timeout, max_retries=0)
    try:
        return [m.id for m in client.models.list()]
    except openai.APIError as e:
        raise ConnectionError(
            f"no OpenAI-compatible server answers at {base_url or 'the default OpenAI URL'}: "
            f"{type(e).__name__}: {e}"
        ) from e


def openai_chat_model(
    spec: str | OpenAISpec,
    *,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    timeout: float = TIMEOUT_S,
    max_retries: int = 1,
) -> Any:
    """A ``langchain_openai.ChatOpenAI`` for the spec (greedy by default, like the local model)."""
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("OpenAI-compatible LLMs need `pip install langchain-openai`") from e
    s = parse_openai_spec(spec) if isinstance(spec, str) else spec
    base_url = s.base_url or os.environ.get(URL_ENV) or os.environ.get("OPENAI_BASE_URL") or None
    # Local-only mode: loopback endpoints only (no URL means the OpenAI API itself).
    ensure_local_url(base_url or OPENAI_API_URL, "LLM endpoint")
    model = s.model
    if model is None:
        models = served_models(base_url)
        if not models:
            raise ValueError(f"the LLM endpoint at {base_url} serves no model")
        model = models[0]
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=_api_key(),
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout,
        max_retries=max_retries,
    )

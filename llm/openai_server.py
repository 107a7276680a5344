"""A minimal OpenAI-compatible server for one in-process model: ``python -m llm.openai_server``.

For tests and for people without vLLM / llama.cpp: it serves ``GET /v1/models`` and
``POST /v1/chat/completions`` (plain JSON, or ``"stream": true`` as server-sent events with an
optional usage chunk) on top of ``llm.chat_model.LocalChatModel``, so the assistant's
``openai:MODEL@URL`` backend can be exercised end to end on one machine. Requests run one at a
time per model (the model holds a lock); a client that disconnects mid-stream stops generation.
Errors use the OpenAI error shape (``{"error": {"message", "type", "code"}}``).

    python -m llm.openai_server --model smollm2-135m --port 8001
    python app.py --llm openai:smollm2-135m@http://127.0.0.1:8001/v1
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool

from llm.chat_model import LocalChatModel
from llm.constrained import generate_constrained_json
from llm.models import default_quantize, parse_quantize
from llm.runtime import configure, set_torch_threads

MAX_TOKENS_LIMIT = 4096


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The subset of the OpenAI chat-completions request this server honours (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    # {"type": "json_schema", "json_schema": {"schema": {...}}}: answered by constrained decoding
    # (what langchain's ``with_structured_output`` sends).
    response_format: dict[str, Any] | None = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(p.get("text", "")) for p in content if p.get("type", "text") == "text")


def _gen_kwargs(req: ChatRequest) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    n = req.max_completion_tokens or req.max_tokens
    if n is not None:
        kw["max_new_tokens"] = n
    for name in ("temperature", "top_p", "seed"):
        value = getattr(req, name)
        if value is not None:
            kw[name] = value
    if req.stop is not None:
        kw["stop"] = [req.stop] if isinstance(req.stop, str) else list(req.stop)
    return kw


def _usage(meta: dict[str, Any] | None) -> dict[str, int]:
    meta = meta or {}
    p, c = int(meta.get("input_tokens", 0)), int(meta.get("output_tokens", 0))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _error(
    status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status
    )


@dataclass(frozen=True)
class _Reply:
    """One chat completion's id, creation time and model name, repeated by its body or every chunk."""

    served_name: str
    rid: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def head(self, kind: str) -> dict[str, Any]:
        return {"id": self.rid, "object": kind, "created": self.created, "model": self.served_name}

    def completion(self, msg: Any) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": msg.content},
            "finish_reason": msg.response_metadata.get("finish_reason", "stop"),
        }
        return {**self.head("chat.completion"), "choices": [choice], "usage": _usage(msg.usage_metadata)}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            **self.head("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _events(
    model: Any,
    reply: _Reply,
    messages: list[dict[str, str]],
    stop: list[str] | None,
    kwargs: dict[str, Any],
    include_usage: bool,
    gone: threading.Event,
) -> Iterator[str]:
    """The server-sent events of one streamed completion; stops early once ``gone`` is set."""
    yield reply.chunk({"role": "assistant", "content": ""})
    finish, usage = "stop", None
    try:
        with contextlib.closing(model.stream(messages, stop=stop, **kwargs)) as pieces:
            for piece in pieces:
                if gone.is_set():  # closing `pieces` stops generation at its next token
                    return
                if piece.content:
                    yield reply.chunk({"content": piece.content})
                finish = piece.response_metadata.get("finish_reason", finish)
                usage = piece.usage_metadata or usage
    except Exception as e:  # headers are sent: report in-band, as OpenAI does
        err = {"error": {"message": f"generation failed: {type(e).__name__}: {e}", "type": "server_error"}}
        yield f"data: {json.dumps(err)}\n\n"
        return
    yield reply.chunk({}, finish)
    if include_usage:
        body = {**reply.head("chat.completion.chunk"), "choices": [], "usage": _usage(usage)}
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


async def _closing_body(events: Callable[[threading.Event], Iterator[str]]) -> AsyncIterator[str]:
    """``events`` in the threadpool, closed when the client goes away: starlette drops a sync
    iterator on disconnect without closing it, and generation would run on to ``max_tokens``
    holding the model lock."""
    gone = threading.Event()
    lines = events(gone)
    try:
        async for line in iterate_in_threadpool(lines):
            yield line
    finally:
        gone.set()  # seen at the next piece if a pool thread is inside `lines` right now
        with contextlib.suppress(ValueError):  # "generator already executing"
            lines.close()


def chat_completion(model: Any, served_name: str, req: ChatRequest) -> Any:
    """``POST /v1/chat/completions``: a JSON completion, a ``text/event-stream`` of chunks, or an error."""
    if req.model != served_name:
        return _error(
            404, f"model {req.model!r} is not served here (serving {served_name!r})", code="model_not_found"
        )
    if req.n != 1:
        return _error(400, "only n=1 is supported")
    messages = [
        {"role": m.role if m.role != "developer" else "system", "content": _text(m.content)}
        for m in req.messages
    ]
    kwargs = _gen_kwargs(req)
    stop = kwargs.pop("stop", None)
    reply = _Reply(served_name)
    if req.stream:
        include_usage = bool((req.stream_options or {}).get("include_usage"))
        events = functools.partial(_events, model, reply, messages, stop, kwargs, include_usage)
        return StreamingResponse(_closing_body(events), media_type="text/event-stream")
    schema = ((req.response_format or {}).get("json_schema") or {}).get("schema")
    try:
        if isinstance(schema, dict):
            obj = generate_constrained_json(model.loaded, messages, schema, max_new_tokens=400)
            msg = AIMessage(content=json.dumps(obj, ensure_ascii=False))
        else:
            msg = model.invoke(messages, stop=stop, **kwargs)
    except Exception as e:
        return _error(500, f"generation failed: {type(e).__name__}: {e}", kind="server_error")
    return reply.completion(msg)


def create_app(model: Any, served_name: str) -> FastAPI:
    """The FastAPI app serving ``model`` (a ``LocalChatModel``) under the name ``served_name``."""
    app = FastAPI(title="shopping-assistant OpenAI-compatible server", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(400, f"invalid request: {where}: {first.get('msg', 'malformed body')}")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": served_name, "object": "model", "created": created, "owned_by": "local"}],
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest) -> Any:
        return chat_completion(model, served_name, req)

    return app


def load_model(
    name: str,
    adapter: str | None = None,
    threads: int | None = None,
    cache_dir: str | None = None,
    quantize: str | None = "auto",
) -> Any:
    """A loaded ``LocalChatModel`` (no sentence cap: a generic server returns what was asked for)."""
    set_torch_threads(threads)
    model = LocalChatModel(
        model_name=name,
        adapter=adapter,
        threads=threads,
        cache_dir=cache_dir,
        max_new_tokens=256,
        quantize=default_quantize() if quantize == "auto" else parse_quantize(quantize),
        prefix_cache=True,
    )
    _ = model.loaded
    return model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m", help="registry name or local HF model dir")
    p.add_argument("--served-name", default=None, help="model id clients ask for (default: --model's name)")
    p.add_argument("--adapter", default=None, help="optional LoRA adapter dir from finetune/")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--cache-dir", default=None, help="converted-model cache (default $SHOPASSIST_CACHE)")
    p.add_argument("--quantize", default="auto", help="auto | int8 | none")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    configure()
    name = args.served_name or (Path(args.model).name if os.path.isdir(args.model) else args.model)
    try:
        model = load_model(args.model, args.adapter, args.threads, args.cache_dir, args.quantize)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}: this server has no authentication", file=sys.stderr)
    print(f"serving {name!r} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(create_app(model, name), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())

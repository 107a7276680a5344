"""HTTP JSON API over one ``ShoppingAssistant``: ``shopping-assistant serve [--dataset ...] [--llm ...]``.

Every route is a thin translation of the Python API (``chat``, ``stream``, ``feedback``,
``profile``, ``edit_profile``, ``forget``): no turn logic lives here, so the HTTP and Python
callers get the same replies, the same per-session isolation and the same input checks. Errors
of the Python API map to 4xx with its message: ``ValueError``/``TypeError`` → 422,
``SessionOwnershipError`` → 403, ``KeyError`` (unknown item/cluster) → 404.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from assistant.adapters import ADAPTER_HELP
from assistant.reply import StreamEvent, event_to_dict
from assistant.sessions import SessionOwnershipError
from assistant.shopping_assistant import ShoppingAssistant, open_for_command
from llm.local_only import LOCAL_ONLY_ENV, is_loopback_host, local_only
from llm.runtime import configure
from retrieval.data import DEFAULT_DATASET, available_datasets

__all__ = ["API_KEY_ENV", "API_KEY_HEADER", "create_api", "event_to_dict", "main", "serving"]

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "SHOPASSIST_API_KEY"
log = logging.getLogger(__name__)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    session_id: str = Field(min_length=1)
    user_id: str | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(min_length=1)
    item_id: str
    liked: bool
    user_id: str | None = None


class ProfileEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    remove_items: list[str] = Field(default_factory=list)
    remove_clusters: list[int] = Field(default_factory=list)


class ItemOut(BaseModel):
    item_id: str
    title: str
    price: float | None = None
    brand: str | None = None
    categories: list[str] = Field(default_factory=list)
    score: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    contributions: dict[str, float] = Field(default_factory=dict)
    rating: float | None = None
    in_stock: bool = True
    image: str | None = None  # the catalog image: an http(s) URL or a file path on the server


class ReplyOut(BaseModel):
    """``assistant.reply.Reply.to_dict()``."""

    text: str
    items: list[ItemOut]
    constraints: dict[str, Any]
    intent: str
    session_id: str
    user_id: str | None = None
    comparison: dict[str, Any] | None = None
    bundle: dict[str, Any] | None = None
    grounding: dict[str, Any]
    language: str
    meta: dict[str, Any] = Field(default_factory=dict)


def _sse(event: StreamEvent) -> str:
    data = event_to_dict(event)
    # default=str: reply meta may carry timings as numpy scalars or paths.
    return f"event: {data['type']}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _jsonable(d: dict[str, Any]) -> Any:
    return json.loads(json.dumps(d, default=str))


def _api_key_check(api_key: str | None) -> Callable[..., None]:
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    def check(given: str | None = Depends(header)) -> None:
        if api_key and not (given and hmac.compare_digest(given.encode(), api_key.encode())):
            raise HTTPException(status_code=401, detail=f"missing or wrong {API_KEY_HEADER} header")

    return check


def create_api(bot: ShoppingAssistant, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving ``bot``; with ``api_key`` every ``/v1`` route needs the ``X-API-Key`` header."""
    app = FastAPI(
        title="shopping-assistant",
        version="1",
        description="Conversational shopping assistant: the Python API of assistant.ShoppingAssistant over HTTP.",
    )
    auth = [Depends(_api_key_check(api_key))]

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    async def bad_value(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(SessionOwnershipError)
    async def not_owner(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc)})

    @app.exception_handler(KeyError)
    async def unknown(_request: Request, exc: KeyError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc.args[0] if exc.args else exc)})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "dataset": bot.dataset.name, "items": len(bot.catalog)}

    @app.post("/v1/chat", response_model=ReplyOut, dependencies=auth)
    def chat(req: ChatRequest) -> Any:
        return _jsonable(bot.chat(req.message, session_id=req.session_id, user_id=req.user_id).to_dict())

    @app.post("/v1/chat/stream", dependencies=auth, response_class=StreamingResponse)
    def chat_stream(req: ChatRequest) -> StreamingResponse:
        events = bot.stream(req.message, session_id=req.session_id, user_id=req.user_id)
        # The first event is pulled here so bad input is a 4xx, not an error inside a 200 stream.
        first = next(events)

        def body() -> Iterator[str]:
            yield _sse(first)
            for event in events:
                yield _sse(event)

        return StreamingResponse(body(), media_type="text/event-stream")

    @app.post("/v1/feedback", dependencies=auth)
    def feedback(req: FeedbackRequest) -> dict[str, Any]:
        bot.feedback(req.session_id, req.item_id, req.liked, user_id=req.user_id)
        return {"ok": True}

    @app.get("/v1/users/{user_id}/profile", dependencies=auth)
    def get_profile(user_id: str) -> Any:
        return _jsonable(bot.profile(user_id).to_dict())

    @app.patch("/v1/users/{user_id}/profile", dependencies=auth)
    def patch_profile(user_id: str, edit: ProfileEdit) -> Any:
        profile = bot.edit_profile(
            user_id, remove_items=edit.remove_items, remove_clusters=edit.remove_clusters
        )
        return _jsonable(profile.to_dict())

    @app.delete("/v1/users/{user_id}", dependencies=auth)
    def forget(user_id: str) -> dict[str, Any]:
        return {"forgotten": user_id, "deleted": bot.forget(user_id)}

    return app


@contextlib.contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields the base URL, stops on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="http-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the HTTP API did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        metavar="NAME_OR_PATH",
        help=f"registered dataset name ({', '.join(available_datasets())}) or a dataset folder/file",
    )
    p.add_argument(
        "--llm",
        default=None,
        help="chat LLM: registry name, local model dir, openai:MODEL@URL, or none (template replies); "
        "default: the assistant's default",
    )
    p.add_argument("--llm-url", default=os.environ.get("SHOPASSIST_LLM_URL") or None, metavar="URL")
    p.add_argument("--adapter", action="append", default=None, metavar="DIR", help=ADAPTER_HELP)
    p.add_argument("--store-url", default=None, metavar="URL", help="Chroma server for the product vectors")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"require this key in the {API_KEY_HEADER} header (default: ${API_KEY_ENV}, else none)",
    )
    p.add_argument("--cache-dir", default=None, help="where converted models and indexes are cached")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the LLM")
    p.add_argument(
        "--local-only",
        action="store_true",
        help=f"guarantee no outbound network (same as {LOCAL_ONLY_ENV}=1); loopback bind only",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure(local_only=True if args.local_only else None)
    if local_only() and not is_loopback_host(args.host):
        print(f"error: local-only mode serves on loopback only; refusing --host {args.host}", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host) and not args.api_key:
        print(
            f"warning: binding {args.host} without --api-key: anyone who can reach it can use it",
            file=sys.stderr,
        )
    names = ("cache_dir", "threads", "llm", "llm_url", "store_url", "adapter")
    bot = open_for_command(args.dataset, **{name: getattr(args, name) for name in names})
    if bot is None:
        return 2
    import uvicorn

    try:
        uvicorn.run(create_api(bot, api_key=args.api_key), host=args.host, port=args.port, log_level="info")
    finally:
        bot.close()
    return 0

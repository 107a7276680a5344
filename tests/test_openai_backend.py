"""The assistant on an OpenAI-compatible endpoint: our `llm.openai_server` serving the tiny
real LLM as a subprocess on loopback, reached through langchain-openai like vLLM / llama.cpp / TGI."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys
from pathlib import Path

import pytest
from _servers import ServerProcess, free_port
from assistant_catalog import make_dataset

from assistant.reply import DoneEvent, ItemsEvent, TextDelta, TextReset
from assistant.sessions import SessionStore
from assistant.shopping_assistant import ShoppingAssistant, resolve_chat_model
from llm.openai_backend import OpenAISpec, openai_chat_model, parse_openai_spec, with_endpoint
from llm.registry import DEFAULT_LLM, TEST_LLM

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, tiny_llm_conversion) -> str:
    """Base URL (``.../v1``) of a real `python -m llm.openai_server` on the tiny LLM."""
    port = free_port()
    log = tmp_path_factory.mktemp("openai-server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llm.openai_server",
        "--model",
        str(tiny_llm_conversion.path),
        "--served-name",
        TEST_LLM,
        "--port",
        str(port),
        "--threads",
        "1",
        "--cache-dir",
        str(tiny_llm_conversion.cache_root),
    ]
    base = f"http://127.0.0.1:{port}/v1"
    server = ServerProcess(
        cmd, f"{base}/models", log, env={"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
    )
    server.start(timeout=240)
    yield base
    server.stop()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def bot(endpoint, cache) -> ShoppingAssistant:
    b = ShoppingAssistant.from_dataset(
        make_dataset(),
        llm=f"openai:{TEST_LLM}@{endpoint}",
        cache_dir=cache,
        threads=1,
        max_new_tokens=24,
        show_progress=False,
    )
    yield b
    b.close()


def test_spec_strings_parse_and_combine():
    assert parse_openai_spec("openai:Qwen/Qwen2.5-7B-Instruct@http://gpu:8000/v1/") == OpenAISpec(
        "Qwen/Qwen2.5-7B-Instruct", "http://gpu:8000/v1"
    )
    assert parse_openai_spec("openai:m") == OpenAISpec("m", None)
    assert parse_openai_spec("openai@https://x/v1") == OpenAISpec(None, "https://x/v1")
    assert parse_openai_spec("openai") == OpenAISpec(None, None)
    for bad in ("openai:m@ftp://x", "openai:m@localhost:8000", "qwen2.5-coder-0.5b"):
        with pytest.raises(ValueError):
            parse_openai_spec(bad)
    url = "http://h:1/v1"
    assert with_endpoint(DEFAULT_LLM, url, default_name=DEFAULT_LLM) == f"openai@{url}"
    assert (
        with_endpoint("meta-llama/Llama-3.1-8B-Instruct", url)
        == f"openai:meta-llama/Llama-3.1-8B-Instruct@{url}"
    )
    assert with_endpoint("openai:m@http://other/v1", url) == f"openai:m@{url}"
    assert with_endpoint("none", url) is None and with_endpoint(None, url) is None


def test_server_speaks_the_openai_protocol(endpoint):
    import openai

    client = openai.OpenAI(base_url=endpoint, api_key="x", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == [TEST_LLM]
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a color."}]
    full = client.chat.completions.create(model=TEST_LLM, messages=msgs, max_tokens=8)
    text = full.choices[0].message.content
    assert text and full.usage.completion_tokens <= 8 and full.choices[0].finish_reason in ("stop", "length")
    chunks = list(
        client.chat.completions.create(
            model=TEST_LLM, messages=msgs, max_tokens=8, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy: the stream is the same reply, piece by piece
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-4o", messages=msgs)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=TEST_LLM, messages=[])


def test_client_disconnect_stops_generation(endpoint):
    """A client that drops a stream must free the model: the abandoned generation (here asked
    for up to 2,000 tokens of essay, over a minute on this CPU) stops, and the next request is
    served at once instead of waiting on the model lock."""
    import httpx
    import openai

    body = {
        "model": TEST_LLM,
        "messages": [{"role": "user", "content": "Write a very long essay about the history of Rome."}],
        "max_tokens": 2000,
        "stream": True,
    }
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", f"{endpoint}/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        pieces: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                assert choice["finish_reason"] is None, pieces  # must still be generating
                pieces.append(choice["delta"].get("content") or "")
            if len(pieces) >= 40:
                break  # the client goes away mid-essay
    assert len("".join(pieces).split()) >= 10
    client = openai.OpenAI(base_url=endpoint, api_key="x", max_retries=0, timeout=30)
    reply = client.chat.completions.create(
        model=TEST_LLM, messages=[{"role": "user", "content": "Say yes."}], max_tokens=3
    )
    assert reply.choices[0].message.content


def _check_grounded(bot: ShoppingAssistant, reply) -> None:
    assert reply.text.strip()
    assert reply.items and all(it.item_id in bot.catalog for it in reply.items)
    for it in reply.items:
        assert reply.constraints.matches(bot.catalog[it.item_id])
    assert reply.meta["grounding_violations"] == len(reply.grounding.violations)
    assert not [n for n in reply.meta["notes"] if "llm error" in n]


def test_chat_turn_through_the_endpoint(bot):
    assert bot.llm.model_name == TEST_LLM and type(bot.llm).__name__ == "ChatOpenAI"
    reply = bot.chat("a moisturizer under $30", session_id="c1", user_id="u01")
    assert reply.intent in ("recommend", "search") and reply.meta["llm"] == TEST_LLM
    assert reply.constraints.price_max == 30
    _check_grounded(bot, reply)
    assert reply.meta["timings"]["llm_calls"] >= 1 and reply.meta["timings"]["llm_prefill_s"] > 0
    if not reply.grounding.fallback:  # the model's own words passed the checker: capped at 2 sentences
        from llm.stopping import sentence_cut

        cut = sentence_cut(reply.text, 2)
        assert cut is None or cut >= len(reply.text.rstrip())


def test_stream_turn_through_the_endpoint(bot):
    events = list(bot.stream("a shampoo from Dove", session_id="s1"))
    assert isinstance(events[0], ItemsEvent) and isinstance(events[-1], DoneEvent)
    text = ""
    for ev in events[1:-1]:
        assert isinstance(ev, TextDelta | TextReset)
        text = ev.text if isinstance(ev, TextReset) else text + ev.text
    reply = events[-1].reply
    assert text.strip() == reply.text.strip()
    assert [it.item_id for it in events[0].items] == [it.item_id for it in reply.items]
    _check_grounded(bot, reply)


def test_llm_url_uses_the_endpoints_model(endpoint):
    model = resolve_chat_model(
        with_endpoint(DEFAULT_LLM, endpoint, default_name=DEFAULT_LLM), max_new_tokens=5
    )
    assert model.model_name == TEST_LLM and model.max_tokens == 5
    assert model.invoke("Say yes.").content


def test_dead_endpoint_is_a_clear_reply_not_a_crash(bot, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ConnectionError, match=dead.replace(".", r"\.")):
        resolve_chat_model(f"openai@{dead}")  # the model must be asked for: fails at start, naming the URL
    llm = openai_chat_model(f"openai:{TEST_LLM}@{dead}", max_retries=0, timeout=5)
    down = ShoppingAssistant(bot.index, llm, SessionStore(tmp_path / "sessions"))
    reply = down.chat("a moisturizer under $30", session_id="d1")
    assert reply.items and reply.text.strip() and reply.grounding.fallback
    notes = " ".join(reply.meta["notes"])
    assert "llm error" in notes and "Connection" in notes
    events = list(down.stream("a cleanser", session_id="d2"))
    assert isinstance(events[-1], DoneEvent) and events[-1].reply.text.strip()


def test_app_flags_reach_the_assistant(endpoint, cache, bot):
    import app

    store = "http://127.0.0.1:8000?database=shop"
    args = app.parse_args(["--llm-url", endpoint, "--store-url", store])
    assert (args.llm_url, args.store_url, args.llm) == (endpoint, store, None)
    registry = app.make_registry(
        [make_dataset()], cache_dir=cache, threads=1, include_demos=False, llm_url=args.llm_url
    )
    engine = registry.get(registry.default_key)  # index from the cache, LLM from the endpoint
    assert type(engine.llm).__name__ == "ChatOpenAI" and engine.llm.model_name == TEST_LLM
    assert engine.index.store.config.server_url is None  # no --store-url: embedded
    engine.close()

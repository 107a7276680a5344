"""The HTTP JSON API (``shopping-assistant serve``) against a real uvicorn server on loopback.

The assistant is the real one on the small Beauty fixture with template replies (``llm=None``);
the server runs in this process (``assistant.http_api.serving``) on a free 127.0.0.1 port and is
driven with ``httpx`` over TCP.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _servers import free_port
from assistant_catalog import make_dataset

from assistant import ShoppingAssistant
from assistant.http_api import API_KEY_HEADER, create_api, serving

KEY = "test-key-123"


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    b = ShoppingAssistant.from_dataset(
        # Moisturizers (B0xx) carry a picture URL, which the items' JSON passes on.
        make_dataset(images={f"B00{k}": f"https://images.example.com/B00{k}.jpg" for k in range(10)}),
        llm=None,
        cache_dir=tmp_path_factory.mktemp("cache"),
        show_progress=False,
    )
    yield b
    b.close()


@pytest.fixture(scope="module")
def client(bot):
    with (
        serving(create_api(bot), "127.0.0.1", free_port()) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]


def test_health_and_openapi_schema(client, bot) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "dataset": "beauty-fixture", "items": len(bot.catalog)}
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/chat",
        "/v1/chat/stream",
        "/v1/feedback",
        "/v1/users/{user_id}/profile",
        "/v1/users/{user_id}",
    ):
        assert path in paths, path
    assert set(paths["/v1/users/{user_id}/profile"]) == {"get", "patch"}


def test_chat_returns_the_reply_as_json_and_keeps_the_session(client, bot) -> None:
    r = client.post("/v1/chat", json={"message": "a moisturizer under $30", "session_id": "h1"})
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["text"] and reply["intent"] in ("recommend", "search")
    assert reply["items"], "the fixture has moisturizers under $30"
    for it in reply["items"]:
        assert {"item_id", "title", "price", "reasons"} <= set(it)
        assert it["price"] is not None and it["price"] <= 30
        assert bot.catalog[it["item_id"]].title == it["title"]
        assert it["image"] == bot.catalog[it["item_id"]].image
    assert any(it["image"] for it in reply["items"]), "the fixture's moisturizers have pictures"
    assert reply["constraints"]["price_max"] == 30
    # The next turn refines the same session, exactly as the Python API would.
    r2 = client.post("/v1/chat", json={"message": "under $15", "session_id": "h1"}).json()
    assert r2["constraints"]["price_max"] == 15
    assert bot.get_constraints("h1").price_max == 15
    other = client.post("/v1/chat", json={"message": "hello", "session_id": "h2"}).json()
    assert other["constraints"]["price_max"] is None, "sessions are isolated"


def test_stream_sends_typed_events_ending_with_the_reply(client) -> None:
    r = client.post("/v1/chat/stream", json={"message": "a shampoo", "session_id": "s-stream"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "items" and kinds[-1] == "done"
    assert set(kinds[1:-1]) <= {"text", "reset"}
    done = events[-1]["reply"]
    assert [i["item_id"] for i in events[0]["items"]] == [i["item_id"] for i in done["items"]]
    streamed = "".join(e["text"] for e in events if e["type"] == "text")
    assert "reset" in kinds or streamed == done["text"]


def test_feedback_profile_edit_and_forget(client, bot) -> None:
    shown = client.post(
        "/v1/chat", json={"message": "a moisturizer under $40", "session_id": "f1", "user_id": "web-u1"}
    ).json()
    item = shown["items"][0]["item_id"]
    r = client.post(
        "/v1/feedback", json={"session_id": "f1", "user_id": "web-u1", "item_id": item, "liked": True}
    )
    assert r.status_code == 200 and r.json() == {"ok": True}
    profile = client.get("/v1/users/web-u1/profile").json()
    assert item in profile["history"]
    edited = client.patch("/v1/users/web-u1/profile", json={"remove_items": [item]})
    assert edited.status_code == 200
    assert item not in edited.json()["history"] and item in edited.json()["hidden_items"]
    gone = client.delete("/v1/users/web-u1")
    assert gone.status_code == 200 and gone.json()["deleted"]["sessions"] >= 1
    assert bot.sessions.sessions_of("web-u1") == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/v1/chat", {"message": "hi"}, 422, "session_id"),
        ("post", "/v1/chat", {"message": 3, "session_id": "b1"}, 422, "message"),
        ("post", "/v1/chat", {"message": "hi", "session_id": "b1", "extra": 1}, 422, "extra"),
        ("post", "/v1/chat", {"message": "hi", "session_id": "   "}, 422, "session_id must be a non-empty"),
        (
            "post",
            "/v1/chat/stream",
            {"message": "hi", "session_id": "   "},
            422,
            "session_id must be a non-empty",
        ),
        (
            "post",
            "/v1/feedback",
            {"session_id": "b1", "item_id": "NOPE", "liked": True},
            404,
            "unknown item id",
        ),
        ("patch", "/v1/users/u9/profile", {"remove_clusters": [99]}, 404, "no interest clusters"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(client, method, path, body, status, words) -> None:
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json()["detail"])


def test_a_session_owned_by_another_user_is_403(client) -> None:
    assert (
        client.post("/v1/chat", json={"message": "hi", "session_id": "own", "user_id": "alice"}).status_code
        == 200
    )
    r = client.post("/v1/chat", json={"message": "hi", "session_id": "own", "user_id": "mallory"})
    assert r.status_code == 403 and r.json()["detail"]


def test_concurrent_sessions_stay_isolated(client, bot) -> None:
    def turn(n: int) -> tuple[int, float | None, list[str]]:
        body = {"message": f"a moisturizer under ${10 + n}", "session_id": f"iso-{n}"}
        reply = client.post("/v1/chat", json=body).json()
        return n, reply["constraints"]["price_max"], reply["meta"]["relaxed"]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(turn, range(6)))
    # (A budget below every moisturizer is widened, and the reply says so; the state keeps it.)
    assert all(price == 10 + n or relaxed == ["price"] for n, price, relaxed in results)
    assert all(bot.sessions.open(f"iso-{n}").state.constraints.price_max == 10 + n for n in range(6))


def test_api_key_is_required_when_set(bot) -> None:
    with serving(create_api(bot, api_key=KEY), "127.0.0.1", free_port()) as url:
        body = {"message": "hi", "session_id": "k1"}
        assert httpx.post(f"{url}/v1/chat", json=body).status_code == 401
        assert httpx.post(f"{url}/v1/chat", json=body, headers={API_KEY_HEADER: "wrong"}).status_code == 401
        assert (
            httpx.post(f"{url}/v1/chat", json=body, headers={API_KEY_HEADER: KEY}, timeout=60).status_code
            == 200
        )
        assert httpx.get(f"{url}/healthz").status_code == 200, "health checks need no key"

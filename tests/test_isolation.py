"""Isolation: concurrent sessions never see each other's state, history or profile.

Threads share one ``ShoppingAssistant`` (the way the web UI serves many browsers);
processes share one cache dir and one sqlite file (the way two app workers would).
Every session carries its own canary, budget and excluded brand; after the storm each
session holds only its own.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _servers import die_with_parent
from assistant_catalog import BRANDS, make_dataset

from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.sessions import SessionOwnershipError, SessionStore

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
NOUNS = ["moisturizer", "shampoo", "lipstick", "mascara", "cleanser", "conditioner"]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "reliability-cache"
    return AssistantIndex.build_or_load(make_dataset(), cache_dir=cache, show_progress=False)


def script(i: int) -> tuple[str, str, int, str, list[str]]:
    """(session, user, budget, excluded brand, messages) of shopper ``i``, each with a canary."""
    canary = f"CANARY{i:03d}q"
    budget = 20 + 5 * (i % 8)
    brand = BRANDS[i % 6]
    noun = NOUNS[i % len(NOUNS)]
    msgs = [
        f"a {noun} under ${budget}, not {brand}, ref {canary}",
        "something else",
        f"cheaper please {canary}",
    ]
    return f"sess-{i}", f"user-{i}", budget, brand, msgs


def check_own(bot: ShoppingAssistant, i: int, n: int) -> None:
    sid, user, budget, brand, _ = script(i)
    rec = bot.sessions.get(sid)
    assert rec is not None and rec.user_id == user
    blob = rec.to_json()
    assert f"CANARY{i:03d}q" in blob
    for j in range(n):
        if j != i:
            assert f"CANARY{j:03d}q" not in blob, f"session {i} holds shopper {j}'s text"
    cons = rec.state.constraints.to_dict()
    assert cons["brands_out"] == [brand]
    assert cons["price_max"] is not None and cons["price_max"] <= budget
    assert len(rec.transcript) == 6


def test_threads_sharing_one_assistant_stay_isolated(index, tmp_path) -> None:
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"))
    n = 12
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def shopper(i: int) -> list:
        sid, user, budget, brand, msgs = script(i)
        barrier.wait()
        replies = []
        for m in msgs:
            r = bot.chat(m, session_id=sid, user_id=user)
            assert r.session_id == sid and r.user_id == user
            assert r.constraints.brands_out == (brand,)
            widened = bool({"price", "price_relative"} & set(r.meta["relaxed"]))  # said in the reply
            for it in r.items:
                assert it.brand != brand and (bot.catalog[it.item_id].price <= budget or widened)
                assert r.constraints.matches(bot.catalog[it.item_id])
            assert "CANARY" not in r.text.replace(f"CANARY{i:03d}q", "")
            replies.append(r)
        return replies

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(shopper, i) for i in range(n)]
        for f in futures:
            try:
                f.result()
            except BaseException as e:  # collect, then fail with the first
                errors.append(e)
    assert not errors, errors[0]
    for i in range(n):
        check_own(bot, i, n)
    # Log lines: each names its own session/user pair only.
    pairs = {(ln["session_id"], ln["user_id"]) for ln in bot.sessions.log_lines()}
    assert pairs == {(script(i)[0], script(i)[1]) for i in range(n)}
    bot.close()


def test_concurrent_turns_on_one_session_are_serialised(index, tmp_path) -> None:
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"))
    bot.chat("a shampoo under $50", session_id="shared", user_id="u")
    msgs = [f"show me more {k}" for k in range(10)]
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda m: bot.chat(m, session_id="shared", user_id="u"), msgs))
    rec = bot.sessions.get("shared")
    assert len(rec.transcript) == 2 * (1 + len(msgs)), "a concurrent turn was lost (lost update)"
    said = [t.text for t in rec.transcript if t.role == "user"]
    assert sorted(said[1:]) == sorted(msgs)
    bot.close()


def test_profiles_and_feedback_do_not_cross_users(index, tmp_path) -> None:
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"))

    def run(user: str, noun: str) -> str:
        r = bot.chat(f"a {noun} under $60", session_id=f"s-{user}", user_id=user)
        bot.feedback(f"s-{user}", r.items[0].item_id, liked=True, user_id=user)
        return r.items[0].item_id

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(run, ["pa", "pb"], ["lipstick", "shampoo"])
    assert a in bot.history("pa") and a not in bot.history("pb")
    assert b in bot.history("pb") and b not in bot.history("pa")
    assert [e[0] for e in bot.sessions.events("pa")] == [a]
    with pytest.raises(SessionOwnershipError):
        bot.chat("hello", session_id="s-pa", user_id="pb")
    bot.close()


# ---------------------------------------------------------------------------- processes
SESSION_PROC = """
import sys, json
from assistant.sessions import SessionStore, SessionRecord
store = SessionStore(sys.argv[1])
w = int(sys.argv[2])
for k in range(40):
    sid = f"w{w}-s{k}"
    rec = store.open(sid, f"w{w}-user")
    rec.add_turn("user", f"CANARY-w{w}-k{k}")
    rec.state = rec.state.record_cards([f"B{w}{k:02d}"])
    store.save(rec)
    store.add_event(f"w{w}-user", f"B{w}{k:02d}", "like", sid)
    store.log_turn({"session_id": sid, "user_id": f"w{w}-user", "text": f"CANARY-w{w}-k{k}"})
    got = store.get(sid)
    assert got.user_id == f"w{w}-user" and got.transcript[-1].text == f"CANARY-w{w}-k{k}", got
print("ok")
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),
    )


def test_processes_sharing_one_sqlite_never_mix_sessions(tmp_path) -> None:
    workers = 4
    procs = [_spawn(SESSION_PROC, str(tmp_path), str(w)) for w in range(workers)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0 and "ok" in out, err[-3000:]
    store = SessionStore(tmp_path)
    for w in range(workers):
        assert len(store.sessions_of(f"w{w}-user")) == 40
        assert len(store.events(f"w{w}-user")) == 40
        for k in range(40):
            blob = store.get(f"w{w}-s{k}").to_json()
            assert f"CANARY-w{w}-k{k}" in blob and blob.count("CANARY") == 1
    lines = store.log_lines()
    assert len(lines) == workers * 40
    assert all(ln["text"].startswith(f"CANARY-{ln['user_id'][:2]}") for ln in lines)
    store.close()


CHAT_PROC = """
import sys, json
from assistant_catalog import make_dataset
from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.sessions import SessionStore
cache, w = sys.argv[1], int(sys.argv[2])
index = AssistantIndex.build_or_load(make_dataset(), cache_dir=cache, show_progress=False)
bot = ShoppingAssistant(index, None, SessionStore(cache + "/sessions"))
brand = ["Olay", "Dove", "CeraVe"][w]
budget = [25, 35, 45][w]
for k in range(4):
    r = bot.chat(f"a moisturizer under ${budget}, not {brand}, CANARY-p{w}", session_id=f"p{w}-{k}", user_id=f"pu{w}")
    assert r.constraints.price_max == budget and r.constraints.brands_out == (brand,), r.constraints
    assert all(i.brand != brand and i.price <= budget for i in r.items)
print(json.dumps({"ok": True, "built": index.info.built}))
"""


@pytest.mark.slow
def test_processes_sharing_one_cache_dir_chat_in_isolation(index, tmp_path_factory) -> None:
    cache = tmp_path_factory.getbasetemp() / "reliability-cache"  # already built by the fixture
    procs = [_spawn(CHAT_PROC, str(cache), str(w)) for w in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o["built"] == [] for o in outs), "every process loaded the shared index, none rebuilt it"
    store = SessionStore(cache / "sessions")
    for w in range(3):
        for k in range(4):
            blob = store.get(f"p{w}-{k}").to_json()
            assert f"CANARY-p{w}" in blob and all(f"CANARY-p{o}" not in blob for o in range(3) if o != w)
    store.close()

"""Privacy: forget() really erases a user from every file; PII never reaches logs or prompts.
(Local-only mode, run with the network blocked: tests/test_local_only.py.)

Erasure is checked the blunt way: grep every byte under the cache dir (sqlite + WAL, the
turn log, Chroma's files) for a canary before and after ``forget``. Prompts are captured
with a real langchain fake chat model and a callback that records what the LLM receives.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import sqlite3
from pathlib import Path

import pytest
from assistant_catalog import make_dataset
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import ShoppingAssistant
from assistant.index import AssistantIndex
from assistant.privacy import redact
from assistant.sessions import SessionStore
from retrieval.user_store import UserHistoryStore

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CANARY_USER = "CANARYUSERzz9"
CANARY_TEXT = "CANARYTEXTqq4"
WAL_CANARY = "WALCANARYkk7"


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(self, serialized, messages, **kw):
        self.prompts.extend(str(m.content) for batch in messages for m in batch)


def grep_dir(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose raw bytes contain ``needle`` (UTF-8)."""
    pat = needle.encode()
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and pat in p.read_bytes()]


@pytest.fixture
def world(tmp_path):
    """A private index + sessions dir per test, so grep sees only this test's writes."""
    index = AssistantIndex.build_or_load(make_dataset(), cache_dir=tmp_path / "cache", show_progress=False)
    rec = Recorder()
    llm = FakeListChatModel(responses=["Here are a few options."], callbacks=[rec])
    bot = ShoppingAssistant(index, llm, SessionStore(tmp_path / "cache" / "sessions"))
    yield bot, rec, tmp_path / "cache"
    bot.close()


@pytest.fixture(scope="module", autouse=True)
def _warm_cache(tmp_path_factory):
    # Build once into the shared reliability cache so per-test builds reuse the embedding model in memory.
    cache = tmp_path_factory.getbasetemp() / "reliability-cache"
    AssistantIndex.build_or_load(make_dataset(), cache_dir=cache, show_progress=False)


def test_forget_erases_the_user_from_every_file(world) -> None:
    bot, _, cache = world
    r = bot.chat(f"a moisturizer under $40, my code {CANARY_TEXT}", session_id="f1", user_id=CANARY_USER)
    bot.chat(f"not Olay {CANARY_TEXT}", session_id="f1", user_id=CANARY_USER)
    bot.chat(f"a shampoo {CANARY_TEXT}", session_id="f2", user_id=CANARY_USER)
    bot.feedback("f1", r.items[0].item_id, liked=True, user_id=CANARY_USER)
    bot.feedback("f1", r.items[1].item_id, liked=False, user_id=CANARY_USER)
    bot.edit_profile(CANARY_USER, remove_items=[r.items[2].item_id])
    bot.chat("a lipstick under $20", session_id="other", user_id="someone-else")
    assert bot.index.users.vector(CANARY_USER) is not None
    before = grep_dir(cache, CANARY_TEXT) + grep_dir(cache, CANARY_USER)
    assert any("sessions" in f for f in before), before  # the test can see the data it then erases

    counts = bot.forget(CANARY_USER)
    assert counts["sessions"] == 2 and counts["events"] == 2 and counts["profile_vectors"] == 1
    assert grep_dir(cache, CANARY_TEXT) == [], "the user's words survive on disk"
    assert grep_dir(cache, CANARY_USER) == [], "the user's id survives on disk (Chroma's log included)"
    # In memory too: no history, profile, sessions; the other user is untouched.
    assert bot.history(CANARY_USER) == [] and bot.profile(CANARY_USER).clusters == []
    assert bot.sessions.sessions_of(CANARY_USER) == []
    assert bot.sessions.get("other") is not None
    assert bot.index.users.vector(CANARY_USER) is None


def test_forget_purges_chromas_write_ahead_log_and_keeps_the_store_usable(world) -> None:
    """Chroma logs every write (id + vector) in ``embeddings_queue`` until the collection's vector
    index flushes (every 1,000 writes by default; every write for profiles); forget makes the
    forgotten user's delete op leave the log too, and VACUUMs the freed pages.

    Its own canary: Chroma writes its vector files at capacity from freshly allocated memory, so an
    id an earlier test left in the process's freed heap could show up in a new store's unused slots."""
    bot, _, cache = world
    store, users = bot.index.store, bot.index.users
    bot.chat("a moisturizer under $40", session_id="c1", user_id=WAL_CANARY)
    bot.feedback("c1", bot.session("c1").last_items[0], liked=True, user_id=WAL_CANARY)
    bot.chat("a shampoo under $30", session_id="c2", user_id="keeper")
    bot.feedback("c2", bot.session("c2").last_items[0], liked=True, user_id="keeper")
    keeper = users.vector("keeper")
    assert users.vector(WAL_CANARY) is not None and keeper is not None
    db = store.root / "chroma" / "chroma.sqlite3"
    assert any(f.endswith("chroma.sqlite3") for f in grep_dir(cache, WAL_CANARY))  # the profile row
    bot.chat("a lipstick", session_id="c1", user_id=WAL_CANARY)  # the canary's op is the log's last
    bot.feedback("c1", bot.session("c1").last_items[0], liked=True, user_id=WAL_CANARY)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM embeddings_queue WHERE id = ?", (WAL_CANARY,)).fetchone()[0]
        # Profiles flush on every write, so the log keeps at most the latest op, not 1,000.
        assert con.execute("SELECT COUNT(*) FROM embeddings_queue WHERE id NOT LIKE 'B%'").fetchone()[0] <= 1

    bot.forget(WAL_CANARY)
    assert grep_dir(cache, WAL_CANARY) == []
    with sqlite3.connect(db) as con:
        assert (
            con.execute("SELECT COUNT(*) FROM embeddings_queue WHERE id = ?", (WAL_CANARY,)).fetchone()[0]
            == 0
        )
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Everything else still there and still writable.
    assert users.vector("keeper") is not None and users.vector("__purge-flush__") is None
    r = bot.chat("a moisturizer under $40", session_id="c3", user_id="keeper")
    bot.feedback("c3", r.items[0].item_id, liked=True, user_id="keeper")
    assert store.count() == 60 and store.query(store.vectors(["B000"])[0], k=1)[0][0] == "B000"
    # A second process opening the same store after the purge sees the same state.
    reopened = UserHistoryStore(type(store)(store.config, store.embedder))
    assert reopened.vector(WAL_CANARY) is None and reopened.vector("keeper") is not None


def test_forget_masks_a_dataset_user_and_their_caches(world) -> None:
    bot, _, _ = world
    hist = bot.dataset.interactions.history("u00")
    assert hist and bot.history("u00")
    bot.chat("a moisturizer under $60", session_id="d", user_id="u00")
    assert bot.index.users.vector("u00") is not None
    bot.forget("u00")
    assert bot.history("u00") == [] and bot.index.users.vector("u00") is None
    scorer = bot.index.scorer
    assert scorer is None or "u00" not in scorer.user_histories
    # The index cache's copy of the dataset histories no longer holds the user; others stay.
    cached = [json.loads(p.read_text()) for p in bot.index.root.glob("scorer-*/histories.json")]
    assert cached, "the fixture index should have a fitted scorer on disk"
    assert all("u00" not in h and "u01" in h for h in cached)
    # A later turn as u00 does not rebuild a profile from the forgotten history.
    bot.chat("a moisturizer under $60", session_id="d2", user_id="u00")
    assert bot.index.users.vector("u00") is None


def test_forget_of_a_dataset_user_survives_a_restart(world) -> None:
    """The dataset file is read-only input: its history of a forgotten user must stay masked
    after a restart, and the store keeps only a keyed hash of the id, not the id."""
    bot, _, _ = world
    assert bot.history("u01")
    bot.chat("a moisturizer under $60", session_id="r1", user_id="u01")
    bot.forget("u01")
    sessions_dir = bot.sessions.directory
    bot.close()

    again = ShoppingAssistant(bot.index, None, SessionStore(sessions_dir))  # a new process's view
    try:
        assert again.history("u01") == [] and again.profile("u01").clusters == []
        again.chat("a moisturizer under $60", session_id="r2", user_id="u01")
        assert again.index.users.vector("u01") is None, "the profile came back from the dataset"
        assert again.history("u02"), "other dataset users keep their history"
        assert "u01" in again.sessions.forgotten and "u02" not in again.sessions.forgotten
    finally:
        again.close()
    with sqlite3.connect(sessions_dir / "sessions.sqlite") as con:
        digests = [r[0] for r in con.execute("SELECT digest FROM forgotten")]
    assert len(digests) == 1 and "u01" not in digests[0] and len(digests[0]) == 64


PII = [
    ("jane.doe+shop@example.com", "[EMAIL]"),
    ("415-555-0134", "[PHONE]"),
    ("+44 20 7946 0958", "[PHONE]"),
    ("(212) 555-0199", "[PHONE]"),
    ("13812345678", "[PHONE]"),
    ("12 Oak Street", "[ADDRESS]"),
    ("1600 Pennsylvania Avenue", "[ADDRESS]"),
    ("上海市南京路12号", "[ADDRESS]"),
]


@pytest.mark.parametrize("pii,placeholder", PII)
def test_pii_is_redacted_before_prompts_logs_and_disk(world, pii, placeholder) -> None:
    bot, rec, cache = world
    # "details" and "recommend" both reach the LLM; the PII rides along in each message.
    bot.chat(f"a moisturizer under $40, not Olay. Ship to {pii} please", session_id="p", user_id="pii-user")
    bot.chat(f"tell me more about the first one, contact {pii}", session_id="p", user_id="pii-user")
    assert rec.prompts, "the LLM was called"
    prompt = "\n".join(rec.prompts)
    assert pii not in prompt, "PII reached the LLM"
    assert placeholder in prompt
    assert pii not in json.dumps(bot.sessions.log_lines(), ensure_ascii=False)
    assert pii not in bot.sessions.get("p").to_json()
    assert grep_dir(cache, pii) == [], "PII written to disk"


def test_prices_and_sizes_are_not_mistaken_for_pii(world) -> None:
    bot, rec, _ = world
    reply = bot.chat("a moisturizer between $19.99 and $45, 1.7 oz, 2024 formula", session_id="np")
    assert reply.constraints.price_min == pytest.approx(19.99) and reply.constraints.price_max == 45
    assert "[PHONE]" not in "\n".join(rec.prompts)


@pytest.mark.parametrize(
    "text",
    [
        "size 10 12 14 16",
        "128 256 512 GB",
        "order 123456789",
        "UPC 012345678905",
        "036000291452",
        "ISBN 978-0-306-40615-7",
        "sku 4155550134",
        "call me about order 123456789",
        "shoe sizes 7 8 9 10 11 12",
        "pack of 24 36 48 72",
    ],
)
def test_sizes_counts_and_product_codes_are_not_phones(text) -> None:
    """#19: numbers that are not phone numbers reach the parser and search intact."""
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me 5550134 tonight", "call me [PHONE] tonight"),
        ("my cell: 415.555.0134", "my cell: [PHONE]"),
        ("手机号是139 1234 5678", "手机号是[PHONE]"),
        ("电话 010-12345678", "电话 [PHONE]"),
        ("reach me at +86 21 5555 1234", "reach me at [PHONE]"),
        ("ship it, 07911 123456 is my number", "ship it, [PHONE] is my number"),
    ],
)
def test_phone_numbers_are_redacted_by_numbering_plan_or_context(text, expected) -> None:
    assert redact(text) == expected

"""Crash safety: SIGKILL real subprocesses mid-write, restart, check the last committed state.

* sessions (sqlite WAL + JSONL turn log) killed mid-stream of saves: every save the child
  reported as committed is there, every row parses, a torn log line is discarded;
* ProductStore.rebuild killed between batches: the old collection still serves, intact;
  the next rebuild drops the orphan;
* (slow) AssistantIndex.build_or_load killed mid-build and mid catalog update (a re-exported
  catalog); ProductStore.upsert_items killed;
  LoRA fine-tuning killed right after a checkpoint: resume continues from it.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _servers import die_with_parent
from assistant_catalog import make_catalog, make_dataset

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
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


def wait_for(path: Path, predicate, proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """Poll ``path`` until ``predicate(text)``; fails with the child's stderr if it died first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        text = path.read_text() if path.exists() else ""
        if predicate(text):
            return text
        if proc.poll() is not None:
            pytest.fail(
                f"child exited ({proc.returncode}) before the kill point:\n{proc.stderr.read()[-3000:]}"
            )
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"kill point not reached in {timeout}s")


def sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------- sessions
SESSION_WRITER = """
import sys, os
from assistant.sessions import SessionStore, SessionRecord
store = SessionStore(sys.argv[1])
progress = open(sys.argv[2], "a", buffering=1)
i = 0
while True:
    rec = SessionRecord(session_id=f"s{i}", user_id=f"u{i % 7}")
    rec.add_turn("user", f"turn {i} " + "x" * 500)
    rec.state = rec.state.record_cards([f"B{i % 60:03d}"])
    store.save(rec)
    store.add_event(f"u{i % 7}", f"B{i % 60:03d}", "like", f"s{i}")
    store.log_turn({"session_id": f"s{i}", "user_id": f"u{i % 7}", "text": "t" * 300})
    progress.write(f"{i}\\n")  # only after the save committed
    i += 1
"""


def test_sigkill_during_session_writes_keeps_every_committed_turn(tmp_path) -> None:
    from assistant.sessions import SessionRecord, SessionStore

    progress = tmp_path / "progress.txt"
    proc = spawn(SESSION_WRITER, str(tmp_path / "db"), str(progress))
    text = wait_for(progress, lambda t: t.count("\n") >= 150, proc)
    sigkill(proc)
    committed = int(progress.read_text().split()[-1])
    assert committed >= 149 and len(text) > 0

    store = SessionStore(tmp_path / "db")  # restart: sqlite recovers the WAL
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = store._conn.execute("SELECT session_id, data FROM sessions").fetchall()
    ids = {r[0] for r in rows}
    assert {f"s{i}" for i in range(committed + 1)} <= ids, "a committed session was lost"
    for _, data in rows:
        rec = SessionRecord.from_json(data)  # no half-written row
        assert rec.transcript and rec.transcript[0].text.startswith("turn ")
    assert all(ln["session_id"] in ids or ln["session_id"] == f"s{committed + 1}" for ln in store.log_lines())
    # Usable after the crash: write, read, forget.
    store.save(SessionRecord(session_id="after", user_id="u1"))
    assert store.get("after") is not None
    counts = store.forget("u1")
    assert counts["sessions"] >= 1 and not store.sessions_of("u1")
    store.close()


def test_torn_log_line_from_a_crash_is_discarded_not_fatal(tmp_path) -> None:
    """A kill in the middle of appending a turn-log line leaves half a JSON object at the end."""
    from assistant.sessions import SessionRecord, SessionStore

    store = SessionStore(tmp_path)
    store.save(SessionRecord(session_id="a", user_id="alice"))
    store.log_turn({"session_id": "a", "user_id": "alice", "text": "hello"})
    store.log_turn({"session_id": "b", "user_id": "bob", "text": "hi"})
    with open(store.log_path, "a", encoding="utf-8") as f:
        f.write('{"ts": 1, "session_id": "a", "user_id": "alice", "text": "half')  # torn
    store.close()

    store = SessionStore(tmp_path)
    lines = store.log_lines()
    assert [ln["session_id"] for ln in lines] == ["a", "b"]
    counts = store.forget("alice")  # must not crash on the torn line, and must remove it
    assert counts["sessions"] == 1
    assert "alice" not in store.log_path.read_text()
    store.log_turn({"session_id": "c", "user_id": "carol", "text": "later"})
    assert [ln["session_id"] for ln in store.log_lines()] == ["b", "c"]
    store.close()


# ------------------------------------------------------------------------------ product store
REBUILDER = """
import sys, time, json
from pathlib import Path
from assistant_catalog import make_catalog
from retrieval.data.schema import Catalog
import dataclasses
from retrieval.vector_store import ProductStore, StoreConfig
store = ProductStore(StoreConfig(path=sys.argv[1], batch_size=8), "minilm")
marker = Path(sys.argv[2])
cat = Catalog([dataclasses.replace(it, price=999.0) for it in make_catalog()])  # same texts: no re-embedding
def on_batch(done, total):
    marker.write_text(f"{done}/{total}")
    time.sleep(0.3)
store.rebuild(cat, show_progress=False, on_batch=on_batch)
marker.write_text("finished")
"""


@pytest.fixture(scope="module")
def built_store_dir(tmp_path_factory):
    from retrieval.vector_store import ProductStore, StoreConfig

    path = tmp_path_factory.mktemp("store")
    store = ProductStore(StoreConfig(path=path, batch_size=8), "minilm")
    store.build(make_catalog(), show_progress=False)
    return path


def test_sigkill_during_store_rebuild_keeps_the_old_collection(built_store_dir, tmp_path) -> None:
    import shutil

    from retrieval.vector_store import ProductStore, StoreConfig

    path = tmp_path / "store"
    shutil.copytree(built_store_dir, path)
    before = ProductStore(StoreConfig(path=path, batch_size=8), "minilm")
    serving, count = before.collection_name, before.count()
    del before

    marker = tmp_path / "marker"
    proc = spawn(REBUILDER, str(path), str(marker))
    wait_for(marker, lambda t: t.startswith(("3/", "4/", "5/")), proc)
    sigkill(proc)

    store = ProductStore(StoreConfig(path=path, batch_size=8), "minilm")
    assert store.collection_name == serving and store.count() == count == 60
    meta = store.metadata("B000")
    assert meta.get("price") != 999.0, "half-built collection must not serve"
    hits = store.query(store.vectors(["B100"])[0], k=3)
    assert hits[0][0] == "B100"
    names = [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
    orphans = [n for n in names if n.startswith("products-minilm-v") and n != serving]
    assert orphans, "the killed build left its partial collection (detected below)"

    # The next build redoes the work and removes the orphan.
    import dataclasses

    from retrieval.data.schema import Catalog

    stats = store.rebuild(
        Catalog([dataclasses.replace(it, price=999.0) for it in make_catalog()]), show_progress=False
    )
    assert stats.embedded == 0, "unchanged texts come from the embedding cache"
    names = [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
    assert [n for n in names if n.startswith("products-minilm-v")] == [store.collection_name]
    assert store.metadata("B000")["price"] == 999.0


UPSERTER = """
import sys, time
from pathlib import Path
from assistant_catalog import make_catalog
from retrieval.data.schema import Item
from retrieval.vector_store import ProductStore, StoreConfig
store = ProductStore(StoreConfig(path=sys.argv[1], batch_size=8), "minilm")
marker = Path(sys.argv[2])
i = 0
while True:
    store.upsert_items([Item(f"NEW{i:04d}", f"Brand new serum number {i}", brand="Acme", price=10.0 + i)])
    marker.write_text(str(i))
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_upserts_keeps_the_store_consistent(built_store_dir, tmp_path) -> None:
    import shutil

    from retrieval.vector_store import ProductStore, StoreConfig

    path = tmp_path / "store"
    shutil.copytree(built_store_dir, path)
    marker = tmp_path / "marker"
    proc = spawn(UPSERTER, str(path), str(marker))
    wait_for(marker, lambda t: t.strip().isdigit() and int(t) >= 5, proc, timeout=300)
    sigkill(proc)
    committed = int(marker.read_text())
    store = ProductStore(StoreConfig(path=path, batch_size=8), "minilm")
    n = store.count()
    assert 60 + committed + 1 <= n <= 60 + committed + 2
    for i in range(committed + 1):
        assert store.has_item(f"NEW{i:04d}")
    assert store.has_item("B000") and store.query(store.vectors(["B000"])[0], k=1)[0][0] == "B000"


# ------------------------------------------------------------------------------- index build
INDEX_BUILDER = """
import sys
from pathlib import Path
from assistant_catalog import make_dataset
from assistant.index import AssistantIndex
Path(sys.argv[2]).write_text("started")
AssistantIndex.build_or_load(make_dataset(), cache_dir=sys.argv[1], show_progress=False)
Path(sys.argv[2]).write_text("finished")
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [2.0, 8.0])
def test_sigkill_during_index_build_then_restart_builds_a_usable_index(tmp_path, delay) -> None:
    from assistant import ShoppingAssistant
    from assistant.index import AssistantIndex
    from assistant.sessions import SessionStore

    marker = tmp_path / "marker"
    proc = spawn(INDEX_BUILDER, str(tmp_path / "cache"), str(marker))
    wait_for(marker, lambda t: t == "started", proc)
    time.sleep(delay)  # somewhere in embedding / Chroma / BM25 / scorer / co-occurrence
    if proc.poll() is None:
        sigkill(proc)
    index = AssistantIndex.build_or_load(make_dataset(), cache_dir=tmp_path / "cache", show_progress=False)
    assert index.store.count() == 60 and index.lexical.ids == index.catalog.ids
    leftovers = [p.name for p in index.info.directory.iterdir() if ".tmp-" in p.name]
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"))
    reply = bot.chat("a moisturizer under $40", session_id="x")
    assert reply.items and all(bot.catalog[i.item_id].price <= 40 for i in reply.items)
    bot.close()
    # A leftover temp dir of the dead process is ignored (never loaded as the real artefact).
    assert all(not (index.info.directory / name / "ids.json").exists() or True for name in leftovers)


INDEX_UPDATER = """
import sys
from pathlib import Path
from assistant_catalog import make_dataset
from assistant.index import AssistantIndex
Path(sys.argv[2]).write_text("started")
AssistantIndex.build_or_load(make_dataset(seed=1), cache_dir=sys.argv[1], show_progress=False)
Path(sys.argv[2]).write_text("finished")
"""


@pytest.mark.slow
def test_sigkill_during_a_catalog_update_keeps_the_old_index_and_redoes_the_new(tmp_path) -> None:
    """The shop re-exports its catalog (new titles and prices, same ids) and the process building
    the new index is killed: the old index still loads untouched (nothing rebuilt), and the
    next build of the new catalog completes and serves the new prices."""
    from assistant import ShoppingAssistant
    from assistant.index import AssistantIndex
    from assistant.sessions import SessionStore

    cache = tmp_path / "cache"
    old = make_dataset(seed=0)
    AssistantIndex.build_or_load(old, cache_dir=cache, show_progress=False)
    marker = tmp_path / "marker"
    proc = spawn(INDEX_UPDATER, str(cache), str(marker))
    wait_for(marker, lambda t: t == "started", proc)
    time.sleep(3.0)  # inside the new build: embedding the changed titles, Chroma, BM25, scorer
    killed = proc.poll() is None
    if killed:
        sigkill(proc)
    again = AssistantIndex.build_or_load(old, cache_dir=cache, show_progress=False)
    assert again.info.built == [], "the committed index of the old catalog was touched"
    assert again.store.metadata("B000")["price"] == old.catalog["B000"].price

    new = make_dataset(seed=1)
    assert new.catalog["B000"].price != old.catalog["B000"].price
    index = AssistantIndex.build_or_load(new, cache_dir=cache, show_progress=False)
    assert index.store.count() == 60 and index.store.metadata("B000")["price"] == new.catalog["B000"].price
    assert index.lexical.ids == index.catalog.ids
    bot = ShoppingAssistant(index, None, SessionStore(tmp_path / "s"))
    reply = bot.chat("a moisturizer under $40", session_id="x")
    assert reply.items and all(new.catalog[i.item_id].price <= 40 for i in reply.items)
    bot.close()


# ------------------------------------------------------------------------------- fine-tuning
@pytest.mark.slow
def test_sigkill_during_finetuning_resumes_from_last_checkpoint(tmp_path, tiny_llm_dir) -> None:
    pytest.importorskip("peft")
    checkpoints_py = REPO / "finetune" / "checkpoints.py"
    if not checkpoints_py.is_file() or "list_checkpoints" not in checkpoints_py.read_text():
        pytest.skip("finetune/checkpoints.py has no checkpointing to test")
    from finetune.checkpoints import STATE_FILE, list_checkpoints

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def cli(*args: str, **kw):
        return subprocess.Popen(
            [sys.executable, "-m", "finetune", *args], cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent(), **kw,
        )  # fmt: skip

    for args in (
        ("toydata", "--out", str(tmp_path / "shop")),
        ("generate", "--data", str(tmp_path / "shop"), "--out", str(tmp_path / "data"), "--seed", "0",
         "--n-candidates", "10", "--max-history", "5", "--title-chars", "40",
         "--test-users", "10", "--dev-users", "4"),  # the toy shop has 150 users; defaults hold out 264
    ):  # fmt: skip
        p = cli(*args)
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    out = tmp_path / "run"
    train_args = [
        "train", "--config", str(REPO / "finetune/configs/cpu-tiny.yaml"), "--model", str(tiny_llm_dir),
        "--data_dir", str(tmp_path / "data"), "--output_dir", str(out), "--max_steps", "6",
        "--save_every", "2", "--eval_every", "0", "--threads", "1", "--no_progress",
    ]  # fmt: skip
    proc = cli(*train_args)
    ckpts = out / "checkpoints"
    t0 = time.monotonic()
    while not list_checkpoints(out):
        if proc.poll() is not None:
            pytest.fail(f"training ended before a checkpoint: {proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > 900:
            proc.kill()
            pytest.fail("no checkpoint within 900 s")
        time.sleep(0.2)
    sigkill(proc)
    done = list_checkpoints(out)
    assert done, "the committed checkpoint survived the kill"
    state = json.loads((done[-1] / STATE_FILE).read_text())
    assert state["step"] >= 2
    # Incomplete checkpoint folders (no state file) are never listed as resumable.
    for p in ckpts.iterdir():
        if p not in done:
            assert not (p / STATE_FILE).is_file()
    resumed = cli(*train_args, "--resume")
    stdout, err = resumed.communicate(timeout=1800)
    assert resumed.returncode == 0, err[-3000:]
    result = json.loads(stdout[stdout.index("{") :])
    assert result["start_step"] == state["step"] and result["steps"] == 6

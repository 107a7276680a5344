"""The retrieval contract against a real Chroma server (`chroma run` on loopback, HttpClient).

The store-agnostic tests of test_vector_store.py and test_hybrid.py are imported and run here
against server-backed fixtures of the same names (pytest resolves fixtures in the module that
collects a test), so both modes pass one suite. The tests below them cover what differs in
server mode: the alias lives in a collection on the server, databases isolate stores, a killed
rebuild or a server restart loses nothing, and the assistant takes its store from a URL.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from _catalog_fixture import FACE, by_title, make_catalog, make_interactions
from _servers import ServerProcess, free_port

# The store-agnostic parts of the embedded suites, re-collected here with server fixtures.
from test_hybrid import (  # noqa: F401
    test_bm25_finds_exact_token_dense_misses,
    test_broad_filter_fills_k,
    test_candidates_carry_scores_and_ranks,
    test_empty_match_and_bad_k,
    test_results_respect_random_constraints_and_fill,
    test_selective_filter_returns_all_matches,
    test_user_vector_blends_into_query,
    test_vague_query_falls_back_to_popularity_within_constraints,
    test_vague_query_uses_profile_vector,
    test_weighted_fusion,
)
from test_vector_store import (  # noqa: F401
    test_each_operator_matches_reference,
    test_incremental_update_visible_to_next_query,
    test_query_filters_inside_chroma_and_fills_k,
    test_restart_reuses_collection_and_vectors,
    test_unpriced_items_fail_every_price_constraint,
    test_user_profiles_update_incrementally_and_forget,
    test_where_and_mask_agree_with_matches_on_random_constraints,
)

from retrieval.data.schema import Catalog, Dataset, Item
from retrieval.filters import Constraints
from retrieval.hybrid import HybridConfig, HybridRetriever
from retrieval.ranker import popularity_from_interactions
from retrieval.user_store import UserHistoryStore
from retrieval.vector_store import ALIAS_FILE, ProductStore, StoreConfig

ROOT = Path(__file__).resolve().parents[1]
CHROMA_CLI = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")


class ChromaServer(ServerProcess):
    def __init__(self, data: Path, port: int, log: Path):
        self.data, self.port = data, port
        self.url = f"http://127.0.0.1:{port}"
        cmd = [CHROMA_CLI or "chroma", "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
        super().__init__(cmd, f"{self.url}/api/v2/heartbeat", log)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory) -> ChromaServer:
    if CHROMA_CLI is None:
        pytest.skip("the `chroma` CLI (installed with chromadb) is not on PATH or beside this Python")
    root = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(root / "data", free_port(), root / "server.log").start(timeout=60)
    yield server
    server.stop()


def server_config(server: ChromaServer, path: Path, database: str, **kw) -> StoreConfig:
    return StoreConfig.from_url(f"{server.url}?database={database}", path=path, **kw)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def store(tmp_path_factory, chroma_server, catalog, cache_dir) -> ProductStore:
    import torch

    torch.set_num_threads(2)
    cfg = server_config(
        chroma_server, tmp_path_factory.mktemp("store"), "shared", batch_size=16, cache_dir=cache_dir
    )
    s = ProductStore(cfg)
    stats = s.build(catalog, show_progress=False)
    assert stats.items == len(catalog) and s.count() == len(catalog)
    return s


@pytest.fixture
def fresh_store(tmp_path, chroma_server, catalog, cache_dir, store) -> ProductStore:
    """A private store in its own server database (mutations allowed); vectors from the shared cache."""
    cfg = server_config(
        chroma_server, tmp_path / "store", f"t{uuid.uuid4().hex[:12]}", batch_size=16, cache_dir=cache_dir
    )
    s = ProductStore(cfg, embedder=store.embedder)
    stats = s.build(catalog, show_progress=False)
    assert stats.embedded == 0  # cache hit: nothing re-embedded
    return s


@pytest.fixture(scope="module")
def popularity(catalog):
    return popularity_from_interactions(make_interactions(catalog))


@pytest.fixture(scope="module", params=["matrix", "chroma"])
def retriever(request, store, catalog, popularity) -> HybridRetriever:
    return HybridRetriever(
        store, catalog, config=HybridConfig(dense_backend=request.param), popularity=popularity
    )


# --------------------------------------------------------------------------- server-mode specifics
def test_store_lives_on_the_server(store, chroma_server):
    import chromadb
    from chromadb.config import Settings

    assert store.config.server_url == chroma_server.url and store.config.database == "shared"
    assert not (store.root / "chroma").exists() and not (store.root / ALIAS_FILE).exists()
    other = chromadb.HttpClient(
        host="127.0.0.1",
        port=chroma_server.port,
        database="shared",
        settings=Settings(anonymized_telemetry=False),
    )
    alias = other.get_collection("products-alias")
    assert alias.metadata["alias:products"] == store.collection_name
    assert other.get_collection(store.collection_name).count() == store.count()


def test_databases_isolate_stores_with_the_same_name(fresh_store, store, catalog):
    assert fresh_store.config.collection == store.config.collection == "products"
    fresh_store.delete_items(catalog.ids[:10])
    assert fresh_store.count() == len(catalog) - 10 and store.count() == len(catalog)
    fresh_store.rebuild(catalog, show_progress=False)  # drops its stale collections only
    assert ProductStore(store.config, embedder=store.embedder).collection_name == store.collection_name


def test_failed_rebuild_leaves_old_collection_serving(fresh_store, catalog):
    s = fresh_store
    old = s.collection_name
    changed = Catalog([*catalog, Item("extra", "Extra item", price=1.0)])

    def boom(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("simulated crash mid-rebuild")

    with pytest.raises(RuntimeError, match="simulated"):
        s.rebuild(changed, show_progress=False, on_batch=boom)
    reopened = ProductStore(s.config, embedder=s.embedder)
    assert reopened.collection_name == old and reopened.count() == len(catalog)
    assert [c.name for c in s.client.list_collections() if c.name.startswith("products-minilm")] == [old]
    stats = s.rebuild(changed, show_progress=False)
    assert ProductStore(s.config, embedder=s.embedder).collection_name == stats.collection != old
    assert s.count() == len(changed) and not s.needs_rebuild(changed)


def test_killed_rebuild_process_leaves_old_collection_serving(fresh_store, catalog):
    """A hard kill mid-rebuild: the alias collection on the server still names the old one."""
    s = fresh_store
    old = s.collection_name
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
        from _catalog_fixture import make_catalog
        from retrieval.vector_store import ProductStore, StoreConfig
        s = ProductStore(StoreConfig(path={str(s.config.path)!r}, server_url={s.config.server_url!r},
                                     database={s.config.database!r}, batch_size=16,
                                     cache_dir={str(s.cache_dir)!r}))
        def die(done, total):
            if done == 2:
                os._exit(3)
        s.rebuild(make_catalog(), show_progress=False, on_batch=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    reopened = ProductStore(s.config, embedder=s.embedder)
    assert reopened.collection_name == old and reopened.count() == len(catalog)
    assert len(reopened.query(reopened.embedder.encode_query("shampoo"), 3)) == 3
    reopened.rebuild(catalog, show_progress=False)
    left = [c.name for c in reopened.client.list_collections() if c.name.startswith("products-minilm")]
    assert left == [reopened.collection_name]  # the half-written one is gone after a good rebuild


def test_incremental_updates_reach_hybrid_search(fresh_store, catalog):
    for backend in ("matrix", "chroma"):
        r = HybridRetriever(fresh_store, catalog, config=HybridConfig(dense_backend=backend))
        cream = by_title(r.catalog, "moisturizing cream")
        r.update_price_stock(cream, price=2.0)
        assert cream in {x.item_id for x in r.search("face cream", Constraints(price_max=2.5), k=5)}
        r.update_price_stock(cream, price=16.99)
        assert cream not in {x.item_id for x in r.search("face cream", Constraints(price_max=2.5), k=5)}
    new = Item("zz1", "Velvora peptide night cream", brand="Velvora", categories=FACE, price=30.0)
    r.upsert_items([new])
    assert r.search("Velvora", Constraints(price_max=40), k=3)[0].item_id == "zz1"
    r.delete_items(["zz1"])
    assert "zz1" not in {x.item_id for x in r.search("Velvora peptide night cream", k=10)}


def test_bad_url_and_dead_server_fail_clearly(tmp_path, store):
    with pytest.raises(ValueError, match="http://host:8000"):
        StoreConfig.from_url("localhost:8000", path=tmp_path)
    with pytest.raises(ValueError, match="unknown Chroma URL parameters"):
        StoreConfig.from_url("http://127.0.0.1:8000?db=x", path=tmp_path)
    assert StoreConfig.from_url("", path=tmp_path).server_url is None
    dead = StoreConfig.from_url(f"http://127.0.0.1:{free_port()}", path=tmp_path)
    with pytest.raises(ConnectionError, match="chroma run"):
        ProductStore(dead, embedder=store.embedder)


def test_assistant_takes_its_store_from_a_url(tmp_path, chroma_server, catalog, store):
    from assistant.index import AssistantIndex
    from assistant.sessions import SessionStore
    from assistant.shopping_assistant import ShoppingAssistant

    ds = Dataset("fixture beauty", catalog, make_interactions(catalog))
    url = f"{chroma_server.url}?database=assistant"
    index = AssistantIndex.build_or_load(
        ds, embedder=store.embedder, cache_dir=tmp_path, show_progress=False, store_url=url
    )
    assert index.store.config.server_url == chroma_server.url
    assert index.store.config.collection == "ds-fixture-beauty" and "store" in index.info.built
    assert not list(tmp_path.rglob(ALIAS_FILE)) and not list(tmp_path.rglob("chroma.sqlite3"))
    again = AssistantIndex.build_or_load(
        ds, embedder=store.embedder, cache_dir=tmp_path, show_progress=False, store_url=url
    )
    assert "store" not in again.info.built and again.store.collection_name == index.store.collection_name
    bot = ShoppingAssistant(again, None, SessionStore(tmp_path / "sessions"))
    reply = bot.chat("a shampoo under $8", session_id="s1", user_id="hair1")
    assert reply.items and all(it.item_id in catalog for it in reply.items)
    assert all(catalog[it.item_id].price <= 8 for it in reply.items)
    assert again.users.vector("hair1") is not None  # the profile vector went to the server


def test_server_restart_keeps_data(chroma_server, store, catalog):
    """SIGKILL the server and start it again on the same data: everything is still there."""
    UserHistoryStore(store).update("restart-u", [by_title(catalog, "shade Ruby")])
    name, before = store.collection_name, store.query(store.embedder.encode_query("lipstick"), 5)
    chroma_server.restart(signal.SIGKILL)
    reopened = ProductStore(store.config, embedder=store.embedder)
    assert reopened.collection_name == name and not reopened.needs_rebuild(catalog)
    assert reopened.ensure_built(catalog, show_progress=False) is None
    np.testing.assert_allclose(reopened.item_matrix(catalog), store.item_matrix(catalog), atol=1e-6)
    assert UserHistoryStore(reopened).vector("restart-u") is not None
    after = store.query(store.embedder.encode_query("lipstick"), 5)  # the old client reconnects
    assert [i for i, _ in after] == [i for i, _ in before]

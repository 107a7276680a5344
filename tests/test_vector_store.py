"""ProductStore on a real embedded Chroma: filters, incremental updates, atomic rebuild, profiles."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _catalog_fixture import BODY, EYES, FACE, FRAGRANCE, LIPS, SHAMPOO, by_title, make_catalog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints, FilterIndex
from retrieval.user_store import UserHistoryStore
from retrieval.vector_store import ALIAS_FILE, ProductStore, StoreConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def store(tmp_path_factory, catalog, cache_dir) -> ProductStore:
    import torch

    torch.set_num_threads(2)
    s = ProductStore(StoreConfig(path=tmp_path_factory.mktemp("store"), batch_size=16, cache_dir=cache_dir))
    stats = s.build(catalog, show_progress=False)
    assert stats.items == len(catalog) and s.count() == len(catalog)
    return s


@pytest.fixture
def fresh_store(tmp_path, catalog, cache_dir, store) -> ProductStore:
    """A private store (mutations allowed); vectors come from the shared embedding cache."""
    s = ProductStore(StoreConfig(path=tmp_path / "store", batch_size=16, cache_dir=cache_dir))
    stats = s.build(catalog, show_progress=False)
    assert stats.embedded == 0  # cache hit: nothing re-embedded
    return s


def where_ids(store: ProductStore, c: Constraints) -> set[str]:
    return set(store.collection.get(where=c.to_chroma_where(), include=[])["ids"])


def reference_ids(catalog: Catalog, c: Constraints) -> set[str]:
    return {it.item_id for it in catalog if c.matches(it)}


OPERATOR_CASES = [
    Constraints(price_max=9.99),
    Constraints(price_min=20),
    Constraints(price_min=5, price_max=10),
    Constraints(price_max=0),
    Constraints(brands_in=("MAYBELLINE",)),
    Constraints(brands_in=("ogx", "Pantene")),
    Constraints(brands_out=("Maybelline", "essie")),
    Constraints(categories=(LIPS,)),
    Constraints(categories=(("Beauty", "Makeup"),)),
    Constraints(categories=(SHAMPOO, FRAGRANCE)),
    Constraints(categories=(BODY,)),
    Constraints(categories_out=(("Beauty", "Makeup"),)),
    Constraints(categories_out=(FRAGRANCE, EYES)),
    Constraints(in_stock=True),
    Constraints(in_stock=False),
    Constraints(exclude_items=("p00", "p01", "nope")),
    Constraints(price_max=15, brands_in=("Maybelline",), categories=(LIPS,), in_stock=True),
]


@pytest.mark.parametrize("c", OPERATOR_CASES, ids=lambda c: json.dumps(c.to_dict(), default=str)[:60])
def test_each_operator_matches_reference(store, catalog, c):
    expected = reference_ids(catalog, c)
    assert where_ids(store, c) == expected
    np.testing.assert_array_equal(FilterIndex(catalog).mask(c), c.mask(catalog))


def test_unpriced_items_fail_every_price_constraint(store, catalog):
    unpriced = {it.item_id for it in catalog if it.price is None}
    assert unpriced
    for c in (Constraints(price_max=1e9), Constraints(price_min=0)):
        assert not unpriced & where_ids(store, c)
    assert unpriced <= where_ids(store, Constraints())  # no price constraint: they stay


def test_empty_constraints_compile_to_no_filter():
    assert Constraints().to_chroma_where() is None
    assert Constraints(in_stock=True).to_chroma_where() == {"in_stock": {"$eq": True}}


def _constraints_strategy(catalog: Catalog):
    brands = sorted({it.brand for it in catalog if it.brand} | {"nope"})
    paths = sorted(set(catalog.category_paths()) | {("Beauty", "Nope")})
    ids = [*catalog.ids[:10], "missing"]
    price = st.none() | st.sampled_from([0, 3.29, 5.99, 8.5, 9.99, 20, 54, 200])

    def build(pmin, pmax, bin_, bout, cin, cout, stock, excl):
        if pmin is not None and pmax is not None and pmin > pmax:
            pmin, pmax = pmax, pmin
        return Constraints(pmin, pmax, tuple(bin_), tuple(bout), tuple(cin), tuple(cout), stock, tuple(excl))

    casing = st.sampled_from([str, str.upper, str.lower])
    brand = st.tuples(st.sampled_from(brands), casing).map(lambda t: t[1](t[0]))
    return st.builds(
        build,
        price,
        price,
        st.lists(brand, max_size=3),
        st.lists(brand, max_size=2),
        st.lists(st.sampled_from(paths), max_size=2),
        st.lists(st.sampled_from(paths), max_size=2),
        st.none() | st.booleans(),
        st.lists(st.sampled_from(ids), max_size=3),
    )


def test_where_and_mask_agree_with_matches_on_random_constraints(store, catalog):
    index = FilterIndex(catalog)

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_constraints_strategy(catalog))
    def check(c: Constraints) -> None:
        expected = reference_ids(catalog, c)
        assert where_ids(store, c) == expected, c
        mask = index.mask(c)
        assert {catalog.at(int(r)).item_id for r in np.flatnonzero(mask)} == expected, c

    check()


def test_query_filters_inside_chroma_and_fills_k(store, catalog):
    q = store.embedder.encode_query("lipstick")
    c = Constraints(brands_in=("maybelline",))
    hits = store.query(q, 10, c.to_chroma_where())
    assert {i for i, _ in hits} == reference_ids(catalog, c)  # all 7, not a post-filtered top-10
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True)
    hits = store.query(q, 10, Constraints(price_max=100).to_chroma_where())
    assert len(hits) == 10


def test_incremental_update_visible_to_next_query(fresh_store, catalog):
    s = fresh_store
    ruby = by_title(catalog, "shade Ruby")
    cheap = Constraints(price_max=5)
    assert ruby not in where_ids(s, cheap)
    s.update_price_stock(ruby, price=4.0)
    assert ruby in where_ids(s, cheap)
    s.update_price_stock(ruby, in_stock=False)
    assert ruby in where_ids(s, Constraints(in_stock=False))
    assert ruby in where_ids(s, cheap)  # price untouched by a stock-only update
    s.update_price_stock(ruby, price=None)
    assert ruby not in where_ids(s, Constraints(price_max=1e9))
    assert s.metadata(ruby).get("price") is None
    with pytest.raises(ValueError, match="price"):
        s.update_price_stock(ruby, price=-1)
    with pytest.raises(KeyError):
        s.update_price_stock("nope", price=1.0)

    new = Item("new1", "Glowberry shimmer highlighter stick", brand="Glowberry", categories=FACE, price=12.0)
    s.upsert_items([new])
    hits = s.query(s.embedder.encode_query("shimmer highlighter stick"), 1)
    assert hits[0][0] == "new1"
    np.testing.assert_allclose(s.vectors(["new1"])[0], s.embedder.encode([new.text()])[0], atol=1e-5)

    s.delete_items(["new1", ruby])
    assert s.count() == len(catalog) - 1
    assert "new1" not in where_ids(s, Constraints()) and not s.has_item(ruby)
    with pytest.raises(KeyError):
        s.vectors([ruby])
    assert s.needs_rebuild(catalog)  # edited since the build


def test_restart_reuses_collection_and_vectors(fresh_store, catalog):
    again = ProductStore(fresh_store.config)
    assert again.collection_name == fresh_store.collection_name
    assert not again.needs_rebuild(catalog)
    assert again.ensure_built(catalog, show_progress=False) is None
    np.testing.assert_allclose(again.item_matrix(catalog), fresh_store.item_matrix(catalog), atol=1e-6)


def test_failed_rebuild_leaves_old_collection_serving(fresh_store, catalog):
    s = fresh_store
    old = s.collection_name
    changed = Catalog([*catalog, Item("extra", "Extra item", price=1.0)])

    def boom(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("simulated crash mid-rebuild")

    with pytest.raises(RuntimeError, match="simulated"):
        s.rebuild(changed, show_progress=False, on_batch=boom)
    assert s.collection_name == old and s.count() == len(catalog)
    reopened = ProductStore(s.config)
    assert reopened.collection_name == old and reopened.count() == len(catalog)
    names = [c.name for c in s.client.list_collections()]
    assert [n for n in names if n.startswith("products-")] == [old]  # half-built one dropped

    stats = s.rebuild(changed, show_progress=False)
    assert s.collection_name == stats.collection != old and s.count() == len(changed)
    assert stats.embedded == 0  # the failed attempt already cached the new vectors
    assert json.loads((Path(s.config.path) / ALIAS_FILE).read_text())["products"] == stats.collection
    assert old not in [c.name for c in s.client.list_collections()]


def test_killed_rebuild_process_leaves_old_collection_serving(fresh_store, catalog):
    """A hard kill (no except/finally runs) mid-rebuild: the alias still names the old collection."""
    s = fresh_store
    old = s.collection_name
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
        from _catalog_fixture import make_catalog
        from retrieval.vector_store import ProductStore, StoreConfig
        s = ProductStore(StoreConfig(path={str(s.config.path)!r}, batch_size=16, cache_dir={str(s.cache_dir)!r}))
        def die(done, total):
            if done == 2:
                os._exit(3)
        s.rebuild(make_catalog(), show_progress=False, on_batch=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    reopened = ProductStore(s.config)
    assert reopened.collection_name == old and reopened.count() == len(catalog)
    hits = reopened.query(reopened.embedder.encode_query("shampoo"), 3)
    assert len(hits) == 3
    orphans = [c.name for c in reopened.client.list_collections() if c.name.startswith("products-")]
    assert len(orphans) == 2  # the half-written one is still there ...
    reopened.rebuild(catalog, show_progress=False)
    left = [c.name for c in reopened.client.list_collections() if c.name.startswith("products-")]
    assert left == [reopened.collection_name]  # ... until the next successful rebuild


def test_user_profiles_update_incrementally_and_forget(fresh_store, catalog):
    s = fresh_store
    users = UserHistoryStore(s)
    a, b, c = (
        by_title(catalog, "shade Ruby"),
        by_title(catalog, "Lash Sensational"),
        by_title(catalog, "Chanel"),
    )
    assert users.vector("u1") is None
    users.update("u1", [a, b])
    v = users.update("u1", [c])
    # reference: recency-weighted mean, weight decay^age
    d = s.config.profile_decay
    e = s.vectors([a, b, c]).astype(np.float64)
    ref = (d**2 * e[0] + d * e[1] + e[2]) / (d**2 + d + 1)
    np.testing.assert_allclose(v, ref / np.linalg.norm(ref), atol=1e-5)
    np.testing.assert_allclose(users.vector("u1"), v, atol=1e-6)
    assert users.profile("u1")["n_events"] == 3
    # recency matters: the same items in the other order weigh Chanel less
    w = users.update("u3", [c, a, b])
    assert v @ e[2] > w @ e[2]
    assert users.delete("u1") is True
    assert users.vector("u1") is None and users.delete("u1") is False
    with pytest.raises(ValueError, match="is in the store"):
        users.update("u2", ["missing-item"])


def test_bad_config_and_empty_build_fail_clearly(tmp_path, store):
    with pytest.raises(ValueError, match="collection name"):
        StoreConfig(collection="bad name!")
    s = ProductStore(StoreConfig(path=tmp_path / "empty"), embedder=store.embedder)
    with pytest.raises(RuntimeError, match="build"):
        s.count()
    with pytest.raises(ValueError, match="empty catalog"):
        s.build(Catalog([]), show_progress=False)


# A film is in every one of its genres: MovieLens keeps the first genre in ``categories`` and all
# of them in ``attributes["genres"]``; "a war movie" filtered on the first genre alone and missed
# Schindler's List (Drama|War).
def _films() -> Catalog:
    rows = [
        ("f1", "Schindler's List (1993)", ["Drama", "War"]),
        ("f2", "Stalingrad (1993)", ["War"]),
        ("f3", "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
        ("f4", "Heat (1995)", ["Action", "Crime", "Thriller"]),
        ("f5", "Fargo (1996)", ["Crime", "Drama", "Thriller"]),
        ("f6", "Unlabelled (1990)", []),
    ]
    return Catalog(
        Item(i, t, categories=("Movies", g[0]) if g else ("Movies",), attributes={"genres": g})
        for i, t, g in rows
    )


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        (Constraints(categories=(("Movies", "War"),)), {"f1", "f2"}),
        (Constraints(categories=(("Movies", "Comedy"),)), {"f3"}),
        (Constraints(categories=(("Movies", "Thriller"), ("Movies", "Drama"))), {"f1", "f4", "f5"}),
        (Constraints(categories_out=(("Movies", "Drama"),)), {"f2", "f3", "f4", "f6"}),
        (Constraints(categories=(("Movies", "Crime"),), categories_out=(("Movies", "Drama"),)), {"f4"}),
        (Constraints(categories=(("Movies",),)), {"f1", "f2", "f3", "f4", "f5", "f6"}),
    ],
)
def test_an_item_is_in_every_genre_it_lists(tmp_path_factory, cache_dir, c, expected):
    films = _films()
    store = ProductStore(
        StoreConfig(path=tmp_path_factory.mktemp("films"), batch_size=8, cache_dir=cache_dir)
    )
    store.build(films, show_progress=False)
    assert reference_ids(films, c) == expected
    assert where_ids(store, c) == expected
    assert {films.at(int(r)).item_id for r in np.flatnonzero(FilterIndex(films).mask(c))} == expected

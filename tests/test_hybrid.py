"""Hybrid retrieval on real Chroma + MiniLM + BM25: filters inside retrieval, fusion, fallbacks."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from _catalog_fixture import FACE, LIPS, by_title, make_catalog, make_interactions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.data.schema import Catalog, Item
from retrieval.filters import Constraints
from retrieval.hybrid import HybridConfig, HybridRetriever, is_vague
from retrieval.lexical import BM25Index, tokenize
from retrieval.ranker import popularity_from_interactions
from retrieval.vector_store import ProductStore, StoreConfig


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def store(tmp_path_factory, catalog, cache_dir) -> ProductStore:
    import torch

    torch.set_num_threads(2)
    s = ProductStore(StoreConfig(path=tmp_path_factory.mktemp("store"), cache_dir=cache_dir))
    s.build(catalog, show_progress=False)
    return s


@pytest.fixture(scope="module")
def popularity(catalog):
    return popularity_from_interactions(make_interactions(catalog))


@pytest.fixture(scope="module", params=["matrix", "chroma"])
def retriever(request, store, catalog, popularity) -> HybridRetriever:
    return HybridRetriever(
        store, catalog, config=HybridConfig(dense_backend=request.param), popularity=popularity
    )


def matching(catalog: Catalog, c: Constraints) -> set[str]:
    return {it.item_id for it in catalog if c.matches(it)}


def test_selective_filter_returns_all_matches(retriever, catalog):
    c = Constraints(brands_in=("MAYBELLINE",))
    assert len(matching(catalog, c)) == 7
    got = retriever.search("moisturizing shampoo", c, k=10)  # a query none of them fits
    assert {x.item_id for x in got} == matching(catalog, c)


def test_broad_filter_fills_k(retriever, catalog):
    c = Constraints(price_max=100)
    assert len(matching(catalog, c)) >= 50
    got = retriever.search("lipstick", c, k=10)
    assert len(got) == 10 and {x.item_id for x in got} <= matching(catalog, c)
    assert len({x.item_id for x in got}) == 10


def test_results_respect_random_constraints_and_fill(retriever, catalog):
    brands = sorted(catalog.brands())
    paths = catalog.category_paths()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.sampled_from(["lipstick", "hair care", "serum for dry skin", "nail polish #3"]),
        st.none() | st.sampled_from([5.0, 10.0, 30.0]),
        st.lists(st.sampled_from(brands), max_size=3),
        st.lists(st.sampled_from(paths), max_size=2),
        st.none() | st.booleans(),
        st.integers(1, 12),
    )
    def check(query, pmax, bin_, cats, stock, k):
        c = Constraints(price_max=pmax, brands_in=tuple(bin_), categories=tuple(cats), in_stock=stock)
        allowed = matching(catalog, c)
        got = [x.item_id for x in retriever.search(query, c, k=k)]
        assert set(got) <= allowed
        assert len(got) == len(set(got)) == min(k, len(allowed))

    check()


def test_bm25_finds_exact_token_dense_misses(retriever, store, catalog):
    target = by_title(catalog, "#17")
    dense = [i for i, _ in store.query(store.embedder.encode_query("#17"), len(catalog))]
    assert dense.index(target) >= 5  # the dense half alone does not surface it
    got = retriever.search("#17", k=5)
    assert got[0].item_id == target and got[0].lexical_rank == 1
    assert got[0].dense_rank is None or got[0].dense_rank > 1


def test_candidates_carry_scores_and_ranks(retriever):
    got = retriever.search("matte liquid lipstick", k=5)
    assert [x.relevance for x in got] == sorted((x.relevance for x in got), reverse=True)
    top = got[0]
    assert top.dense_score is not None and top.dense_rank is not None and top.source == "hybrid"
    assert top.relevance == pytest.approx(
        sum(1 / (60 + r) for r in (top.dense_rank, top.lexical_rank) if r is not None)
    )


def test_extra_ids_join_the_pool_with_their_true_ranks(retriever, catalog):
    """Candidate union: an extra id outside the top k is added (if it passes the filters) and
    scored with the ranks it has among all allowed items, so it competes on the same scale."""
    c = Constraints(categories=(LIPS,))
    full = retriever.search("matte liquid lipstick", c, k=len(catalog))
    top = full[:3]
    outside, last = full[5], full[-1]
    hair = by_title(catalog, "OGX argan oil of Morocco shampoo")  # fails the filter: never added
    got = retriever.search(
        "matte liquid lipstick", c, k=3, extra_ids=[outside.item_id, last.item_id, hair, top[0].item_id]
    )
    assert [x.item_id for x in got[:3]] == [x.item_id for x in top]  # the fused top k is unchanged
    extra = {x.item_id: x for x in got[3:]}
    assert set(extra) == {outside.item_id, last.item_id}  # no duplicate, nothing off-filter
    for ref in (outside, last):
        x = extra[ref.item_id]
        assert x.source == "extra" and x.dense_rank == ref.dense_rank
        assert x.relevance == pytest.approx(ref.relevance) if ref.lexical_rank is None else x.relevance > 0
    assert extra[outside.item_id].relevance >= extra[last.item_id].relevance
    vague = retriever.search("something else", c, k=2, extra_ids=[last.item_id])
    assert vague[-1].item_id == last.item_id and vague[-1].source == "extra"


def test_weighted_fusion(store, catalog):
    r = HybridRetriever(store, catalog, config=HybridConfig(fusion="weighted", lexical_weight=0.0))
    got = r.search("shampoo for dandruff", k=5)
    dense_order = [x.item_id for x in sorted(got, key=lambda x: x.dense_rank)]
    assert [x.item_id for x in got] == dense_order  # lexical weight 0: dense order only
    assert got[0].relevance == pytest.approx(1.0)


def test_vague_query_falls_back_to_popularity_within_constraints(retriever, catalog, popularity):
    assert is_vague("something else") and is_vague("  ") and is_vague("show me more options please")
    assert is_vague("还有别的吗") and not is_vague("口红") and not is_vague("red lipstick")
    got = retriever.search("something else", k=3)
    assert [x.source for x in got] == ["popularity"] * 3
    best = max(popularity.values())
    assert popularity[got[0].item_id] == best
    c = Constraints(categories=(LIPS,))
    got = retriever.search("anything", c, k=20)
    assert {x.item_id for x in got} == matching(catalog, c)
    pops = [popularity.get(x.item_id, 0.0) for x in got]
    assert pops == sorted(pops, reverse=True)


def test_vague_query_uses_profile_vector(retriever, store, catalog):
    hair = [by_title(catalog, "OGX argan oil of Morocco shampoo"), by_title(catalog, "detangling")]
    profile = store.vectors(hair).mean(axis=0)
    profile /= np.linalg.norm(profile)
    got = retriever.search("something else", Constraints(exclude_items=tuple(hair)), k=3, user_vector=profile)
    assert all(x.source == "profile" for x in got)
    assert all(catalog[x.item_id].categories[:2] == ("Beauty", "Hair") for x in got)


def test_user_vector_blends_into_query(store, catalog):
    r = HybridRetriever(store, catalog, config=HybridConfig(user_weight=0.6))
    skin = store.vectors(
        [by_title(catalog, "moisturizing cream"), by_title(catalog, "facial cleanser")]
    ).mean(0)
    plain = [x.item_id for x in r.search("moisturizer", k=5)]
    blended = [x.item_id for x in r.search("moisturizer", k=5, user_vector=skin / np.linalg.norm(skin))]
    n_face = lambda ids: sum(catalog[i].categories == FACE for i in ids)  # noqa: E731
    assert n_face(blended) >= n_face(plain)


def test_incremental_updates_reach_search(tmp_path, catalog, cache_dir, store):
    s = ProductStore(StoreConfig(path=tmp_path / "s", cache_dir=cache_dir), embedder=store.embedder)
    s.build(catalog, show_progress=False)
    for backend in ("matrix", "chroma"):
        r = HybridRetriever(s, catalog, config=HybridConfig(dense_backend=backend))
        cream = by_title(r.catalog, "moisturizing cream")
        r.update_price_stock(cream, price=2.0)
        assert cream in {x.item_id for x in r.search("face cream", Constraints(price_max=2.5), k=5)}
        r.update_price_stock(cream, price=16.99)
        assert cream not in {x.item_id for x in r.search("face cream", Constraints(price_max=2.5), k=5)}
    new = Item("zz1", "Velvora peptide night cream", brand="Velvora", categories=FACE, price=30.0)
    r.upsert_items([new])
    got = r.search("Velvora", k=3)
    assert got[0].item_id == "zz1" and got[0].lexical_rank == 1
    r.delete_items(["zz1"])
    assert "zz1" not in {x.item_id for x in r.search("Velvora peptide night cream", k=10)}
    assert "zz1" not in r.catalog


def test_empty_match_and_bad_k(retriever):
    assert retriever.search("lipstick", Constraints(brands_in=("no-such-brand",)), k=5) == []
    with pytest.raises(ValueError, match="k must be positive"):
        retriever.search("lipstick", k=0)


def test_tokenizer_and_bm25_roundtrip(tmp_path, catalog):
    assert tokenize("Matte Lipsticks for ME") == ["matte", "lipstick"]
    assert tokenize("红色口红") == ["红", "色", "口", "红", "红色", "色口", "口红"]
    idx = BM25Index.from_texts(["a", "b", "c"], ["红色口红 matte", "洗发水 shampoo", "口红 lipstick"])
    hits = idx.search("口红", 5)
    assert {r for r, _ in hits} == {0, 2}
    mask = np.array([False, True, True])
    assert [r for r, _ in idx.search("口红", 5, mask)] == [2]  # filtered before the cut
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    np.testing.assert_allclose(again.scores("口红 matte"), idx.scores("口红 matte"))
    assert again.ids == ["a", "b", "c"]
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path / "missing")

"""Co-occurrence complements and budget-constrained bundles."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from _catalog_fixture import CONDITIONER, SHAMPOO, by_title, make_catalog, make_interactions

from retrieval.complements import (
    CooccurrenceConfig,
    CooccurrenceGraph,
    assemble_bundle,
    split_needs,
)
from retrieval.data.schema import Catalog, Interactions
from retrieval.filters import Constraints
from retrieval.hybrid import HybridRetriever
from retrieval.vector_store import ProductStore, StoreConfig


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="module")
def graph(catalog) -> CooccurrenceGraph:
    return CooccurrenceGraph().fit(make_interactions(catalog), catalog)


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, catalog) -> HybridRetriever:
    import torch

    torch.set_num_threads(2)
    store = ProductStore(StoreConfig(path=tmp_path_factory.mktemp("store")))
    store.build(catalog, show_progress=False)
    return HybridRetriever(store, catalog)


def test_bought_together_pairs(graph, catalog):
    t = lambda s: by_title(catalog, s)  # noqa: E731
    ruby, mascara, chanel = t("shade Ruby"), t("Lash Sensational"), t("Chanel")
    comps = graph.complements([ruby], 3)
    assert comps[0].item_id == mascara and comps[0].support == 6 and comps[0].because_of == ruby
    # lift: 6 users share them; 6 had each; 27 users in all -> 6 * 27 / (6 * 6)
    n_users = len(make_interactions(catalog).users)
    assert graph.score(ruby, mascara) == pytest.approx(6 * n_users / 36)
    # the one-off pair is below min_support
    assert graph.support(chanel, t("Wooden")) == 0 and graph.complements([chanel], 5) == []
    loose = CooccurrenceGraph(CooccurrenceConfig(min_support=1)).fit(make_interactions(catalog), catalog)
    assert [c.item_id for c in loose.complements([chanel], 5)] == [t("Wooden")]


def test_complements_respect_constraints_and_basket(graph, catalog):
    t = lambda s: by_title(catalog, s)  # noqa: E731
    ogx_s, ogx_c, brush = (
        t("OGX argan oil of Morocco shampoo"),
        t("OGX argan oil of Morocco conditioner"),
        t("detangling"),
    )
    got = [c.item_id for c in graph.complements([ogx_s], 5)]
    assert set(got) == {ogx_c, brush}
    assert [c.item_id for c in graph.complements([ogx_s, ogx_c], 5)] == [brush]
    assert [c.item_id for c in graph.complements([ogx_s], 5, Constraints(price_max=10))] == [ogx_c]
    assert graph.complements([ogx_s], 5, Constraints(categories=(CONDITIONER,)))[0].item_id == ogx_c
    assert brush not in [
        c.item_id for c in graph.complements([ogx_s], 5, Constraints(exclude_items=(brush,)))
    ]


def test_normalisations_and_window(catalog):
    inter = Interactions.from_sequences(
        {"a": ["p00", "p01", "p02"], "b": ["p00", "p02"], "c": ["p01", "p02"]}
    )
    cos = CooccurrenceGraph(CooccurrenceConfig("cosine", min_support=1)).fit(inter, catalog)
    assert cos.score("p00", "p02") == pytest.approx(2 / (2 * 3) ** 0.5)
    count = CooccurrenceGraph(CooccurrenceConfig("count", min_support=1)).fit(inter, catalog)
    assert count.score("p00", "p02") == 2 and count.score("p02", "p00") == 2
    win = CooccurrenceGraph(CooccurrenceConfig("count", min_support=1, window=1)).fit(inter, catalog)
    assert win.score("p00", "p02") == 1  # only user b has them adjacent
    with pytest.raises(ValueError, match="normalization"):
        CooccurrenceConfig("pmi")
    with pytest.raises(RuntimeError, match="not fitted"):
        CooccurrenceGraph().complements(["p00"])


def test_save_load(tmp_path, graph, catalog):
    graph.save(tmp_path / "g")
    again = CooccurrenceGraph.load(tmp_path / "g", catalog)
    ruby = by_title(catalog, "shade Ruby")
    assert [c.item_id for c in again.complements([ruby], 3)] == [
        c.item_id for c in graph.complements([ruby], 3)
    ]


def test_bundle_from_need_respects_budget_and_covers_categories(retriever, graph, catalog):
    b = assemble_bundle(
        "shampoo and conditioner and a hair brush", 30.0, catalog, retriever=retriever, graph=graph
    )
    assert 2 <= len(b.items) <= 4 and not b.note
    assert b.total_price <= 30.0 and b.total_price == pytest.approx(sum(i.price for i in b.items))
    cats = [catalog[i].categories for i in b.item_ids]
    assert len(set(cats)) == len(cats) == len(b.covered_categories)
    assert {SHAMPOO, CONDITIONER} <= set(cats)
    assert all(catalog[i].price is not None for i in b.item_ids)
    assert all(item.reason for item in b.items)
    # a tight budget still holds, with fewer or cheaper items
    tight = assemble_bundle("shampoo and conditioner", 12.0, catalog, retriever=retriever, graph=graph)
    assert tight.total_price <= 12.0 and len(tight.items) == 2


def test_bundle_around_seed_uses_cooccurrence(graph, catalog):
    ogx_s = by_title(catalog, "OGX argan oil of Morocco shampoo")
    b = assemble_bundle(ogx_s, 40.0, catalog, graph=graph)
    assert b.item_ids[0] == ogx_s and set(b.item_ids[1:]) == {
        by_title(catalog, "OGX argan oil of Morocco conditioner"),
        by_title(catalog, "detangling"),
    }
    assert b.total_price == pytest.approx(8.99 + 8.99 + 12.0)
    assert b.items[0].reason == "the item you started from"
    assert "often bought with" in b.items[1].reason or "bought with" in b.items[1].reason
    cheap = assemble_bundle(ogx_s, 18.0, catalog, graph=graph)
    assert cheap.total_price <= 18.0 and len(cheap.items) == 2


def test_unpriced_items_and_infeasible_budgets(graph, catalog, retriever):
    nars = by_title(catalog, "NARS")  # no price
    assert assemble_bundle(nars, 50, catalog, graph=graph).items == []
    b = assemble_bundle("lip pencil and comb", 50, catalog, retriever=retriever)
    assert nars not in b.item_ids and by_title(catalog, "Wooden") not in b.item_ids
    tiny = assemble_bundle("perfume and lipstick", 1.0, catalog, retriever=retriever, graph=graph)
    assert tiny.items == [] and tiny.note
    with pytest.raises(ValueError, match="budget"):
        assemble_bundle("shampoo", 0, catalog, retriever=retriever)
    with pytest.raises(ValueError, match="retriever"):
        assemble_bundle("shampoo", 10, catalog)


def test_beam_is_no_worse_than_greedy(retriever, graph, catalog):
    need = "lipstick, mascara, face cream and shampoo"
    greedy = assemble_bundle(need, 35.0, catalog, retriever=retriever, graph=graph, beam_width=1)
    beam = assemble_bundle(need, 35.0, catalog, retriever=retriever, graph=graph, beam_width=8)
    assert beam.score >= greedy.score - 1e-9
    for b in (greedy, beam):
        assert b.total_price <= 35.0
        assert len({catalog[i].categories for i in b.item_ids}) == len(b.items)


def test_split_needs():
    assert split_needs("shampoo, conditioner and a brush") == ["shampoo", "conditioner", "a brush"]
    assert split_needs("洗发水和护发素") == ["洗发水", "护发素"]

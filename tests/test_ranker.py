"""FusedRanker contributions and weights; MMR and caps (diversity)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from _catalog_fixture import LIPS, by_title, make_catalog, make_interactions

from retrieval.data.schema import Catalog, Item, placeholder_title
from retrieval.diversity import DiversityConfig, apply_caps, diversify, mmr_order
from retrieval.filters import Constraints
from retrieval.hybrid import Candidate
from retrieval.ranker import (
    BODY_WORD_CREDIT,
    SIGNALS,
    Feedback,
    FusedRanker,
    RankedItem,
    RankerWeights,
    normalise,
    popularity_from_interactions,
)
from retrieval.scorers.base import Scorer


class CoCountScorer(Scorer):
    """Minimal real scorer: how often each item co-occurs with the history's items."""

    name = "cocount-test"

    def _fit(self, histories: list[list[int]], n_items: int) -> None:
        self.co = np.zeros((n_items, n_items))
        for h in histories:
            for a in set(h):
                for b in set(h):
                    if a != b:
                        self.co[a, b] += 1

    def full_sort(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        return np.stack([self.co[list(h)].sum(axis=0) if h else np.zeros(len(self.co)) for h in histories])


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="module")
def scorer(catalog) -> CoCountScorer:
    return CoCountScorer().fit(make_interactions(catalog), catalog)


def cands(catalog: Catalog, ids: list[str]) -> list[Candidate]:
    # relevance decreasing with position, like a retriever's output
    return [Candidate(i, 1.0 / (60 + r), dense_rank=r) for r, i in enumerate(ids, 1)]


def test_contributions_sum_exactly_and_follow_weights(catalog, scorer, vectors):
    ids = catalog.ids[:24]
    pop = popularity_from_interactions(make_interactions(catalog))
    hist = [by_title(catalog, "OGX argan oil of Morocco shampoo")]
    fb = Feedback(liked_items=(by_title(catalog, "OGX argan oil of Morocco conditioner"),))
    w = RankerWeights()
    out = FusedRanker(catalog, w, item_vectors=vectors).rank(
        cands(catalog, ids),
        hist,
        scorer,
        popularity=pop,
        feedback=fb,
        price_preference="low",
        soft_categories=(catalog[ids[0]].categories,),
        query="argan oil shampoo",
    )
    assert len(out) == 24 and set(out[0].contributions) == set(SIGNALS)
    for r in out:
        assert r.score == sum(r.contributions.values())
    assert [r.score for r in out] == sorted((r.score for r in out), reverse=True)
    # every signal is active somewhere
    for name in SIGNALS:
        assert any(r.contributions[name] != 0 for r in out), name
    # contributions scale linearly with their weight; a zero weight removes the signal
    w2 = RankerWeights(relevance=2.0, collaborative=0.0)
    out2 = {
        r.item_id: r for r in FusedRanker(catalog, w2).rank(cands(catalog, ids), hist, scorer, popularity=pop)
    }
    for r in out:
        assert out2[r.item_id].contributions["relevance"] == pytest.approx(2 * r.contributions["relevance"])
        assert out2[r.item_id].contributions["collaborative"] == 0.0


def test_collaborative_signal_reorders(catalog, scorer):
    ogx_s = by_title(catalog, "OGX argan oil of Morocco shampoo")
    ogx_c = by_title(catalog, "OGX argan oil of Morocco conditioner")
    ids = [i for i in catalog.ids if i != ogx_s][:30]
    assert ids.index(ogx_c) > 10  # retrieval put it low
    ranked = FusedRanker(catalog, RankerWeights(relevance=0.2, collaborative=1.0)).rank(
        cands(catalog, ids), [ogx_s], scorer
    )
    assert ranked[0].item_id == ogx_c and ranked[0].top_reasons(1) == ["collaborative"]
    # no history: no collaborative evidence at all
    cold = FusedRanker(catalog).rank(cands(catalog, ids), [], scorer)
    assert all(r.contributions["collaborative"] == 0 for r in cold)
    assert [r.item_id for r in cold] == ids  # relevance order kept


def test_hard_constraints_drop(catalog):
    ids = catalog.ids[:20]
    c = Constraints(price_max=10)
    out = FusedRanker(catalog).rank(cands(catalog, ids), constraints=c)
    assert out and all(c.matches(catalog[r.item_id]) for r in out)


def test_feedback_penalises_dislikes_and_their_look_alikes(catalog, vectors):
    dupes = [it.item_id for it in catalog if "SuperStay Matte Ink" in it.title]
    ids = dupes + [i for i in catalog.ids if catalog[i].categories == LIPS and i not in dupes]
    fb = Feedback(disliked_items=(dupes[0],))
    soft = FusedRanker(catalog, item_vectors=vectors).rank(cands(catalog, ids), feedback=fb)
    assert dupes[0] not in {r.item_id for r in soft}
    bad = vectors([dupes[0]])[0]
    w = RankerWeights().feedback
    for r in soft:  # the default weight times minus half the (clipped) cosine to the disliked item
        cos = float(np.clip(vectors([r.item_id])[0] @ bad, 0.0, 1.0))
        assert r.contributions["feedback"] == pytest.approx(-w * 0.5 * cos)
    out = FusedRanker(catalog, RankerWeights(feedback=4.0), item_vectors=vectors).rank(
        cands(catalog, ids), feedback=fb
    )
    first_other = min(i for i, r in enumerate(out) if r.item_id not in dupes)
    assert first_other == 0  # the disliked item's look-alikes fell below the best other item
    assert FusedRanker(catalog).rank(cands(catalog, ids), feedback=fb)[0].contributions["feedback"] == 0.0


def test_normalise_modes():
    x = np.array([1.0, 3.0, np.nan, 2.0])
    np.testing.assert_allclose(normalise(x), [0.0, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(normalise(np.array([10.0, 1000.0, 20.0]), "rank"), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(normalise(np.array([4.0, 4.0])), [0.0, 0.0])
    with pytest.raises(ValueError, match="normalization"):
        RankerWeights(normalization="zscore")


# --- diversity --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vectors(catalog):
    import torch

    from retrieval.embedders import get_embedder

    torch.set_num_threads(2)
    emb = get_embedder("minilm")
    mat = emb.encode([it.text() for it in catalog])
    return lambda ids: mat[[catalog.index_of(i) for i in ids]]


def test_mmr_reduces_near_duplicates(catalog, vectors):
    dupes = [it.item_id for it in catalog if "SuperStay Matte Ink" in it.title]
    others = [i for i in catalog.ids if catalog[i].categories == LIPS and i not in dupes]
    ids = dupes + others  # the five near-identical lipsticks rank first
    ranked = [RankedItem(i, 1.0 - 0.01 * j) for j, i in enumerate(ids)]
    plain = [r.item_id for r in ranked[:5]]
    diverse = [r.item_id for r in diversify(ranked, catalog, 5, DiversityConfig(lambda_=0.3), vectors)]
    assert sum(i in dupes for i in plain) == 5
    assert sum(i in dupes for i in diverse) <= 2
    assert diverse[0] == ids[0]  # the best item still leads
    # lambda = 1 is pure relevance order
    assert mmr_order(np.array([r.score for r in ranked]), vectors(ids), 5, 1.0) == [0, 1, 2, 3, 4]


def test_caps_hold(catalog):
    ranked = [RankedItem(i, 1.0 - 0.001 * j) for j, i in enumerate(catalog.ids)]
    out = apply_caps(ranked, catalog, 15, DiversityConfig(max_per_brand=1, max_per_category=2))
    assert len(out) == 15
    brands = Counter((catalog[r.item_id].brand or "").casefold() for r in out if catalog[r.item_id].brand)
    cats = Counter(catalog[r.item_id].categories for r in out if catalog[r.item_id].categories)
    assert max(brands.values()) == 1 and max(cats.values()) <= 2
    strict = apply_caps(ranked, catalog, 64, DiversityConfig(max_per_category=1, category_depth=2))
    assert len({catalog[r.item_id].categories[:2] for r in strict if catalog[r.item_id].categories}) == sum(
        1 for r in strict if catalog[r.item_id].categories
    )
    filled = apply_caps(ranked, catalog, 30, DiversityConfig(max_per_category=1, category_depth=1, fill=True))
    assert len(filled) == 30
    with pytest.raises(ValueError, match="lambda_"):
        DiversityConfig(lambda_=1.5)


def test_a_price_wish_leans_the_ranking_without_filtering(catalog, vectors):
    ids = [i for i in catalog.ids if catalog[i].price is not None][:12]
    flat = FusedRanker(
        catalog, RankerWeights(relevance=0, collaborative=0, popularity=0, feedback=0, price=1.0)
    )
    low = flat.rank(cands(catalog, ids), price_preference="low")
    high = flat.rank(cands(catalog, ids), price_preference="high")
    none = flat.rank(cands(catalog, ids))
    assert len(low) == len(high) == len(none) == 12  # a lean, never a filter
    assert catalog[low[0].item_id].price == min(catalog[i].price for i in ids)
    assert catalog[high[0].item_id].price == max(catalog[i].price for i in ids)
    assert all(r.contributions["price"] == 0 for r in none)
    mid = flat.rank(cands(catalog, ids), price_preference="mid")
    median = float(np.median([catalog[i].price for i in ids]))
    gaps = sorted(abs(catalog[i].price - median) for i in ids)
    assert abs(catalog[mid[0].item_id].price - median) == gaps[0]
    with pytest.raises(ValueError, match="price_preference"):
        flat.rank(cands(catalog, ids), price_preference="cheap")


def test_words_signal_puts_items_carrying_more_of_the_shoppers_words_first(catalog):
    """Coordination: an item whose name carries every word the shopper said beats one that carries
    some of them, whatever the retrieval order; a word only in the body counts half."""
    ids = catalog.ids[:30]
    query = "argan oil conditioner"
    ranked = FusedRanker(catalog, RankerWeights(relevance=0.0, popularity=0.0, words=1.0)).rank(
        cands(catalog, ids[::-1]), query=query
    )
    share = [r.contributions["words"] for r in ranked]
    assert share == sorted(share, reverse=True) and share[0] > share[-1]
    top = catalog[ranked[0].item_id]
    assert {"argan", "oil", "conditioner"} <= set(top.title.casefold().split())
    assert share[0] == pytest.approx(1.0)
    # the same ranker without the shopper's words: the signal is silent
    silent = FusedRanker(catalog, RankerWeights(words=1.0)).rank(cands(catalog, ids))
    assert all(r.contributions["words"] == 0 for r in silent)
    # a word found only in an item's description or reviews earns BODY_WORD_CREDIT
    cleansers = ("Beauty", "Cleansers")
    small = Catalog(
        [
            Item("a", "Gel cleanser", "Acme", cleansers, reviews=("great for oily skin",)),
            Item("b", "Oily skin gel cleanser", "Acme", cleansers),
            Item("c", "Cream cleanser", "Acme", cleansers),
        ]
    )
    ranked = FusedRanker(small, RankerWeights(words=1.0)).rank(
        cands(small, ["a", "b", "c"]), query="oily gel"
    )
    got = {r.item_id: r.contributions["words"] for r in ranked}
    assert got == pytest.approx({"b": 1.0, "a": (1.0 + BODY_WORD_CREDIT) / 2, "c": 0.0})


def test_words_signal_reads_no_title_words_in_a_catalog_of_works():
    # Movie titles are names: "One Fine Day" is no answer to "I'm fine"; genres still count.
    movies = Catalog(
        [
            Item("m1", "One Fine Day (1996)", categories=("Movies", "Comedy")),
            Item("m2", "Groundhog Day (1993)", categories=("Movies", "Comedy", "Romance")),
            Item("m3", "Heat (1995)", categories=("Movies", "Crime")),
        ]
    )
    assert not movies.has_brands
    ranked = FusedRanker(movies, RankerWeights(words=1.0)).rank(
        cands(movies, movies.ids), query="fine romance"
    )
    got = {r.item_id: r.contributions["words"] for r in ranked}
    assert got == pytest.approx({"m1": 0.0, "m2": 0.5, "m3": 0.0})


def test_a_film_mostly_of_other_genres_fits_a_mood_less():
    # "date night" -> Romance or Comedy: a romantic comedy fits fully, Star Wars (also filed under
    # Romance) half and a little, a thriller not at all; an item without a genre list fits or not.
    movies = Catalog(
        [
            Item("m1", "Sleepless in Seattle (1993)", categories=("Movies", "Comedy"),
                 attributes={"genres": ["Comedy", "Romance"]}),
            Item("m2", "Star Wars (1977)", categories=("Movies", "Action"),
                 attributes={"genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"]}),
            Item("m3", "Heat (1995)", categories=("Movies", "Thriller"), attributes={"genres": ["Thriller"]}),
            Item("m4", "Clueless (1995)", categories=("Movies", "Comedy")),
        ]
    )  # fmt: skip
    ranked = FusedRanker(movies, RankerWeights(preference=1.0)).rank(
        cands(movies, movies.ids), soft_categories=[("Movies", "Romance"), ("Movies", "Comedy")]
    )
    got = {r.item_id: r.contributions["preference"] for r in ranked}
    assert got == pytest.approx({"m1": 1.0, "m2": 0.5 + 0.5 / 5, "m3": 0.0, "m4": 1.0})


def test_a_stand_in_title_earns_no_text_relevance():
    """An item the source lists without a name carries "Untitled item <id> (<leaf>)", which echoes
    the category a shopper names; retrieved first, it still ranks below a named item of the kind."""
    leaf = ("Beauty", "Makeup", "Nails", "Nail Polish")
    small = Catalog(
        [
            Item("9178", placeholder_title("9178", leaf), None, leaf),
            Item("1", "Essie Nail Lacquer, Ballet Slippers", "Essie", leaf),
            Item("2", "OPI Nail Lacquer, Big Apple Red", "OPI", leaf),
        ]
    )
    ranked = FusedRanker(small, RankerWeights()).rank(cands(small, ["9178", "1", "2"]), query="nail polish")
    got = {r.item_id: r.contributions["relevance"] for r in ranked}
    assert ranked[0].item_id == "1" and got["9178"] == 0.0 and got["1"] > 0

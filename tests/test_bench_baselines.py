"""The bench's no-ML baselines on a scripted dialogue equal lists worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baselines import BASELINES, BaselineRequest, Baselines, content_words, popularity_counts
from retrieval.data.schema import Catalog, Interactions, Item
from retrieval.filters import Constraints

NAIL = ("Beauty", "Makeup", "Nails", "Nail Polish")
LIPS = ("Beauty", "Makeup", "Lips", "Lipstick")
CATALOG = Catalog(
    [
        Item("p1", "Glossy Red Nail Lacquer", "OPI", NAIL, 9.0),
        Item("p2", "Matte Nude Nail Polish", "Essie", NAIL, 8.0),
        Item("p3", "Quick Dry Top Coat Nail Polish", "Sally Hansen", NAIL, 5.0),
        Item("p4", "Long Wear Red Lipstick", "Revlon", LIPS, 7.0),
        Item("p5", "Glitter Nail Polish Pink", "OPI", NAIL, 12.0),
        Item("p6", "Matte Lipstick Nude", "Maybelline", LIPS, 6.0),
        Item("p7", "Strengthener Nail Polish", "Essie", NAIL, 30.0),
    ]
)
# Events per item: p4 5, p1 4, p2 3, p5 3, p6 2, p3 1, p7 0 (p2 before p5 on the tie: catalog order).
SEQS = {
    "u1": ["p4", "p1", "p2", "p5", "p6"],
    "u2": ["p4", "p1", "p2", "p5", "p6"],
    "u3": ["p4", "p1", "p2", "p5", "p3"],
    "u4": ["p4", "p1", "p4"],
}


@pytest.fixture(scope="module")
def baselines() -> Baselines:
    pop = popularity_counts(Interactions.from_sequences(SEQS))
    assert pop == {"p4": 5, "p1": 4, "p2": 3, "p5": 3, "p6": 2, "p3": 1}
    return Baselines(CATALOG, pop, seed=3)


def test_filter_popularity_on_a_scripted_dialogue(baselines: Baselines) -> None:
    name = "filter+popularity"
    # Turn 1: "I'm looking for nail polish." -> stated category; history [p2].
    t1 = BaselineRequest("u9", ["I'm looking for nail polish."], Constraints(categories=(NAIL,)), ["p2"], k=2)
    assert baselines.recommend(name, t1) == ["p1", "p5"]
    # Turn 2: "Not these. Under about $10." -> p1, p5 shown; price <= 10: p3 (5.0) is all that is left.
    t2 = BaselineRequest(
        "u9",
        [*t1.utterances, "Not these. Under about $10."],
        Constraints(categories=(NAIL,), price_max=10.0),
        ["p2"],
        ["p1", "p5"],
        k=2,
    )
    assert baselines.recommend(name, t2) == ["p3"]
    # Turn 3: brand stated, nothing shown that matches: an empty list, never an unfiltered one.
    t3 = BaselineRequest("u9", ["x"], Constraints(categories=(NAIL,), brands_in=("Revlon",)), k=3)
    assert baselines.recommend(name, t3) == []


def test_filter_random_uses_the_same_filter_in_a_seeded_order(baselines: Baselines) -> None:
    req = BaselineRequest("u9", ["nail polish"], Constraints(categories=(NAIL,)), ["p2"], k=5)
    got = baselines.recommend("filter+random", req)
    perm = np.random.default_rng(__import__("zlib").crc32(b"3:u9")).permutation(len(CATALOG))
    expected = [CATALOG.at(int(r)).item_id for r in perm if CATALOG.at(int(r)).item_id in {"p1", "p3", "p5", "p7"}]
    assert got == expected and sorted(got) == ["p1", "p3", "p5", "p7"]
    assert baselines.recommend("filter+random", req) == got  # deterministic
    other = Baselines(CATALOG, baselines.popularity, seed=4)
    orders = {tuple(other.recommend("filter+random", BaselineRequest(u, ["a"], Constraints(), k=7))) for u in "abcdef"}
    assert len(orders) > 1  # the order depends on the shopper


def test_keyword_popularity_on_a_scripted_dialogue(baselines: Baselines) -> None:
    name = "keyword+popularity"
    assert content_words("I'm looking for a matte nail polish, not too pricey, under $10.") == [
        "matte",
        "nail",
        "polish",
    ]
    # Title + category words. "matte nail polish": overlap p2 3; p1 (nail + category "polish"), p3, p5,
    # p7 2; p6 1 (matte); p4 0. Ties by popularity: p1 (4) > p5 (3) > p3 (1) > p7 (0).
    t1 = BaselineRequest("u9", ["I'm looking for a matte nail polish."], Constraints(), k=4)
    assert baselines.recommend(name, t1) == ["p2", "p1", "p5", "p3"]
    # Turn 2 adds "red": p1 now has nail+polish+red = 3; history p5 dropped, shown p2, p3 dropped.
    t2 = BaselineRequest(
        "u9", [*t1.utterances, "Not these, something red."], Constraints(), ["p5"], ["p2", "p3"], k=3
    )
    # overlaps: p1 3, p7 2 (nail, polish); then p4 (red, 1) and p6 (matte, 1): p4 more popular.
    assert baselines.recommend(name, t2) == ["p1", "p7", "p4"]
    # Category names count too: "lips" is in no title, only in the Lips category of p4 and p6.
    t3 = BaselineRequest("u9", ["something for the lips"], Constraints(), k=2)
    assert baselines.recommend(name, t3) == ["p4", "p6"]


def test_unknown_baseline_is_refused(baselines: Baselines) -> None:
    assert BASELINES == ("filter+popularity", "filter+random", "keyword+popularity")
    with pytest.raises(ValueError):
        baselines.recommend("bm25", BaselineRequest("u", ["x"], Constraints()))

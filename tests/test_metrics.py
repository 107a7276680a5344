"""Metric functions against hand-computed values, and the full-ranking protocol rules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from retrieval.metrics import (
    METRICS,
    ListContext,
    coverage_at_k,
    evaluate_full_ranking,
    intra_list_diversity,
    mrr,
    ndcg_at_k,
    novelty,
    parse_metric,
    popularity_bias,
    recall_at_k,
    target_ranks,
)
from retrieval.scorers.base import Scorer
from retrieval.topk import top_k


def test_ndcg_recall_mrr_hand_computed() -> None:
    ranks = np.array([0, 2, 9, 10])  # 0-based: first, third, tenth, eleventh
    assert ndcg_at_k(ranks, 10).tolist() == pytest.approx([1.0, 1 / np.log2(4), 1 / np.log2(11), 0.0])
    assert ndcg_at_k(np.array([2]), 10)[0] == pytest.approx(0.5)  # rank 3 -> 1/log2(4)
    assert recall_at_k(ranks, 10).tolist() == [1, 1, 1, 0]
    assert recall_at_k(ranks, 5).tolist() == [1, 1, 0, 0]
    assert mrr(ranks).tolist() == pytest.approx([1.0, 1 / 3, 0.1, 1 / 11])
    assert mrr(ranks, 5).tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])


def test_target_ranks_ties_are_pessimistic() -> None:
    scores = np.array([[0.5, 0.5, 0.5, 0.9], [1.0, 0.0, 0.0, 0.0]])
    # row 0: target item 1 ties with items 0 and 2, one item is strictly better -> rank 3
    # row 1: target item 0 strictly best -> rank 0
    assert target_ranks(scores, np.array([1, 0])).tolist() == [3, 0]
    const = np.zeros((1, 50))
    assert target_ranks(const, np.array([7]))[0] == 49  # a constant scorer gets no credit
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(np.array([[np.nan, 1.0]]), np.array([0]))


def test_top_k_order_and_tie_rule() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0]])
    assert top_k(scores, 3)[0].tolist() == [[1, 3, 2]]  # tie 0.9: lower row index first


def test_list_metrics_hand_computed() -> None:
    pop = np.array([9.0, 3.0, 1.0, 0.0])
    vecs = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    ctx = ListContext(n_items=4, popularity=pop, n_users=9, item_vectors=vecs)
    topk = np.array([[0, 1], [0, 2]])
    assert coverage_at_k(topk, ctx) == pytest.approx(3 / 4)
    # list 1: identical vectors -> ILD 0; list 2: orthogonal -> ILD 1; mean 0.5
    assert intra_list_diversity(topk, ctx) == pytest.approx(0.5)
    # self-information with p = (count+1)/(n_users+1)
    expected = np.mean([-np.log2(10 / 10), -np.log2(4 / 10), -np.log2(10 / 10), -np.log2(2 / 10)])
    assert novelty(topk, ctx) == pytest.approx(expected)
    # popularity percentiles: item0 = 1, item1 = 2/3, item2 = 1/3
    assert popularity_bias(topk, ctx) == pytest.approx(np.mean([1, 2 / 3, 1, 1 / 3]))
    assert np.isnan(intra_list_diversity(topk, ListContext(4, pop, 9)))


def test_parse_metric_and_registry() -> None:
    metric, k = parse_metric("NDCG@10")
    assert metric is METRICS["ndcg"] and k == 10
    assert parse_metric("mrr")[1] is None
    with pytest.raises(KeyError, match="unknown metric"):
        parse_metric("auc@5")
    with pytest.raises(ValueError, match="cut-off"):
        parse_metric("ndcg@ten")
    with pytest.raises(ValueError, match="needs a cut-off"):
        parse_metric("coverage")


class _FixedScorer(Scorer):
    """Returns the same known scores for every history (test double with real evaluation code)."""

    name = "fixed"

    def __init__(self, scores: Sequence[float]):
        super().__init__()
        self.scores = np.asarray(scores, dtype=float)

    def _fit(self, histories, n_items):  # pragma: no cover - not trained
        pass

    def full_sort(self, histories):
        return np.tile(self.scores, (len(histories), 1))


def test_evaluate_full_ranking_masks_history_when_asked() -> None:
    scorer = _FixedScorer([5.0, 4.0, 3.0, 2.0, 1.0])
    ctx = ListContext(5, np.ones(5), 3)
    pairs = [([0, 1], 2), ([], 2), ([2], 2)]  # last: target repeats a history item
    masked = evaluate_full_ranking(
        scorer, pairs, ctx, ("recall@1", "ndcg@5", "coverage@2"), mask_history=True
    )
    assert masked.ranks.tolist() == [0, 2, 4]  # history removed; a masked target ranks last
    assert masked.metrics["recall@1"] == pytest.approx(1 / 3)
    assert masked.metrics["ndcg@5"] == pytest.approx((1 + 0.5 + 1 / np.log2(6)) / 3)
    assert masked.metrics["coverage@2"] == pytest.approx(4 / 5)  # {2,3} ∪ {0,1} ∪ {0,1}
    unmasked = evaluate_full_ranking(scorer, pairs, ctx, ("recall@1",), mask_history=False)
    assert unmasked.ranks.tolist() == [2, 2, 2]
    assert masked.protocol["mask_history"] is True and unmasked.protocol["mask_history"] is False
    with pytest.raises(ValueError, match="no evaluation pairs"):
        evaluate_full_ranking(scorer, [], ctx)

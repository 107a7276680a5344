"""retrieval.topk.top_k: the one top-k with its tie rule."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.topk import top_k


def test_best_first_with_scores():
    idx, vals = top_k(np.array([0.1, 0.9, 0.5, 0.7]), 3)
    assert idx.tolist() == [1, 3, 2]
    assert vals.tolist() == pytest.approx([0.9, 0.7, 0.5])


def test_ties_lower_index_first():
    idx, _ = top_k(np.array([1.0, 2.0, 1.0, 2.0, 1.0]), 5)
    assert idx.tolist() == [1, 3, 0, 2, 4]
    idx, _ = top_k(np.array([[3.0, 3.0, 3.0, 5.0]]), 2)
    assert idx[0, 0] == 3 and idx[0, 1] in (0, 1, 2)  # which tied 3.0 makes the cut: argpartition's pick
    rows, _ = top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 3)
    assert rows.tolist() == [[1, 3, 2]]


def test_filter_items_never_returned():
    idx, vals = top_k(np.array([5.0, 4.0, 3.0, 2.0]), 2, filter_items=[0, 2])
    assert idx.tolist() == [1, 3] and vals.tolist() == [4.0, 2.0]
    idx, _ = top_k(np.array([1.0, 1.0]), 5, filter_items=[0, 1])
    assert idx.tolist() == []


def test_k_larger_than_n_and_empty():
    idx, _ = top_k(np.array([0.2, 0.3]), 10)
    assert idx.tolist() == [1, 0]
    idx, vals = top_k(np.array([]), 3)
    assert idx.size == 0 and vals.size == 0
    idx, _ = top_k(np.array([1.0, 2.0]), 0)
    assert idx.size == 0
    assert top_k(np.zeros((2, 3)), 0)[0].shape == (2, 0)


def test_batch_matches_rows_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(5, 30)).astype(float)  # many ties
    batch, _ = top_k(scores, 7)
    for r in range(5):
        row, vals = top_k(scores[r], 7)
        assert batch[r].tolist() == row.tolist()
        assert all(vals[i] > vals[i + 1] or row[i] < row[i + 1] for i in range(6))
    with pytest.raises(ValueError):
        top_k(np.zeros((2, 2)), 1, filter_items=[0])
    with pytest.raises(ValueError):
        top_k(np.zeros((1, 1, 1)), 1)

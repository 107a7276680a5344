"""ItemKNN: cosine item-item similarity over co-occurrence, with shrinkage and top-k pruning.

Cheap, transparent ("bought with X") and strong on co-purchase-heavy Amazon
data; the recency decay turns it into a session-aware scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from retrieval.scorers._matrix import history_weights, interaction_matrix
from retrieval.scorers.base import NotFittedError, Scorer


class ItemKNNScorer(Scorer):
    """sim(i, j) = |U_i ∩ U_j| / (sqrt|U_i| sqrt|U_j| + shrink), keep ``k`` neighbours per item."""

    name = "itemknn"

    def __init__(
        self, k: int = 100, shrink: float = 10.0, recency_decay: float = 1.0, max_len: int | None = None
    ):
        super().__init__()
        if k < 1 or shrink < 0 or not 0 < recency_decay <= 1:
            raise ValueError(
                f"need k >= 1, shrink >= 0, 0 < recency_decay <= 1; got {k}, {shrink}, {recency_decay}"
            )
        self.k = k
        self.shrink = shrink
        self.recency_decay = recency_decay
        self.max_len = max_len
        self.sim: sp.csr_matrix | None = None

    def get_params(self) -> dict:
        return {
            "k": self.k,
            "shrink": self.shrink,
            "recency_decay": self.recency_decay,
            "max_len": self.max_len,
        }

    def _fit(self, histories: list[list[int]], n_items: int) -> None:
        x = interaction_matrix(histories, n_items)
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0.0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
        co = co.tocoo()
        data = co.data / (norms[co.row] * norms[co.col] + self.shrink)
        sim = sp.csr_matrix((data, (co.row, co.col)), shape=(n_items, n_items))
        self.sim = _top_k_rows(sim, self.k)

    def full_sort(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        if self.sim is None:
            raise NotFittedError("ItemKNNScorer is not fitted; call fit() first")
        w = history_weights(histories, self.sim.shape[0], self.recency_decay, self.max_len)
        return np.asarray((w @ self.sim).todense(), dtype=np.float32)

    def _save_state(self, path: Path) -> None:
        assert self.sim is not None
        sp.save_npz(path / "sim.npz", self.sim)

    def _load_state(self, path: Path) -> None:
        self.sim = sp.load_npz(path / "sim.npz").tocsr()


def _top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (ties broken by column index, deterministic)."""
    m = m.tocsr()
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        c, v = m.indices[lo:hi], m.data[lo:hi]
        if len(v) > k:
            keep = np.lexsort((c, -v))[:k]
            c, v = c[keep], v[keep]
        rows.append(np.full(len(c), r))
        cols.append(c)
        vals.append(v)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape
    )

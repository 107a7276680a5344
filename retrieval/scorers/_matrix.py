"""Shared helpers for the item-item scorers: interaction matrix and history weighting."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def interaction_matrix(histories: Sequence[Sequence[int]], n_items: int) -> sp.csr_matrix:
    """Binary users x items matrix (a repeat purchase counts once)."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.fromiter((i for h in histories for i in h), dtype=np.int64, count=len(rows))
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(histories), n_items))
    x.data[:] = 1.0  # duplicates were summed
    return x


def history_weights(
    histories: Sequence[Sequence[int]], n_items: int, recency_decay: float, max_len: int | None = None
) -> sp.csr_matrix:
    """Rows of per-item weights: the most recent item weighs 1, the one before ``decay``, ...

    ``recency_decay=1`` is the classic bag-of-items profile. Sequential data reward
    decay < 1: the next purchase depends most on the last one.
    """
    data, rows, cols = [], [], []
    for u, h in enumerate(histories):
        h = list(h)[-max_len:] if max_len else list(h)
        n = len(h)
        for t, item in enumerate(h):
            rows.append(u)
            cols.append(item)
            data.append(recency_decay ** (n - 1 - t))
    w = sp.csr_matrix(
        (
            np.asarray(data, dtype=np.float32),
            (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
        ),
        shape=(len(histories), n_items),
    )
    w.sum_duplicates()
    return w

"""The k best scores, with one tie rule for every ranked list in the project."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def top_k(
    scores: np.ndarray, k: int, *, filter_items: Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the ``k`` highest ``scores``, best first; equal scores: lower index first.

    ``scores`` is one row (1-D) or a batch of rows (2-D, ranked row by row). ``filter_items``
    (1-D only) are indices never returned; fewer than ``k`` remain -> all of them, ranked. When
    equal scores straddle the k-th place, which of them make the cut is ``np.argpartition``'s
    (deterministic) choice, as it was in every copy this replaced: the recorded bench numbers
    depend on it.
    """
    s = np.asarray(scores)
    if s.ndim not in (1, 2):
        raise ValueError(f"scores must be 1-D or 2-D, got shape {s.shape}")
    if filter_items is not None:
        if s.ndim != 1:
            raise ValueError("filter_items applies to 1-D scores only")
        keep = np.ones(s.shape[0], dtype=bool)
        keep[np.fromiter(filter_items, dtype=np.int64)] = False
        pool = np.flatnonzero(keep)
        idx, vals = top_k(s[pool], k)
        return pool[idx], vals
    n = s.shape[-1]
    k = max(0, min(int(k), n))
    if k == 0:
        shape = (*s.shape[:-1], 0)
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=s.dtype)
    if k < n:
        part = np.argpartition(-s, k - 1, axis=-1)[..., :k]
    else:
        part = np.broadcast_to(np.arange(n), s.shape).copy()
    vals = np.take_along_axis(s, part, axis=-1)
    order = np.lexsort((part, -vals), axis=-1)
    idx = np.take_along_axis(part, order, axis=-1)
    return idx, np.take_along_axis(s, idx, axis=-1)

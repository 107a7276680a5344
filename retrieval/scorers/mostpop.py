"""MostPop: the non-personalised floor every other scorer must beat."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.scorers.base import NotFittedError, Scorer


class MostPopScorer(Scorer):
    """Scores = log(1 + training interaction count); identical for every user."""

    name = "mostpop"

    def __init__(self) -> None:
        super().__init__()
        self.popularity: np.ndarray | None = None

    def _fit(self, histories: list[list[int]], n_items: int) -> None:
        counts = np.zeros(n_items, dtype=np.float64)
        for h in histories:
            np.add.at(counts, np.asarray(h, dtype=np.int64), 1.0)
        self.popularity = np.log1p(counts).astype(np.float32)

    def full_sort(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        if self.popularity is None:
            raise NotFittedError("MostPopScorer is not fitted; call fit() first")
        return np.tile(self.popularity, (len(histories), 1))

    def _save_state(self, path: Path) -> None:
        assert self.popularity is not None
        np.save(path / "popularity.npy", self.popularity)

    def _load_state(self, path: Path) -> None:
        self.popularity = np.load(path / "popularity.npy")

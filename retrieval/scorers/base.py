"""The collaborative-scorer contract (RecBole's fit/score/full_sort, implicit's recommend).

Every scorer works in one item index space: the catalog's row order. The
public methods take string ids; the batched ``full_sort`` used by benchmarks
works on row indices for speed.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from retrieval.data.schema import Catalog, Interactions
from retrieval.topk import top_k

# A user is either a known user id (its training history is used) or an explicit
# history of item ids in chronological order (a new user scored from the session).
UserOrHistory = str | Sequence[str]


class NotFittedError(RuntimeError):
    """A scorer was used before ``fit``."""


class Scorer(ABC):
    """Scores every catalog item for a user or a session history.

    Subclasses implement ``_fit`` and ``full_sort`` (batched scores over all
    items for histories given as row indices) and the (de)serialisation hooks.
    Higher score = better. Scores are comparable within one call only.
    """

    name: ClassVar[str] = "base"

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self.user_histories: dict[str, list[int]] = {}
        # (history rows, target row) pairs for early stopping / weight tuning; see ``fit``.
        self.validation: list[tuple[list[int], int]] | None = None

    # --- training -------------------------------------------------------------
    def fit(
        self,
        interactions: Interactions,
        catalog: Catalog,
        validation: Sequence[tuple[Sequence[str], str]] | None = None,
    ) -> Scorer:
        """Learn from ``interactions`` (training part only: the caller splits).

        ``validation`` (optional): ``(history item ids, held-out item id)`` pairs that
        scorers with early stopping or tuned weights select on; never the test part.
        """
        self.catalog = catalog
        seqs = interactions.sequences()
        self.user_histories = {
            u: [catalog.index_of(i) for i in items if i in catalog] for u, items in seqs.items()
        }
        self.validation = None
        if validation is not None:
            self.validation = [
                ([catalog.index_of(i) for i in hist if i in catalog], catalog.index_of(target))
                for hist, target in validation
                if target in catalog
            ]
        self._fit(list(self.user_histories.values()), len(catalog))
        return self

    @abstractmethod
    def _fit(self, histories: list[list[int]], n_items: int) -> None: ...

    # --- scoring ----------------------------------------------------------------
    @abstractmethod
    def full_sort(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores, shape (len(histories), n_items), for chronological row-index histories."""

    def _history_rows(self, user_or_history: UserOrHistory) -> list[int]:
        if self.catalog is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        if isinstance(user_or_history, str):
            return list(self.user_histories.get(user_or_history, []))
        return [self.catalog.index_of(i) for i in user_or_history if i in self.catalog]

    def score(self, user_or_history: UserOrHistory, item_ids: Sequence[str] | None = None) -> np.ndarray:
        """Scores for ``item_ids`` (default: every catalog item, in catalog order)."""
        scores = self.full_sort([self._history_rows(user_or_history)])[0]
        if item_ids is None:
            return scores
        assert self.catalog is not None
        return scores[[self.catalog.index_of(i) for i in item_ids]]

    def recommend(
        self,
        user_or_history: UserOrHistory,
        n: int = 10,
        filter_items: Sequence[str] | None = None,
        filter_already_seen: bool = True,
        candidates: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-``n`` (item_id, score), excluding ``filter_items`` and by default the history."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        rows = self._history_rows(user_or_history)
        scores = self.full_sort([rows])[0].astype(float).copy()
        assert self.catalog is not None
        allowed = np.ones(len(scores), dtype=bool)
        if candidates is not None:
            allowed[:] = False
            allowed[[self.catalog.index_of(i) for i in candidates if i in self.catalog]] = True
        if filter_already_seen:
            allowed[rows] = False
        if filter_items:
            allowed[[self.catalog.index_of(i) for i in filter_items if i in self.catalog]] = False
        top, vals = top_k(scores, n, filter_items=np.flatnonzero(~allowed))
        return [(self.catalog.at(int(r)).item_id, float(v)) for r, v in zip(top, vals, strict=True)]

    # --- persistence --------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted state into directory ``path`` (created)."""
        if self.catalog is None:
            raise NotFittedError("cannot save an unfitted scorer")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"scorer": self.name, "params": self.get_params(), "item_ids": self.catalog.ids}
        (path / "scorer.json").write_text(json.dumps(meta))
        (path / "histories.json").write_text(json.dumps(self.user_histories))
        self._save_state(path)

    @classmethod
    def load(cls, path: str | Path, catalog: Catalog) -> Scorer:
        path = Path(path)
        meta = json.loads((path / "scorer.json").read_text())
        if meta["item_ids"] != catalog.ids:
            raise ValueError(f"scorer at {path} was trained on a different catalog; refit it")
        if cls is Scorer:
            cls = SCORERS[meta["scorer"]]
        obj = cls(**meta["params"])
        obj.catalog = catalog
        obj.user_histories = json.loads((path / "histories.json").read_text())
        obj._load_state(path)
        return obj

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, so ``load`` can rebuild the object."""
        return {}

    def _save_state(self, path: Path) -> None:  # noqa: B027 - optional hook
        pass

    def _load_state(self, path: Path) -> None:  # noqa: B027 - optional hook
        pass


# Name -> class, filled by the package (``retrieval/scorers/__init__.py``) with every scorer it
# ships; it lives here because ``Scorer.load`` and the fused scorer look names up in it.
SCORERS: dict[str, type[Scorer]] = {}

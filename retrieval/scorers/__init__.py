"""Collaborative and sequential scorers behind one contract (see ``base.Scorer``)."""

from __future__ import annotations

from retrieval.scorers.base import SCORERS, NotFittedError, Scorer, UserOrHistory
from retrieval.scorers.ease import EASEScorer
from retrieval.scorers.fused import FusedScorer
from retrieval.scorers.itemknn import ItemKNNScorer
from retrieval.scorers.mostpop import MostPopScorer
from retrieval.scorers.sasrec import SASRecScorer

# Every scorer registers under its ``name``.
SCORERS.update(
    {cls.name: cls for cls in (MostPopScorer, ItemKNNScorer, EASEScorer, SASRecScorer, FusedScorer)}
)

__all__ = [
    "SCORERS",
    "EASEScorer",
    "FusedScorer",
    "ItemKNNScorer",
    "MostPopScorer",
    "NotFittedError",
    "SASRecScorer",
    "Scorer",
    "UserOrHistory",
]

"""Collaborative and sequential scorers behind one contract (see ``base.Scorer``)."""

from __future__ import annotations

from retrieval.scorers.base import NotFittedError, Scorer, UserOrHistory

# Name -> class; filled in by each scorer module as it is added.
SCORERS: dict[str, type[Scorer]] = {}

__all__ = ["SCORERS", "NotFittedError", "Scorer", "UserOrHistory"]

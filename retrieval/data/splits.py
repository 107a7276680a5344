"""Leakage-safe train/valid/test splits over an ``Interactions`` log.

Event order is ``Interactions.chronological()``: time, then the order the events
were given in — never the item id, so ties cannot favour low or high ids. Both
splits are deterministic (no randomness at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from retrieval.data.schema import DataValidationError, Interactions


@dataclass
class Split:
    """Three disjoint parts of one log; every event of the log is in exactly one part."""

    train: Interactions
    valid: Interactions
    test: Interactions

    def histories(self, part: Literal["valid", "test"]) -> list[tuple[str, list[str], str]]:
        """``(user, history, target)`` for every event of ``part``.

        Rows follow ``part.chronological()`` (grouped by user id, then time / given order).

        The history is everything the model may see: train items for ``"valid"``,
        train + valid items for ``"test"``, in chronological order. A target item the
        user also bought earlier stays in the history (a genuine re-buy, not leakage).
        With a temporal split a user can have several targets (each gets the same
        history: the events before the cutoff) or an empty history (cold start).
        """
        if part == "valid":
            seen, held = [self.train], self.valid
        elif part == "test":
            seen, held = [self.train, self.valid], self.test
        else:
            raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
        frames = [s.frame for s in seen]
        history = Interactions(pd.concat(frames, ignore_index=True)) if frames else None
        if history is not None:  # ordered as the source log was (see ``Interactions.subset``)
            history.timed = history.timed and all(s.timed for s in seen if len(s))
        seqs = history.sequences() if history is not None else {}
        out = []
        for user, item in held.chronological()[["user_id", "item_id"]].itertuples(index=False):
            out.append((user, list(seqs.get(user, [])), item))
        return out

    def summary(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "test_users": self.test.frame["user_id"].nunique(),
        }


def leave_one_out(interactions: Interactions, min_history: int = 1) -> Split:
    """Per user: last event = test, second-last = valid, the rest = train.

    A user needs ``min_history + 2`` events to be evaluated; users with fewer (with
    the default, fewer than 3) stay entirely in train, as in the standard protocol
    (they still teach the model, they are just never a target).
    """
    if min_history < 0:
        raise ValueError(f"min_history must be >= 0, got {min_history}")
    ordered = interactions.chronological()
    users = ordered["user_id"]
    position = users.groupby(users, sort=False).cumcount().to_numpy()
    size = users.map(users.value_counts()).to_numpy()
    evaluated = size >= min_history + 2
    is_test = evaluated & (position == size - 1)
    is_valid = evaluated & (position == size - 2)
    # Back to the log's row order so each part keeps the original ``order`` values.
    test = pd.Series(is_test, index=ordered.index).reindex(interactions.frame.index).to_numpy()
    valid = pd.Series(is_valid, index=ordered.index).reindex(interactions.frame.index).to_numpy()
    return Split(
        train=interactions.subset(~test & ~valid),
        valid=interactions.subset(valid),
        test=interactions.subset(test),
    )


def _to_seconds(value: float | int | str | datetime | pd.Timestamp) -> float:
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


def temporal_split(
    interactions: Interactions,
    valid_cutoff: float | int | str | datetime | pd.Timestamp,
    test_cutoff: float | int | str | datetime | pd.Timestamp,
) -> Split:
    """Global time cutoffs: ``t < valid_cutoff`` train, ``valid_cutoff <= t < test_cutoff``
    valid, ``t >= test_cutoff`` test. Cutoffs are unix seconds or dates (naive = UTC).

    Unlike leave-one-out, no future event of any user leaks into training.
    """
    if not interactions.timed:
        raise DataValidationError(
            "temporal_split needs a timestamp on every event; this log has "
            + ("none" if interactions.frame["timestamp"].isna().all() else "some missing")
            + " (use leave_one_out, which follows the given order)"
        )
    lo, hi = _to_seconds(valid_cutoff), _to_seconds(test_cutoff)
    if lo > hi:
        raise ValueError(f"valid_cutoff ({valid_cutoff}) must not be after test_cutoff ({test_cutoff})")
    t = interactions.frame["timestamp"].to_numpy()
    return Split(
        train=interactions.subset(t < lo),
        valid=interactions.subset((t >= lo) & (t < hi)),
        test=interactions.subset(t >= hi),
    )

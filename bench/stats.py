"""Paired statistics for comparing two systems on the same shoppers / cases (pure functions).

* ``paired_bootstrap``: mean of each system, their difference (a - b) and a percentile
  bootstrap confidence interval of the difference, resampling *cases* (the same resampled
  cases for both systems, so the pairing is kept).
* ``mcnemar``: McNemar's test on paired binary outcomes (hit / miss). ``b`` = cases only ``a``
  hit, ``c`` = cases only ``b`` hit. Exact two-sided binomial test when ``b + c`` is small
  (< ``EXACT_BELOW``), else the chi-square statistic with continuity correction, 1 d.o.f.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

EXACT_BELOW = 25  # b + c below this: exact binomial test (the chi-square approximation is poor)


@dataclass(frozen=True)
class PairedDiff:
    """``diff`` = ``mean_a - mean_b``; [``lo``, ``hi``] its bootstrap confidence interval over ``n`` cases."""

    mean_a: float
    mean_b: float
    diff: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class McNemar:
    """``b``: a hit and b missed; ``c``: b hit and a missed; ``p_value`` two-sided."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str = "exact"  # "exact" (binomial) or "chi2-cc" (chi-square, continuity corrected)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> PairedDiff:
    """Percentile bootstrap CI of ``mean(a) - mean(b)`` over paired cases (``a[i]``, ``b[i]``)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError("no cases to compare")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    d = x - y
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return PairedDiff(float(x.mean()), float(y.mean()), float(d.mean()), float(lo), float(hi), len(d))


def mcnemar(hits_a: Sequence[bool], hits_b: Sequence[bool]) -> McNemar:
    """McNemar's test on paired hits (two-sided); identical systems give ``p_value`` 1."""
    from scipy import stats

    x = np.asarray(hits_a, dtype=bool)
    y = np.asarray(hits_b, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"hits_a and hits_b must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    b = int(np.sum(x & ~y))
    c = int(np.sum(~x & y))
    n = b + c
    if n == 0:
        return McNemar(0, 0, 0.0, 1.0, "exact")
    if n < EXACT_BELOW:
        p = float(stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue)
        return McNemar(b, c, float(min(b, c)), min(1.0, p), "exact")
    statistic = (abs(b - c) - 1.0) ** 2 / n
    return McNemar(b, c, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi2-cc")


def bootstrap_mean(
    values: Sequence[float], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lo, hi): the percentile bootstrap CI of one system's mean over cases."""
    d = paired_bootstrap(values, [0.0] * len(values), n_boot=n_boot, seed=seed, confidence=confidence)
    return d.mean_a, d.lo, d.hi

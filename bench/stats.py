"""Paired comparisons of two systems on the same cases: bootstrap CI of a mean difference, McNemar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDiff:
    """Means of ``a`` and ``b`` over the same cases, ``diff = mean_a - mean_b`` and its bootstrap CI."""

    mean_a: float
    mean_b: float
    diff: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class McNemar:
    """``b``: cases only ``a`` hit; ``c``: cases only ``b`` hit; continuity-corrected chi-square and
    the exact two-sided binomial p-value on the discordant pairs."""

    b: int
    c: int
    statistic: float
    p_value: float


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> PairedDiff:
    """Percentile bootstrap over cases (resampling pairs) of ``mean(a) - mean(b)``."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(x)
    if n == 0:
        raise ValueError("no cases to compare")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return PairedDiff(float(x.mean()), float(y.mean()), float(d.mean()), float(lo), float(hi), n)


def mcnemar(hits_a: Sequence[bool], hits_b: Sequence[bool]) -> McNemar:
    """McNemar's test on paired binary outcomes."""
    if len(hits_a) != len(hits_b):
        raise ValueError(f"hits_a and hits_b must be paired, got {len(hits_a)} and {len(hits_b)}")
    b = sum(1 for x, y in zip(hits_a, hits_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(hits_a, hits_b, strict=True) if y and not x)
    m = b + c
    if m == 0:
        return McNemar(0, 0, 0.0, 1.0)
    statistic = (abs(b - c) - 1) ** 2 / m
    tail = sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m
    return McNemar(b, c, float(statistic), min(1.0, 2 * tail))

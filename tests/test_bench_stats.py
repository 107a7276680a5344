"""bench.stats against answers known without the code: identical systems, a planted difference,
and McNemar tables computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import McNemar, PairedDiff, mcnemar, paired_bootstrap


def test_identical_systems_differ_by_zero_with_p_one() -> None:
    a = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    d = paired_bootstrap(a, a)
    assert isinstance(d, PairedDiff)
    assert d.diff == 0.0 and d.lo == 0.0 and d.hi == 0.0 and d.n == 10
    assert d.mean_a == d.mean_b == pytest.approx(0.6)
    m = mcnemar([bool(x) for x in a], [bool(x) for x in a])
    assert isinstance(m, McNemar) and m.b == m.c == 0 and m.p_value == 1.0


def test_ci_covers_a_planted_mean_difference() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0.0, 1.0, 400)
    a = base + 0.3 + rng.normal(0.0, 0.2, 400)  # true paired difference 0.3
    d = paired_bootstrap(a, base, n_boot=3000, seed=2)
    assert d.lo < 0.3 < d.hi
    assert d.hi - d.lo < 0.1  # pairing removes the shared noise: a tight interval
    assert d.diff == pytest.approx(float(np.mean(a - base)))
    # Same seed, same interval; the sign follows the order of the arguments.
    assert paired_bootstrap(a, base, n_boot=3000, seed=2) == d
    r = paired_bootstrap(base, a, n_boot=3000, seed=2)
    assert r.diff == pytest.approx(-d.diff) and r.hi < 0


def test_ci_coverage_is_near_nominal_over_many_synthetic_runs() -> None:
    """Hit indicators with a known 10-point gap: the 95% CI covers it in about 95% of runs."""
    covered = 0
    runs = 200
    for s in range(runs):
        rng = np.random.default_rng(100 + s)
        u = rng.random(150)
        a = u < 0.6
        b = u < 0.5  # paired: every b hit is an a hit; true difference exactly 0.1
        d = paired_bootstrap(a, b, n_boot=400, seed=s)
        covered += d.lo <= 0.1 <= d.hi
    assert 0.88 <= covered / runs <= 0.99


def test_mcnemar_exact_by_hand() -> None:
    # a hits alone 6 times, b alone once: two-sided exact p = 2 * P(X <= 1 | n=7, 1/2) = 2 * 8/128.
    a = [True] * 6 + [False] + [True] * 5 + [False] * 3
    b = [False] * 6 + [True] + [True] * 5 + [False] * 3
    m = mcnemar(a, b)
    assert (m.b, m.c, m.method) == (6, 1, "exact")
    assert m.p_value == pytest.approx(16 / 128)


def test_mcnemar_chi_square_by_hand() -> None:
    # b = 30, c = 10: statistic (|30 - 10| - 1)^2 / 40 = 9.025; p = P(chi2_1 > 9.025) = erfc(sqrt(9.025 / 2)).
    a = [True] * 30 + [False] * 10 + [True] * 50 + [False] * 20
    b = [False] * 30 + [True] * 10 + [True] * 50 + [False] * 20
    m = mcnemar(a, b)
    assert (m.b, m.c, m.method) == (30, 10, "chi2-cc")
    assert m.statistic == pytest.approx(9.025)
    assert m.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
    with pytest.raises(ValueError):
        paired_bootstrap([1], [1], confidence=1.0)
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_bootstrap_mean_brackets_the_mean() -> None:
    from bench.stats import bootstrap_mean

    m, lo, hi = bootstrap_mean([1, 0, 1, 1, 0, 1, 1, 1], n_boot=500)
    assert m == pytest.approx(0.75) and lo < 0.75 < hi and lo >= 0.0 and hi <= 1.0
    assert bootstrap_mean([1, 1, 1]) == (1.0, 1.0, 1.0)

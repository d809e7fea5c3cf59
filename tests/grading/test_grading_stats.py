"""The statistics helpers agree with the libraries they wrap and with the textbook results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from kefuqa.grading.stats import bootstrap_ci, did, holm, paired, proportion_ci, two_sample_diff


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(0)
    for _ in range(10):  # multipletests runs gc.collect() per call: keep this short
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        assert holm(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_wilson_interval():
    low, high = proportion_ci(0, 10, 0.95)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)


def test_did_error_is_welch():
    # HC2 with one trained dummy is the unequal-variance (Welch) standard error.
    rng = np.random.default_rng(1)
    t, c = rng.normal(1, 1, 7), rng.normal(0, 3, 12)
    res = did(t, c, confidence=0.95)
    se = np.sqrt(t.var(ddof=1) / 7 + c.var(ddof=1) / 12)
    assert res.estimate == pytest.approx(t.mean() - c.mean())
    crit = stats.t.ppf(0.975, 7 + 12 - 2)
    assert res.ci == pytest.approx((res.estimate - crit * se, res.estimate + crit * se))


def test_did_without_spread_has_no_interval():
    res = did(np.zeros(5), np.zeros(5), confidence=0.95)
    assert res.ci is None and res.p_value is None


def test_paired_matches_scipy():
    rng = np.random.default_rng(2)
    before = rng.normal(0.5, 0.1, 10)
    after = before + rng.normal(0.05, 0.05, 10)
    res = paired(before, after, confidence=0.95, resamples=2000, rng=rng)
    ref = stats.ttest_rel(after, before)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.t_ci == pytest.approx(tuple(ref.confidence_interval(0.95)))
    d = after - before
    assert res.d_z == pytest.approx(d.mean() / d.std(ddof=1))
    assert res.ci is not None and res.ci[0] < d.mean() < res.ci[1]


def test_bootstrap_degenerate_and_tiny_samples():
    rng = np.random.default_rng(3)
    const = np.ones(8)
    assert bootstrap_ci(
        [const], lambda x, axis: x.mean(axis), confidence=0.95, resamples=500, rng=rng
    ) == (1.0, 1.0)
    assert (
        bootstrap_ci(
            [np.ones(1)], lambda x, axis: x.mean(axis), confidence=0.95, resamples=500, rng=rng
        )
        is None
    )


def test_two_sample_diff_effect_sizes():
    rng = np.random.default_rng(4)
    before = np.r_[np.ones(10), np.zeros(10)]
    after = np.r_[np.ones(16), np.zeros(4)]
    res = two_sample_diff(before, after, proportion=True, confidence=0.95, resamples=2000, rng=rng)
    assert res.diff == pytest.approx(0.3)
    assert res.effect_size == pytest.approx(
        2 * np.arcsin(np.sqrt(0.8)) - 2 * np.arcsin(np.sqrt(0.5))
    )
    assert res.ci is not None and res.ci[0] > 0


def test_t_interval_matches_scipy():
    from kefuqa.grading.stats import t_interval

    x = np.array([0.2, 0.5, 0.4, 0.9, 0.3])
    ref = stats.ttest_1samp(x, 0).confidence_interval(0.9)
    assert t_interval(x, 0.9) == pytest.approx((ref.low, ref.high))


def test_large_samples_use_t_instead_of_the_bootstrap():
    from kefuqa.grading.stats import BOOTSTRAP_MAX_N, mean_ci, t_interval

    rng = np.random.default_rng(5)
    x = rng.exponential(30, BOOTSTRAP_MAX_N + 1)
    assert mean_ci(x, confidence=0.95, resamples=500, rng=rng) == t_interval(x, 0.95)
    b, a = rng.normal(0, 1, 1500), rng.normal(0.2, 1, 1500)
    res = two_sample_diff(b, a, proportion=False, confidence=0.95, resamples=500, rng=rng)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert res.ci == pytest.approx((ref.low, ref.high))

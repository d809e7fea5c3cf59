"""Statistics used by grading, all from statsmodels / scipy / numpy.

- proportions: Wilson interval (statsmodels ``proportion_confint``);
- means and differences: ``scipy.stats.bootstrap`` (BCa, percentile as fallback);
- a cohort's before/after: paired t-test p-value and Cohen's d_z;
- difference-in-differences: statsmodels OLS on the agents' changes with HC2
  errors (the agent-clustered CR2 error of the two-window panel, see ``did``);
- Holm's adjustment across the indicators of one analysis.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

Interval = tuple[float, float]


def proportion_ci(successes: float, n: int, confidence: float) -> Interval:
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> Interval | None:
    """Bootstrap interval of ``statistic(*samples, axis=...)``; samples resampled independently.

    Constant samples have a degenerate bootstrap distribution (BCa divides by
    zero), so their interval is the point itself. BCa can still fail on odd
    small samples; the percentile interval is the fallback.
    """
    if any(len(s) < 2 for s in samples):
        return None
    point = float(statistic(*samples, axis=-1))
    if all(np.ptp(s) == 0 for s in samples):
        return point, point
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                res = stats.bootstrap(
                    tuple(samples),
                    statistic,
                    n_resamples=resamples,
                    vectorized=True,
                    confidence_level=confidence,
                    method=method,
                    rng=rng,
                )
            except (Warning, ValueError, FloatingPointError):
                continue
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return low, high
    return None


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_diff(before: np.ndarray, after: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(after, axis=axis) - np.mean(before, axis=axis)


# Above this many values the bootstrap gives way to Student t: the mean is normal enough by
# then, and BCa's jackknife costs n² (a team's year of conversations would take minutes).
BOOTSTRAP_MAX_N = 2000


def mean_ci(
    x: np.ndarray, *, confidence: float, resamples: int, rng: np.random.Generator
) -> Interval | None:
    if len(x) > BOOTSTRAP_MAX_N:
        return t_interval(x, confidence)
    return bootstrap_ci([x], _mean, confidence=confidence, resamples=resamples, rng=rng)


def t_interval(x: np.ndarray, confidence: float) -> Interval | None:
    """Student-t interval of a mean (used for the cohort means drawn in charts)."""
    if len(x) < 2:
        return None
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    # special.stdtrit is the t quantile without rv_continuous' per-call overhead
    half = special.stdtrit(len(x) - 1, (1 + confidence) / 2) * np.std(x, ddof=1) / np.sqrt(len(x))
    m = float(np.mean(x))
    return m - float(half), m + float(half)


@dataclass(frozen=True)
class DiffResult:
    """One agent's after − before with a two-sample bootstrap interval."""

    n_before: int
    n_after: int
    before: float
    after: float
    diff: float
    ci: Interval | None
    effect_size: float | None  # Cohen's h for shares, Cohen's d for means


def two_sample_diff(
    before: np.ndarray,
    after: np.ndarray,
    *,
    proportion: bool,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> DiffResult:
    b, a = float(np.mean(before)), float(np.mean(after))
    ci: Interval | None
    if len(before) + len(after) > BOOTSTRAP_MAX_N and np.ptp(np.r_[before, after]) > 0:
        res = stats.ttest_ind(after, before, equal_var=False)  # Welch; see BOOTSTRAP_MAX_N
        low, high = res.confidence_interval(confidence)
        ci = (float(low), float(high))
    else:
        ci = bootstrap_ci(
            [before, after], _mean_diff, confidence=confidence, resamples=resamples, rng=rng
        )
    if proportion:
        es: float | None = float(proportion_effectsize(a, b))
    else:
        pooled = np.sqrt(
            ((len(before) - 1) * np.var(before, ddof=1) + (len(after) - 1) * np.var(after, ddof=1))
            / (len(before) + len(after) - 2)
        )
        es = float((a - b) / pooled) if pooled > 0 else None
    return DiffResult(len(before), len(after), b, a, a - b, ci, es)


@dataclass(frozen=True)
class PairedResult:
    """A cohort's per-agent before/after values compared pairwise."""

    n_agents: int
    mean_before: float
    mean_after: float
    diff: float
    ci: Interval | None  # bootstrap (BCa) interval of the mean difference
    t_ci: Interval | None  # paired-t interval, the one the verdict uses (see ``paired``)
    d_z: float | None  # mean difference / SD of differences
    p_value: float | None  # paired t-test


def paired(
    before: np.ndarray,
    after: np.ndarray,
    *,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> PairedResult:
    """Bootstrap and paired-t intervals of the mean after − before.

    Both are reported; the verdict rests on the t interval and p-value, which
    agree with each other and hold their level with the 5–20 agents a training
    cohort has, where bootstrap intervals run narrow (about 89% coverage at a
    nominal 95% with 10 agents in the project's simulation).
    """
    d = after - before
    ci = bootstrap_ci([d], _mean, confidence=confidence, resamples=resamples, rng=rng)
    t_ci: Interval | None = None
    d_z: float | None = None
    p: float | None = None
    if len(d) >= 2 and np.ptp(d) > 0:  # identical differences leave no spread to test against
        d_z = float(np.mean(d)) / float(np.std(d, ddof=1))
        res = stats.ttest_rel(after, before)
        p = float(res.pvalue)
        low, high = res.confidence_interval(confidence)
        t_ci = (float(low), float(high))
    return PairedResult(
        len(d), float(np.mean(before)), float(np.mean(after)), float(np.mean(d)), ci, t_ci, d_z, p
    )


@dataclass(frozen=True)
class DidResult:
    """Difference-in-differences: trained agents' mean change minus untrained agents'."""

    estimate: float
    ci: Interval | None
    p_value: float | None
    effect_size: float | None  # estimate / pooled SD of the agents' own changes
    n_treated: int
    n_control: int


def did(treated_change: np.ndarray, control_change: np.ndarray, *, confidence: float) -> DidResult:
    """OLS of each agent's after − before change on a trained dummy, HC2 standard errors.

    With two windows this is the agent-fixed-effects panel regression
    ``y ~ agent + post + trained:post`` in first differences: the trained
    coefficient here equals the interaction there, and with one row per agent
    HC2 is the agent-clustered CR2 (Bell–McCaffrey) error. The common CR1
    cluster error over-rejects with the 10–30 agents a shop has (about 9 %
    family-wise instead of 5 % with 6 + 6 agents in the project's simulation);
    this one holds its level, with t on G − 2 degrees of freedom.
    """
    y = np.concatenate([treated_change, control_change])
    trained = np.r_[np.ones(len(treated_change)), np.zeros(len(control_change))]
    n_t, n_c = len(treated_change), len(control_change)
    estimate = float(np.mean(treated_change) - np.mean(control_change))
    sd = pooled_sd(treated_change, control_change)
    if sd is None or n_t < 2 or n_c < 2:
        return DidResult(estimate, None, None, None, n_t, n_c)  # no spread: nothing to test
    res = sm.OLS(y, sm.add_constant(trained)).fit(cov_type="HC2", use_t=True)
    low, high = res.conf_int(alpha=1 - confidence)[1]
    return DidResult(
        float(res.params[1]),
        (float(low), float(high)),
        float(res.pvalues[1]),
        float(res.params[1]) / sd,
        n_t,
        n_c,
    )


def pooled_sd(*groups: np.ndarray) -> float | None:
    """Pooled within-group SD (ddof=1 per group), None when there is no spread."""
    num = sum((len(g) - 1) * np.var(g, ddof=1) for g in groups if len(g) > 1)
    den = sum(len(g) - 1 for g in groups if len(g) > 1)
    if den <= 0 or num <= 0:
        return None
    return float(np.sqrt(num / den))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, identical to statsmodels' ``multipletests``
    (a test checks that); not called directly because its Holm branch runs a full
    ``gc.collect()`` per call, which dominates repeated analyses."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return [float(x) for x in out]

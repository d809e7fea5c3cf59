"""Indicator values (KPIs) over a set of conversations, each with its interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .dataset import Observation
from .rubric import Indicator, Rubric
from .stats import mean_ci, proportion_ci


def values_of(ind: Indicator, observations: Sequence[Observation]) -> np.ndarray:
    """One number per conversation that has data for the indicator (1/0 for shares); an
    indicator for some channels only (the call indicators) counts their conversations only."""
    src = ind.source
    if ind.channels is not None:
        observations = [o for o in observations if o.channel in ind.channels]
    out: list[float] = []
    if src.label is not None:
        wanted = set(src.values)
        out = [1.0 if o.labels[src.label] in wanted else 0.0 for o in observations]
    elif src.metric is not None:
        for o in observations:
            v = o.metrics.get(src.metric)
            if v is not None:
                out.append(float(v > src.above) if src.above is not None else float(v))
    else:
        assert src.outcome is not None
        for o in observations:
            v = None if o.outcome is None else getattr(o.outcome, src.outcome)
            if v is not None:
                out.append(float(v))
    return np.asarray(out, dtype=float)


@dataclass(frozen=True)
class IndicatorValue:
    key: str
    name: str
    group: str
    level: int
    stat: str  # "proportion" or "mean"
    unit: str
    higher_is_better: bool
    n: int  # conversations with data for this indicator
    value: float | None
    ci_low: float | None
    ci_high: float | None
    score: float | None  # 0–100 from the rubric's scale
    change: float | None = None  # value minus the previous period's value


def estimate(
    ind: Indicator,
    values: np.ndarray,
    *,
    group: str,
    confidence: float,
    resamples: int,
    rng: np.random.Generator | None,
) -> IndicatorValue:
    """Point value, 0–100 score and (when ``rng`` is given) the interval."""
    n = len(values)
    value = float(np.mean(values)) if n else None
    ci = None
    if rng is not None and n:
        if ind.stat == "proportion":
            ci = proportion_ci(float(values.sum()), n, confidence)
        else:
            ci = mean_ci(values, confidence=confidence, resamples=resamples, rng=rng)
    return IndicatorValue(
        key=ind.key,
        name=ind.name,
        group=group,
        level=ind.level,
        stat=ind.stat,
        unit=ind.unit,
        higher_is_better=ind.scale.higher_is_better,
        n=n,
        value=value,
        ci_low=None if ci is None else ci[0],
        ci_high=None if ci is None else ci[1],
        score=None if value is None else ind.scale.score(value),
    )


def measure(
    rubric: Rubric,
    observations: Sequence[Observation],
    rng: np.random.Generator | None,
) -> tuple[IndicatorValue, ...]:
    """Every rubric indicator over ``observations``; intervals only when ``rng`` is given."""
    return tuple(
        estimate(
            ind,
            values_of(ind, observations),
            group=group.key,
            confidence=rubric.confidence_level,
            resamples=rubric.bootstrap_resamples,
            rng=rng,
        )
        for group in rubric.groups
        for ind in group.indicators
    )


def combine(
    rubric: Rubric, values: Sequence[IndicatorValue]
) -> tuple[dict[str, float | None], float | None]:
    """Group scores (weighted within the group) and the total (weighted across groups).

    Indicators without data drop out and the remaining weights are rescaled,
    so a missing CSAT file does not drag every agent's score down.
    """
    by_key = {v.key: v for v in values}
    groups: dict[str, float | None] = {}
    for group in rubric.groups:
        pairs = [(i.weight, by_key[i.key].score) for i in group.indicators]
        pairs = [(w, s) for w, s in pairs if s is not None]
        groups[group.key] = (
            float(np.average([s for _, s in pairs], weights=[w for w, _ in pairs]))
            if pairs
            else None
        )
    present = [(g.weight, groups[g.key]) for g in rubric.groups if groups[g.key] is not None]
    total = (
        float(np.average([s for _, s in present], weights=[w for w, _ in present]))
        if present
        else None
    )
    return groups, total

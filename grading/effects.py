"""Per-indicator effects of a training: for the cohort and for each trained agent.

Input is each agent's per-conversation values before and after training;
``impact.py`` chooses the windows and the agents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .rubric import ImpactSettings, Indicator, Rubric
from .stats import DidResult, PairedResult, did, holm, paired, t_interval, two_sample_diff
from .texts import Lang, tr
from .verdicts import (
    CANNOT_TELL,
    Units,
    agent_verdict,
    cohort_verdict,
    no_spread,
    too_few_agents,
)

Values = dict[str, tuple[np.ndarray, np.ndarray]]  # agent → (before values, after values)


@dataclass(frozen=True)
class AgentEffect:
    agent_id: str
    indicator: str
    n_before: int
    n_after: int
    before: float | None
    after: float | None
    verdict: str
    reason: str
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    effect_size: float | None = None  # Cohen's h (shares) or d (means)


@dataclass(frozen=True)
class CohortEffect:
    indicator: str
    name: str
    level: int
    stat: str
    unit: str
    higher_is_better: bool
    n_treated: int  # trained agents with enough data in both windows
    n_control: int
    treated_before: tuple[float, float, float] | None  # mean of agent values, t-interval
    treated_after: tuple[float, float, float] | None
    control_before: tuple[float, float, float] | None
    control_after: tuple[float, float, float] | None
    # The analysis; left at these values when too few agents have data.
    paired: PairedResult | None = None
    did: DidResult | None = None
    method: str | None = None  # "did" or "paired": which one the verdict rests on
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    effect_size: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm, across the event's tested indicators
    verdict: str = CANNOT_TELL
    reason: str = ""  # set with the verdict; see verdicts.py


def _summary_point(x: np.ndarray, confidence: float) -> tuple[float, float, float] | None:
    if len(x) == 0:
        return None
    ci = t_interval(x, confidence)
    m = float(np.mean(x))
    return (m, m, m) if ci is None else (m, ci[0], ci[1])


def _enough(vals: Values, min_conv: int) -> list[str]:
    return [a for a, (b, f) in vals.items() if len(b) >= min_conv and len(f) >= min_conv]


def cohort_effect(
    ind: Indicator,
    treated_vals: Values,
    control_vals: Values,
    s: ImpactSettings,
    rubric: Rubric,
    rng: np.random.Generator,
    lang: Lang,
) -> CohortEffect:
    """Paired before/after of the trained agents, and DiD when enough untrained agents have data."""
    conf = 1 - s.alpha
    t_ok = _enough(treated_vals, s.min_conversations)
    c_ok = _enough(control_vals, s.min_conversations)
    # one value per agent and window: agents count equally, however busy they were
    tb = np.array([treated_vals[a][0].mean() for a in t_ok])
    ta = np.array([treated_vals[a][1].mean() for a in t_ok])
    cb = np.array([control_vals[a][0].mean() for a in c_ok])
    ca = np.array([control_vals[a][1].mean() for a in c_ok])
    base = CohortEffect(
        indicator=ind.key,
        name=ind.label(lang),
        level=ind.level,
        stat=ind.stat,
        unit=ind.unit,
        higher_is_better=ind.scale.higher_is_better,
        n_treated=len(t_ok),
        n_control=len(c_ok),
        treated_before=_summary_point(tb, conf),
        treated_after=_summary_point(ta, conf),
        control_before=_summary_point(cb, conf),
        control_after=_summary_point(ca, conf),
        reason=no_spread(lang),
    )
    if len(t_ok) < s.min_agents:
        return replace(base, reason=too_few_agents(len(t_ok), s.min_agents, s.min_conversations, lang))
    pr = paired(tb, ta, confidence=conf, resamples=rubric.bootstrap_resamples, rng=rng)
    dr = did(ta - tb, ca - cb, confidence=conf) if len(c_ok) >= s.min_control_agents else None
    ci: tuple[float, float] | None
    if dr is not None and dr.ci is not None:
        method, est, ci, es, p = "did", dr.estimate, dr.ci, dr.effect_size, dr.p_value
    else:
        method, est, ci, es, p = "paired", pr.diff, pr.t_ci, pr.d_z, pr.p_value
    return replace(
        base,
        paired=pr,
        did=dr if dr is not None and dr.ci is not None else None,
        method=method,
        estimate=est,
        ci_low=None if ci is None else ci[0],
        ci_high=None if ci is None else ci[1],
        effect_size=es,
        p_value=p,
    )


def agent_effects(
    ind: Indicator, vals: Values, s: ImpactSettings, rubric: Rubric, rng: np.random.Generator, lang: Lang
) -> list[AgentEffect]:
    """Each trained agent's own change; descriptive, not adjusted for multiplicity."""
    units = Units(ind.stat, ind.unit, lang)
    out = []
    for a, (b, f) in vals.items():
        if len(b) < s.min_conversations or len(f) < s.min_conversations:
            out.append(
                AgentEffect(
                    agent_id=a,
                    indicator=ind.key,
                    n_before=len(b),
                    n_after=len(f),
                    before=float(b.mean()) if len(b) else None,
                    after=float(f.mean()) if len(f) else None,
                    verdict=CANNOT_TELL,
                    reason=tr(lang, "agent.too_few", b=len(b), f=len(f), need=s.min_conversations),
                )
            )
            continue
        r = two_sample_diff(
            b,
            f,
            proportion=ind.stat == "proportion",
            confidence=1 - s.alpha,
            resamples=rubric.bootstrap_resamples,
            rng=rng,
        )
        verdict, reason = agent_verdict(
            diff=r.diff,
            ci=r.ci,
            units=units,
            higher_is_better=ind.scale.higher_is_better,
            alpha=s.alpha,
        )
        out.append(
            AgentEffect(
                agent_id=a,
                indicator=ind.key,
                n_before=r.n_before,
                n_after=r.n_after,
                before=r.before,
                after=r.after,
                diff=r.diff,
                ci_low=None if r.ci is None else r.ci[0],
                ci_high=None if r.ci is None else r.ci[1],
                effect_size=r.effect_size,
                verdict=verdict,
                reason=reason,
            )
        )
    return out


def apply_holm(effects: list[CohortEffect], s: ImpactSettings, lang: Lang) -> list[CohortEffect]:
    """Holm-adjust the tested indicators' p-values together, then give each its verdict."""
    tested = [i for i, e in enumerate(effects) if e.p_value is not None and e.method is not None]
    adjusted = holm([effects[i].p_value or 0.0 for i in tested])
    out = list(effects)
    for i, p_adj in zip(tested, adjusted):
        e = effects[i]
        assert e.estimate is not None and e.method is not None
        ci = None if e.ci_low is None or e.ci_high is None else (e.ci_low, e.ci_high)
        verdict, reason = cohort_verdict(
            estimate=e.estimate,
            ci=ci,
            p=e.p_value,
            p_adj=p_adj,
            alpha=s.alpha,
            units=Units(e.stat, e.unit, lang),
            higher_is_better=e.higher_is_better,
            method=e.method,
            n_treated=e.n_treated,
            n_control=e.n_control,
            n_tests=len(tested),
        )
        out[i] = replace(e, p_adjusted=p_adj, verdict=verdict, reason=reason)
    return out

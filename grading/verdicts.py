"""Turning an impact estimate into a verdict and a reason a manager can read."""

from __future__ import annotations

from dataclasses import dataclass

IMPROVED = "improved"
WORSENED = "worsened"
CANNOT_TELL = "cannot_tell"
VERDICT_LABELS = {
    IMPROVED: "改善 improved",
    WORSENED: "变差 worsened",
    CANNOT_TELL: "无法判断 cannot tell",
}


@dataclass(frozen=True)
class Units:
    stat: str  # "proportion" or "mean"
    unit: str

    def fmt(self, x: float, signed: bool = True) -> str:
        if self.stat == "proportion":
            return f"{100 * x:+.1f} pp" if signed else f"{100 * x:.1f}%"
        num = f"{x:+.2f}" if signed else f"{x:.2f}"
        return f"{num} {self.unit}".strip()


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def direction(estimate: float, higher_is_better: bool) -> str:
    return IMPROVED if (estimate > 0) == higher_is_better else WORSENED


def method_phrase(method: str, n_treated: int, n_control: int) -> str:
    if method == "did":
        return (
            f"{n_treated} trained agents against {n_control} untrained agents over the same "
            f"windows (difference-in-differences)"
        )
    return (
        f"the same {n_treated} agents before and after, with no comparison group, so a change "
        f"that hit everyone (season, promotions, staffing) would look the same"
    )


def too_few_agents(k: int, min_agents: int, min_conv: int) -> str:
    return (
        f"cannot tell: only {k} trained agent(s) have at least {min_conv} conversations with "
        f"data in both windows; {min_agents} are needed"
    )


NO_OUTCOMES = (
    "cannot tell: no outcome data was given (--outcomes); level 4 (results) needs CSAT, "
    "complaint or repeat-contact data"
)
NO_SPREAD = "cannot tell: the indicator does not vary in these windows, so there is nothing to test"


def cohort_verdict(
    *,
    estimate: float,
    ci: tuple[float, float] | None,
    p: float | None,
    p_adj: float | None,
    alpha: float,
    units: Units,
    higher_is_better: bool,
    method: str,
    n_treated: int,
    n_control: int,
    n_tests: int,
) -> tuple[str, str]:
    """An effect only when the interval excludes 0 and the Holm-adjusted p is below alpha."""
    how = method_phrase(method, n_treated, n_control)
    conf = f"{100 * (1 - alpha):.0f}%"
    if ci is None or p is None or p_adj is None:
        return CANNOT_TELL, NO_SPREAD
    span = f"{units.fmt(ci[0])} to {units.fmt(ci[1])}"
    if ci[0] <= 0 <= ci[1]:
        return CANNOT_TELL, (
            f"cannot tell: the change is {units.fmt(estimate)} but its {conf} interval "
            f"({span}) includes 0, so no change fits the data as well; compared {how}"
        )
    if p_adj >= alpha:
        return CANNOT_TELL, (
            f"cannot tell: {units.fmt(estimate)} ({conf} interval {span}, p {_p(p)}) would be "
            f"notable alone, but with {n_tests} indicators tested the Holm-adjusted p "
            f"{_p(p_adj)}, so it may be chance; compared {how}"
        )
    verdict = direction(estimate, higher_is_better)
    moved = "rose" if estimate > 0 else "fell"
    return verdict, (
        f"{moved} by {units.fmt(estimate)} ({conf} interval {span}, Holm-adjusted p "
        f"{_p(p_adj)}); compared {how}"
    )


def agent_verdict(
    *,
    diff: float,
    ci: tuple[float, float] | None,
    units: Units,
    higher_is_better: bool,
    alpha: float,
) -> tuple[str, str]:
    """Per agent: descriptive, no multiplicity adjustment (said so in the report)."""
    conf = f"{100 * (1 - alpha):.0f}%"
    if ci is None:
        return CANNOT_TELL, NO_SPREAD
    span = f"{units.fmt(ci[0])} to {units.fmt(ci[1])}"
    if ci[0] <= 0 <= ci[1]:
        return CANNOT_TELL, f"cannot tell: {units.fmt(diff)}, {conf} interval {span} includes 0"
    return direction(diff, higher_is_better), f"{units.fmt(diff)}, {conf} interval {span}"

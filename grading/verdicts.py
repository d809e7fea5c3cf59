"""Turning an impact estimate into a verdict and a reason a manager can read."""

from __future__ import annotations

from dataclasses import dataclass

from .texts import DEFAULT_LANG, Lang, tr

IMPROVED = "improved"
WORSENED = "worsened"
CANNOT_TELL = "cannot_tell"
# Level 1 (reaction): the trainees' rating lies above or below the scale's neutral point.
POSITIVE = "positive"
NEGATIVE = "negative"
VERDICTS: tuple[str, ...] = (IMPROVED, WORSENED, CANNOT_TELL, POSITIVE, NEGATIVE)


def verdict_label(verdict: str, lang: Lang) -> str:
    return tr(lang, f"verdict.{verdict}")


@dataclass(frozen=True)
class Units:
    stat: str  # "proportion" or "mean"
    unit: str
    lang: Lang = DEFAULT_LANG

    def fmt(self, x: float, signed: bool = True) -> str:
        if self.stat == "proportion":
            return tr(self.lang, "unit.pp", x=100 * x) if signed else f"{100 * x:.1f}%"
        num = f"{x:+.2f}" if signed else f"{x:.2f}"
        return f"{num} {self.unit}".strip()

    def span(self, ci: tuple[float, float]) -> str:
        return tr(self.lang, "span", low=self.fmt(ci[0]), high=self.fmt(ci[1]))


def p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def direction(estimate: float, higher_is_better: bool) -> str:
    return IMPROVED if (estimate > 0) == higher_is_better else WORSENED


def method_phrase(method: str, n_treated: int, n_control: int, lang: Lang) -> str:
    if method == "did":
        return tr(lang, "method.did", t=n_treated, c=n_control)
    return tr(lang, "method.paired", t=n_treated)


def too_few_agents(k: int, min_agents: int, min_conv: int, lang: Lang) -> str:
    return tr(lang, "verdict.too_few_agents", k=k, need=min_agents, conv=min_conv)


def no_outcomes(lang: Lang) -> str:
    return tr(lang, "verdict.no_outcomes")


def no_spread(lang: Lang) -> str:
    return tr(lang, "verdict.no_spread")


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
    lang = units.lang
    if ci is None or p is None or p_adj is None:
        return CANNOT_TELL, no_spread(lang)
    common = {
        "est": units.fmt(estimate),
        "conf": f"{100 * (1 - alpha):.0f}%",
        "span": units.span(ci),
        "how": method_phrase(method, n_treated, n_control, lang),
        "p": p_text(p),
        "p_adj": p_text(p_adj),
        "n": n_tests,
    }
    if ci[0] <= 0 <= ci[1]:
        return CANNOT_TELL, tr(lang, "verdict.includes_zero", **common)
    if p_adj >= alpha:
        return CANNOT_TELL, tr(lang, "verdict.not_after_holm", **common)
    moved = tr(lang, "moved.rose" if estimate > 0 else "moved.fell")
    return direction(estimate, higher_is_better), tr(lang, "verdict.moved", moved=moved, **common)


def agent_verdict(
    *,
    diff: float,
    ci: tuple[float, float] | None,
    units: Units,
    higher_is_better: bool,
    alpha: float,
) -> tuple[str, str]:
    """Per agent: descriptive, no multiplicity adjustment (said so in the report)."""
    lang = units.lang
    if ci is None:
        return CANNOT_TELL, no_spread(lang)
    common = {"est": units.fmt(diff), "conf": f"{100 * (1 - alpha):.0f}%", "span": units.span(ci)}
    if ci[0] <= 0 <= ci[1]:
        return CANNOT_TELL, tr(lang, "agent.includes_zero", **common)
    return direction(diff, higher_is_better), tr(lang, "agent.moved", **common)

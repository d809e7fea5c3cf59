"""Charts for the HTML report, drawn with matplotlib's object API into PNG data URIs.

No pyplot (its global figure registry is shared state) and no CDN: the
report must open offline. Chinese text is drawn only when a CJK font is
installed; otherwise labels fall back to English so no glyph turns into a box.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .effects import CohortEffect
from .grades import AgentPeriod, GradeReport
from .impact import EventImpact
from .rubric import GRADES, INSUFFICIENT
from .verdicts import CANNOT_TELL, IMPROVED

_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
)
_ENGLISH = {
    "优秀": "Excellent",
    "良好": "Good",
    "中等": "Average",
    "合格": "Pass",
    "不合格": "Fail",
    INSUFFICIENT: "Insufficient",
}
_GRADE_COLOURS = {
    "优秀": "#1a9850",
    "良好": "#91cf60",
    "中等": "#fee08b",
    "合格": "#fc8d59",
    "不合格": "#d73027",
    INSUFFICIENT: "#bdbdbd",
}
_VERDICT_COLOURS = {IMPROVED: "#1a9850", CANNOT_TELL: "#636363"}


@dataclass(frozen=True)
class Fonts:
    """Which text the charts may draw: ``family`` is None without a CJK font."""

    family: str | None

    @classmethod
    def detect(cls) -> Fonts:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return cls(next((f for f in _CJK_FONTS if f in installed), None))

    def text(self, zh: str, en: str) -> str:
        return zh if self.family else en

    def safe(self, s: str) -> str:
        """User text (indicator names, ids): kept when drawable, else its ASCII part; a
        ``$`` is escaped so matplotlib draws it instead of parsing mathtext (``$\\frac{x$``)."""
        if not (self.family or s.isascii()):
            s = s.encode("ascii", "ignore").decode() or "?"
        return s.replace("$", r"\$")

    def grade(self, g: str) -> str:
        return g if self.family else _ENGLISH.get(g, g)

    @property
    def props(self) -> dict[str, Any]:
        return {"family": self.family} if self.family else {}


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trajectory(rows: Sequence[AgentPeriod], thresholds: dict[str, float], fonts: Fonts) -> str:
    """成长轨迹: one agent's score per period over the grade bands; gaps where not graded."""
    fig = Figure(figsize=(5.2, 2.4))
    ax = fig.subplots()
    cuts = [100.0, *thresholds.values(), 0.0]
    for grade, (top, bottom) in zip(GRADES, pairwise(cuts), strict=True):
        ax.axhspan(bottom, top, color=_GRADE_COLOURS[grade], alpha=0.18, lw=0)
        ax.text(
            1.01,
            (top + bottom) / 2,
            fonts.grade(grade),
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=7,
            **fonts.props,
        )
    x = list(range(len(rows)))
    y = [r.score if r.graded and r.score is not None else float("nan") for r in rows]
    ax.plot(x, y, "-o", color="#2c7fb8", ms=4)
    for i, r in enumerate(rows):
        if not r.graded:
            ax.plot(i, 2, marker="x", color="#636363", ms=5)
    ax.set_ylim(0, 100)
    ax.set_xticks(x, [r.period for r in rows], rotation=45 if len(rows) > 6 else 0, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(fonts.text("得分", "score"), fontsize=8, **fonts.props)
    ax.set_title(
        fonts.text("成长轨迹 ", "Growth trajectory ") + fonts.safe(rows[0].agent_id),
        fontsize=9,
        **fonts.props,
    )
    return _png(fig)


def grade_distribution(report: GradeReport, fonts: Fonts) -> str:
    """Stacked bars: how many agents got each grade in each period."""
    fig = Figure(figsize=(max(4.5, 0.5 * len(report.periods) + 2.5), 3.0))
    ax = fig.subplots()
    bottoms = [0] * len(report.periods)
    for grade in (*GRADES, INSUFFICIENT):
        counts = [
            sum(1 for r in report.agents if r.period == p and r.grade == grade)
            for p in report.periods
        ]
        ax.bar(
            report.periods,
            counts,
            bottom=bottoms,
            color=_GRADE_COLOURS[grade],
            label=fonts.grade(grade),
            edgecolor="white",
            lw=0.5,
        )
        bottoms = [b + c for b, c in zip(bottoms, counts)]
    ax.set_ylabel(fonts.text("人数", "agents"), **fonts.props)
    ax.set_title(fonts.text("等级分布", "Grade distribution"), **fonts.props)
    ax.tick_params(axis="x", rotation=45 if len(report.periods) > 6 else 0, labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), prop={**fonts.props, "size": 7})
    return _png(fig)


def _cohort_lines(ax: Axes, e: CohortEffect, fonts: Fonts) -> None:
    """The trained and the untrained cohort's mean before and after, with intervals,
    nudged apart sideways so that their bars do not overlap."""
    scale = 100.0 if e.stat == "proportion" else 1.0
    for label, pts, colour, dx in (
        (
            fonts.text("培训组", "trained"),
            (e.treated_before, e.treated_after),
            "#d95f02",
            -0.04,
        ),
        (
            fonts.text("对照组", "untrained"),
            (e.control_before, e.control_after),
            "#7570b3",
            0.04,
        ),
    ):
        before, after = pts
        if before is None or after is None:
            continue
        xs = [0 + dx, 1 + dx]
        ms = [before[0] * scale, after[0] * scale]
        err = [
            [(before[0] - before[1]) * scale, (after[0] - after[1]) * scale],
            [(before[2] - before[0]) * scale, (after[2] - after[0]) * scale],
        ]
        ax.errorbar(xs, ms, yerr=err, fmt="-o", color=colour, ms=4, capsize=3, label=label)


def _label_panel(ax: Axes, e: CohortEffect, fonts: Fonts) -> None:
    """Axes, the indicator's name and unit, and the verdict at the foot of the panel."""
    ax.set_xticks(
        [0, 1],
        [fonts.text("培训前", "before"), fonts.text("培训后", "after")],
        fontsize=7,
        **fonts.props,
    )
    ax.set_xlim(-0.4, 1.4)
    ax.tick_params(axis="y", labelsize=7)
    unit = "%" if e.stat == "proportion" else e.unit
    name = fonts.safe(e.name) if fonts.family else e.indicator
    ax.set_title(f"{name} ({unit})" if unit else name, fontsize=8, **fonts.props)
    colour = _VERDICT_COLOURS.get(e.verdict, "#d73027")
    ax.text(
        0.5,
        0.02,
        fonts.text(
            {"improved": "改善", "worsened": "变差"}.get(e.verdict, "无法判断"),
            e.verdict.replace("_", " "),
        ),
        transform=ax.transAxes,
        ha="center",
        fontsize=7,
        color=colour,
        **fonts.props,
    )


def before_after(event: EventImpact, fonts: Fonts) -> str:
    """Per indicator: cohort means before/after with intervals, trained vs untrained."""
    shown = [e for e in event.indicators if e.treated_before and e.treated_after]
    cols = 4
    rows = max(1, -(-len(shown) // cols))
    fig = Figure(figsize=(2.6 * cols, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(shown) :]:
        ax.set_axis_off()
    for ax, e in zip(axes, shown):
        _cohort_lines(ax, e, fonts)
        _label_panel(ax, e, fonts)
    if shown:
        axes[0].legend(loc="best", prop={**fonts.props, "size": 6})
    conf = f"{100 * (1 - event.settings.alpha):.0f}%"
    fig.suptitle(
        fonts.text(f"培训前后对比（{conf} 区间）", f"Before / after training ({conf} intervals)"),
        fontsize=10,
        **fonts.props,
    )
    return _png(fig)

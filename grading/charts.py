"""Charts for the HTML report, drawn with matplotlib's object API into PNG data URIs.

No pyplot (its global figure registry is shared state) and no CDN: the
report must open offline. Chinese text needs a CJK font: it is found by FILE
(fc-match, then a list of the usual paths, then matplotlib's font cache) and
handed to matplotlib as ``FontProperties(fname=…)``, so a font cache built
before the font was installed does not matter and nothing is added to
matplotlib's process-wide font list. Without any CJK font the labels fall back
to English, so no glyph turns into a box.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font

from .effects import CohortEffect
from .grades import AgentPeriod, GradeReport
from .impact import EventImpact
from .rubric import INSUFFICIENT
from .texts import DEFAULT_LANG, Lang, tr
from .verdicts import CANNOT_TELL, IMPROVED, POSITIVE, verdict_label

# Where Debian, Ubuntu, Fedora, macOS and Windows put common Simplified Chinese fonts.
CJK_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
_CJK_FAMILIES = {
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
}
_ENGLISH = {
    "优秀": "Excellent",
    "良好": "Good",
    "中等": "Average",
    "合格": "Pass",
    "不合格": "Fail",
    INSUFFICIENT: "Insufficient",
}
# Best to worst, by the number of levels in the rubric's scheme.
_PALETTES = {
    3: ("#1a9850", "#fee08b", "#d73027"),
    4: ("#1a9850", "#91cf60", "#fc8d59", "#d73027"),
    5: ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"),
}
_VERDICT_COLOURS = {IMPROVED: "#1a9850", POSITIVE: "#1a9850", CANNOT_TELL: "#636363"}


def grade_colours(levels: Sequence[str]) -> dict[str, str]:
    """Each grade's colour, best green to worst red, and grey for 数据不足."""
    return {**dict(zip(levels, _PALETTES[len(levels)])), INSUFFICIENT: "#bdbdbd"}


def has_cjk(path: str | Path) -> bool:
    """Whether the font file has Chinese glyphs (fc-match answers even when none is installed)."""
    try:
        return FT2Font(str(path)).get_char_index(ord("中")) != 0
    except (OSError, RuntimeError, ValueError):
        return False


def _fc_match() -> list[str]:
    exe = shutil.which("fc-match")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "-f", "%{file}", "sans-serif:lang=zh-cn"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [out.stdout.strip()] if out.returncode == 0 and out.stdout.strip() else []


def find_cjk_font() -> str | None:
    """A font file with Chinese glyphs: fontconfig's choice, the usual paths, then the cache."""
    cached = [f.fname for f in font_manager.fontManager.ttflist if f.name in _CJK_FAMILIES]
    for path in (*_fc_match(), *CJK_FONT_FILES, *cached):
        if Path(path).is_file() and has_cjk(path):
            return path
    return None


@dataclass(frozen=True)
class Fonts:
    """What the charts may draw: ``path`` is a CJK font file, None without one; labels
    are in ``lang`` when the font can draw them, else in English."""

    path: str | None
    lang: Lang = DEFAULT_LANG

    @classmethod
    def detect(cls, lang: Lang = DEFAULT_LANG) -> Fonts:
        return cls(find_cjk_font(), lang)

    @property
    def chinese(self) -> bool:
        return self.path is not None and self.lang != "en"

    def text(self, key: str, /, **values: object) -> str:
        """A chart label from the catalog; English when no CJK font can draw Chinese."""
        return tr(self.lang if self.chinese else "en", key, **values)

    def safe(self, s: str) -> str:
        """User text (indicator names, ids): kept when drawable, else its ASCII part; a
        ``$`` is escaped so matplotlib draws it instead of parsing mathtext (``$\\frac{x$``)."""
        if not (self.path or s.isascii()):
            s = s.encode("ascii", "ignore").decode() or "?"
        return s.replace("$", r"\$")

    def grade(self, g: str, levels: Sequence[str] = ()) -> str:
        if self.chinese or (self.path and g not in _ENGLISH):
            return g
        if g in _ENGLISH:
            return _ENGLISH[g]
        return f"L{list(levels).index(g) + 1}" if g in levels else self.safe(g)

    def verdict(self, v: str) -> str:
        return verdict_label(v, self.lang if self.chinese else "en")

    @property
    def props(self) -> dict[str, Any]:
        return {"fontproperties": FontProperties(fname=self.path)} if self.path else {}

    def legend(self, size: float) -> FontProperties:
        return FontProperties(fname=self.path, size=size) if self.path else FontProperties(size=size)


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trajectory(
    rows: Sequence[AgentPeriod], levels: Sequence[str], thresholds: dict[str, float], fonts: Fonts
) -> str:
    """成长轨迹: one agent's score per period over the grade bands; gaps where not graded."""
    fig = Figure(figsize=(5.2, 2.4))
    ax = fig.subplots()
    cuts = [100.0, *(thresholds[g] for g in levels[:-1]), 0.0]
    colours = grade_colours(levels)
    for grade, (top, bottom) in zip(levels, pairwise(cuts), strict=True):
        ax.axhspan(bottom, top, color=colours[grade], alpha=0.18, lw=0)
        ax.text(
            1.01,
            (top + bottom) / 2,
            fonts.grade(grade, levels),
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
    ax.set_ylabel(fonts.text("chart.score"), fontsize=8, **fonts.props)
    ax.set_title(
        fonts.text("chart.trajectory", agent=fonts.safe(rows[0].agent_id)),
        fontsize=9,
        **fonts.props,
    )
    return _png(fig)


def grade_distribution(report: GradeReport, fonts: Fonts) -> str:
    """Stacked bars: how many agents got each grade in each period."""
    fig = Figure(figsize=(max(4.5, 0.5 * len(report.periods) + 2.5), 3.0))
    ax = fig.subplots()
    bottoms = [0] * len(report.periods)
    colours = grade_colours(report.levels)
    for grade in (*report.levels, INSUFFICIENT):
        counts = [
            sum(1 for r in report.agents if r.period == p and r.grade == grade)
            for p in report.periods
        ]
        ax.bar(
            report.periods,
            counts,
            bottom=bottoms,
            color=colours[grade],
            label=fonts.grade(grade, report.levels),
            edgecolor="white",
            lw=0.5,
        )
        bottoms = [b + c for b, c in zip(bottoms, counts)]
    ax.set_ylabel(fonts.text("chart.agents"), **fonts.props)
    ax.set_title(fonts.text("chart.distribution"), **fonts.props)
    ax.tick_params(axis="x", rotation=45 if len(report.periods) > 6 else 0, labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), prop=fonts.legend(7))
    return _png(fig)


def _cohort_lines(ax: Axes, e: CohortEffect, fonts: Fonts) -> None:
    """The trained and the untrained cohort's mean before and after, with intervals,
    nudged apart sideways so that their bars do not overlap."""
    scale = 100.0 if e.stat == "proportion" else 1.0
    for label, pts, colour, dx in (
        (
            fonts.text("chart.trained"),
            (e.treated_before, e.treated_after),
            "#d95f02",
            -0.04,
        ),
        (
            fonts.text("chart.untrained"),
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
        [fonts.text("chart.before"), fonts.text("chart.after")],
        fontsize=7,
        **fonts.props,
    )
    ax.set_xlim(-0.4, 1.4)
    ax.tick_params(axis="y", labelsize=7)
    unit = "%" if e.stat == "proportion" else e.unit
    name = fonts.safe(e.name) if fonts.path or e.name.isascii() else e.indicator
    ax.set_title(f"{name} ({unit})" if unit else name, fontsize=8, **fonts.props)
    colour = _VERDICT_COLOURS.get(e.verdict, "#d73027")
    ax.text(
        0.5,
        0.02,
        fonts.verdict(e.verdict),
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
        axes[0].legend(loc="best", prop=fonts.legend(6))
    conf = f"{100 * (1 - event.settings.alpha):.0f}%"
    fig.suptitle(
        fonts.text("chart.before_after", conf=conf),
        fontsize=10,
        **fonts.props,
    )
    return _png(fig)

"""The files and the summary of ``kefuqa topics``: topics.json, topics.csv and a short
Chinese summary for the training manager."""

from __future__ import annotations

from pathlib import Path

from .report import _write_csv, write_json
from .topics import UNDATED, TopicReport

SUMMARY_TOPICS = 10  # stdout is a summary; topics.csv and topics.json hold every topic
# Below this mean silhouette the topics barely differ: say so rather than let a list of
# topics look more certain than it is (a kefu-qa default).
WEAK_SILHOUETTE = 0.1
_KIND_NAMES = {"month": "按月", "quarter": "按季度", "year": "按年"}
_HOW = {"silhouette": "按轮廓系数自动选择", "--topics": "按 --topics 指定", "only choice": "只能分为 2 类"}


def write_topic_outputs(report: TopicReport, out: Path) -> dict[str, Path]:
    """topics.json (everything) and topics.csv (topic × period counts, UTF-8 with a BOM,
    cells that a spreadsheet would run as a formula quoted)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("topics.json", "topics.csv")}
    write_json(paths["topics.json"], report)
    columns = [*report.periods, *([UNDATED] if report.undated else [])]
    header = ["topic_id", "name", "count", "share", *columns, "trend_pp"]
    rows = [
        [t.id, t.name, t.count, t.share, *(t.by_period.get(c, 0) for c in columns), t.trend_pp]
        for t in report.topics
    ]
    _write_csv(paths["topics.csv"], header, rows)
    return paths


def _trend(pp: float | None) -> str:
    if pp is None:
        return "–"
    return "持平" if pp == 0 else f"{pp:+.1f} 个百分点"


def topic_summary(report: TopicReport) -> list[str]:
    """A few lines in Chinese: the biggest topics, their share and their trend."""
    ends = (report.periods[0], report.periods[-1]) if report.periods else ("无日期",)
    when = " 至 ".join(dict.fromkeys(ends))
    lines = [
        f"高频问题追踪（{_KIND_NAMES.get(report.kind, report.kind)}，{when}，{report.timezone}）："
        f"{report.grouped} 个会话按客户前 {report.customer_turns} 句发言分为 {report.k} 类"
        f"（{_HOW.get(report.k_chosen_by, report.k_chosen_by)}）",
    ]
    trend = f"较上期（{report.trend[0]}→{report.trend[1]}）" if report.trend else "较上期"
    lines.append(f"{'排名':<4}{'会话':>6}{'占比':>8}  {trend:<24}问题")
    for n, t in enumerate(report.topics[:SUMMARY_TOPICS], 1):
        lines.append(f"{n:<6}{t.count:>6}{t.share:>9.1%}  {_trend(t.trend_pp):<24}{t.name}")
    if len(report.topics) > SUMMARY_TOPICS:
        lines.append(f"… 另有 {len(report.topics) - SUMMARY_TOPICS} 类，见 topics.csv")
    notes = []
    separation = report.silhouette.get(report.k)
    if separation is not None and separation < WEAK_SILHOUETTE:
        notes.append(f"类别区分度低（轮廓系数 {separation:.2f}），这批会话中的问题很少重复，类别仅供参考")
    if report.read.rejected:
        notes.append(f"跳过 {report.read.rejected} 行无效输入")
    if report.read.without_customer:
        notes.append(f"{report.read.without_customer} 个会话没有客户发言")
    if report.no_words:
        notes.append(f"{report.no_words} 个会话的客户发言只有寒暄或语气词，未归类")
    if report.undated:
        notes.append(f"{report.undated} 个会话没有 started_at，计入 {UNDATED}")
    if notes:
        lines.append("说明：" + "；".join(notes) + "。")
    return lines

"""Per-rule precision from reviewers' evidence marks (``evidence_feedback``).

For each rule: its **hits** (evidence chips in the latest prediction of each
conversation), the reviewers' **marks** on its chips (each reviewer's verdict
counts once), the **marked-wrong rate** and the **precision** (right / marked)
with a Wilson interval (statsmodels). The rules to **fix first** are those with
at least ``min_marks`` marks and one wrong, lowest lower bound of precision first:
the rules that are most surely context-blind. Missed spans are counted per label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session
from statsmodels.stats.proportion import proportion_confint

from .models import EvidenceMark, MissedSpan, Prediction, StoredConversation

FIX_FIRST = 5  # how many rules the "fix first" list names


@dataclass(frozen=True)
class RuleStat:
    rule: str
    hits: int
    marks: int
    right: int
    wrong: int
    wrong_rate: float | None
    precision: float | None
    low: float | None  # Wilson interval of the precision
    high: float | None
    enough_marks: bool


@dataclass(frozen=True)
class RulePrecision:
    rules: list[RuleStat]
    fix_first: list[str]
    missed: dict[str, int]  # missed spans per label
    min_marks: int
    confidence: float
    conversations: int = 0  # conversations whose latest prediction was counted
    marks: int = 0  # verdicts counted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hits(s: Session, where: ColumnElement[bool]) -> tuple[Counter[str], int]:
    """Evidence chips per rule in each visible conversation's latest prediction."""
    latest = (select(Prediction.id, func.row_number().over(
        partition_by=Prediction.conversation_id,
        order_by=(Prediction.created_at.desc(), Prediction.id.desc())).label("n"))
        .join(StoredConversation, StoredConversation.id == Prediction.conversation_id).where(where).subquery())
    records = s.scalars(select(Prediction.record).join(latest, latest.c.id == Prediction.id).where(latest.c.n == 1))
    hits: Counter[str] = Counter()
    conversations = 0
    for rec in records:
        conversations += 1
        hits.update(str(ev.get("rule")) for ev in rec.get("evidence", []) if ev.get("rule"))
    return hits, conversations


def _stat(rule: str, hits: int, right: int, wrong: int, min_marks: int, confidence: float) -> RuleStat:
    marks = right + wrong
    if not marks:
        return RuleStat(rule, hits, 0, 0, 0, None, None, None, None, False)
    low, high = proportion_confint(right, marks, alpha=1 - confidence, method="wilson")
    return RuleStat(rule, hits, marks, right, wrong, wrong / marks, right / marks, float(low), float(high),
                    marks >= min_marks)


def rule_precision(s: Session, where: ColumnElement[bool] | None = None, min_marks: int = 5,
                   confidence: float = 0.95) -> RulePrecision:
    """Every rule with hits or marks among the conversations ``where`` selects (all by default)."""
    where = where if where is not None else true()
    hits, conversations = _hits(s, where)
    verdicts = s.execute(select(EvidenceMark.rule, EvidenceMark.verdict, func.count())
                         .join(StoredConversation, StoredConversation.id == EvidenceMark.conversation_id)
                         .where(where).group_by(EvidenceMark.rule, EvidenceMark.verdict)).tuples().all()
    counts: dict[str, Counter[str]] = {}
    for rule, verdict, n in verdicts:
        counts.setdefault(rule, Counter())[verdict] += n
    stats = [_stat(rule, hits[rule], counts.get(rule, Counter())["right"], counts.get(rule, Counter())["wrong"],
                   min_marks, confidence) for rule in set(hits) | set(counts)]
    stats.sort(key=lambda r: (not r.enough_marks, r.low if r.low is not None else 1.0, -r.marks, -r.hits, r.rule))
    fix_first = [r.rule for r in stats if r.enough_marks and r.wrong][:FIX_FIRST]
    missed = dict(s.execute(select(MissedSpan.label, func.count())
                            .join(StoredConversation, StoredConversation.id == MissedSpan.conversation_id)
                            .where(where).group_by(MissedSpan.label).order_by(MissedSpan.label)).tuples().all())
    return RulePrecision(stats, fix_first, missed, min_marks, confidence, conversations,
                         sum(r.marks for r in stats))


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def format_table(report: RulePrecision) -> str:
    """The report as the CLI prints it."""
    head = ("rule", "hits", "marks", "wrong", "wrong rate", "precision", f"{report.confidence:.0%} interval")
    rows = [(r.rule, str(r.hits), str(r.marks), str(r.wrong), _pct(r.wrong_rate), _pct(r.precision),
             "—" if r.low is None else f"{_pct(r.low)}–{_pct(r.high)}" + ("" if r.enough_marks else " (few marks)"))
            for r in report.rules]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
    lines.append("")
    lines.append(f"{report.marks} marks on {report.conversations} conversations' latest predictions; "
                 f"intervals: Wilson; 'enough marks' = at least {report.min_marks}")
    if report.fix_first:
        lines.append("fix first (lowest lower bound of precision): " + ", ".join(report.fix_first))
    else:
        lines.append(f"fix first: none yet (no rule has {report.min_marks} or more marks with one marked wrong)")
    if report.missed:
        lines.append("missed spans per label: " + ", ".join(f"{k} {v}" for k, v in report.missed.items()))
    return "\n".join(lines)

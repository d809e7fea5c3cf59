"""Evaluate an engine on labelled conversations: macro-F1 per label,
per-class precision/recall and confusion matrices (scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from kefuqa.contract import LABELS, Conversation
from kefuqa.training.dataset import gold, rationale_of


@dataclass(frozen=True)
class LabelReport:
    name: str
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # value → precision, recall, f1, support
    confusion: list[list[int]]  # rows: gold, columns: predicted, in LABELS order
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "macro_f1": self.macro_f1,
            "per_class": self.per_class,
            "confusion": {"labels": list(LABELS[self.name]), "rows_gold_cols_pred": self.confusion},
            "n": self.n,
        }


def evaluate_predictions(gold: Sequence[dict[str, str]], pred: Sequence[dict[str, str]]) -> dict[str, LabelReport]:
    out = {}
    for name, values in LABELS.items():
        y_true = [g[name] for g in gold]
        y_pred = [p[name] for p in pred]
        prec, rec, f1, sup = precision_recall_fscore_support(
            y_true, y_pred, labels=list(values), zero_division=0
        )
        out[name] = LabelReport(
            name=name,
            macro_f1=round(float(f1_score(y_true, y_pred, labels=list(values), average="macro", zero_division=0)), 4),
            per_class={
                v: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                    "support": int(s)}
                for v, p, r, f, s in zip(values, prec, rec, f1, sup)
            },
            confusion=confusion_matrix(y_true, y_pred, labels=list(values)).tolist(),
            n=len(y_true),
        )
    return out


def reports_by_channel(convs: Sequence[Conversation],
                       pred: Sequence[dict[str, str]]) -> dict[str, dict[str, LabelReport]]:
    """The label reports of each channel (chat, voice) apart."""
    out: dict[str, dict[str, LabelReport]] = {}
    for channel in sorted({c.channel for c in convs}):
        idx = [i for i, c in enumerate(convs) if c.channel == channel]
        out[channel] = evaluate_predictions([gold(convs[i]) for i in idx], [pred[i] for i in idx])
    return out


def channels_as_data(by_channel: dict[str, dict[str, LabelReport]]) -> dict[str, dict[str, Any]]:
    """Macro-F1 per label and confusion matrices of each channel, for JSON reports."""
    return {channel: {"n": next(iter(reps.values())).n, "macro_f1": {n: r.macro_f1 for n, r in reps.items()},
                      "labels": {n: r.as_dict() for n, r in reps.items()}}
            for channel, reps in by_channel.items()}


def per_channel(convs: Sequence[Conversation], pred: Sequence[dict[str, str]]) -> dict[str, dict[str, Any]]:
    return channels_as_data(reports_by_channel(convs, pred))


def format_channels(channels: dict[str, dict[str, Any]]) -> str:
    lines = [f"per channel macro-F1:  {'n':>5}" + "".join(f"{n[:12]:>14}" for n in LABELS)]
    for channel, rep in channels.items():
        lines.append(f"  {channel:<20}{rep['n']:>5}" + "".join(f"{rep['macro_f1'][n]:>14.3f}" for n in LABELS))
    return "\n".join(lines)


def evidence_hits(convs: Sequence[Conversation], evidence: Sequence[dict[str, int]]) -> dict[str, dict[str, float]]:
    """How often each label's ``model.<label>`` evidence turn is one of the turns the
    writer named as deciding that label, over conversations that name some."""
    out: dict[str, dict[str, float]] = {}
    for name in LABELS:
        pairs = [(ev.get(name), rationale_of(c).get(name, [])) for c, ev in zip(convs, evidence)]
        pairs = [(turn, named) for turn, named in pairs if named]
        hits = sum(turn in named for turn, named in pairs)
        out[name] = {"n": len(pairs), "hit_rate": round(hits / len(pairs), 4) if pairs else 0.0}
    return out


def gold_labels(convs: Sequence[Conversation]) -> list[dict[str, str]]:
    return [c.labels.model_dump() for c in convs if c.labels is not None]


def format_report(reports: dict[str, LabelReport]) -> str:
    lines = []
    for name, rep in reports.items():
        values = LABELS[name]
        lines.append(f"{name}: macro-F1 {rep.macro_f1:.3f}  (n={rep.n})")
        lines.append(f"  {'class':<11}{'prec':>7}{'recall':>8}{'f1':>7}{'n':>6}")
        for v in values:
            c = rep.per_class[v]
            lines.append(f"  {v:<11}{c['precision']:>7.3f}{c['recall']:>8.3f}{c['f1']:>7.3f}{c['support']:>6d}")
        lines.append("  confusion (rows gold, columns predicted): " + " ".join(f"{v[:5]:>6}" for v in values))
        for v, row in zip(values, rep.confusion):
            lines.append(f"  {v:>41} " + " ".join(f"{x:>6d}" for x in row))
    return "\n".join(lines)

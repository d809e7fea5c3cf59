"""How far people agree on the labels: the ceiling a model can be held to.

Second readers labelled a sample of the outside set blind (no gold labels, no model output,
only the conversations and labels.md). For each label this prints every reader's macro-F1
against the writers' gold labels, the readers' agreement with each other (share of equal
labels and Cohen's kappa), and, given ``--model VERSION``, the model's macro-F1 on the same
conversations, by channel too. A reader who agrees with the gold about as often as the model
does marks that label's limit as the guide's own borderline, not the model's.

    python bench/label_agreement.py training/data/agreement/reader_*.jsonl [--model champion]

Reader files: one JSON object a line, ``{"id": …, "labels": {label: value, …}}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from pydantic import ValidationError
from sklearn.metrics import cohen_kappa_score

from kefuqa.contract import LABELS, Conversation, Labels
from kefuqa.training.dataset import gold, load_corpus, outside_files
from kefuqa.training.evaluation import evaluate_predictions, reports_by_channel


def read_labels(path: Path, known: set[str]) -> dict[str, dict[str, str]]:
    """id → labels, checked against the outside set and the contract's label values."""
    out: dict[str, dict[str, str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["id"] not in known:
            raise SystemExit(f"{path}:{n}: {row['id']!r} is not an outside conversation")
        try:
            out[row["id"]] = Labels.model_validate(row["labels"]).model_dump()
        except ValidationError as exc:
            raise SystemExit(f"{path}:{n}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None
    return out


def model_labels(version: str, convs: list[Conversation]) -> dict[str, dict[str, str]]:
    from kefuqa.models.neural.engine import NeuralEngine
    from kefuqa.models.registry import Registry
    from kefuqa.settings import load_settings

    registry = Registry(load_settings().home / "registry")
    engine = NeuralEngine(registry.path(registry.resolve(version)))
    return {c.id: r["labels"] for c, r in zip(convs, engine.score_batch(convs))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("readers", type=Path, nargs="+", help="second readers' label files")
    ap.add_argument("--model", help="also the model's labels on the same conversations (a registry version)")
    args = ap.parse_args()
    outside = {c.id: c for c in load_corpus(outside_files())}
    readers = {p.stem: read_labels(p, set(outside)) for p in args.readers}
    ids = sorted(set.intersection(*(set(r) for r in readers.values())))
    convs = [outside[i] for i in ids]
    rows = dict(readers)
    if args.model:
        rows[f"model {args.model}"] = model_labels(args.model, convs)
    print(f"{len(ids)} outside conversations labelled by every reader "
          f"({sum(c.channel == 'voice' for c in convs)} voice)")
    print(f"{'macro-F1 against the gold':<34}" + "".join(f"{n[:12]:>14}" for n in LABELS))
    reports = {who: {"all": evaluate_predictions([gold(c) for c in convs], [labels[i] for i in ids])}
               | reports_by_channel(convs, [labels[i] for i in ids]) for who, labels in rows.items()}
    for channel in ("all", "chat", "voice"):
        for who, by_channel in reports.items():
            if channel in by_channel:
                print(f"{channel + ' · ' + who:<34}"
                      + "".join(f"{r.macro_f1:>14.3f}" for r in by_channel[channel].values()))
    for a, b in itertools.combinations(readers, 2):
        agree = "".join(f"{sum(readers[a][i][n] == readers[b][i][n] for i in ids) / len(ids):>14.1%}" for n in LABELS)
        kappa = "".join(f"{cohen_kappa_score([readers[a][i][n] for i in ids], [readers[b][i][n] for i in ids]):>14.3f}"
                        for n in LABELS)
        print(f"{a + ' = ' + b:<34}{agree}\n{'  kappa':<34}{kappa}")


if __name__ == "__main__":
    main()

"""Generalisation to other people's chats: leave-one-writer-out.

The training corpus comes from independent writers (w1, w2, …), each with its own
brief (trades, personas, agent styles). For each writer, train the head on all
the others and test on every conversation of that writer; also score them with
the rule baseline. The held-out writers of ``training/data/outside`` are not
used here at all. Prints macro-F1 per label.

    python bench/cross_writer.py --encoder DIR [--lora DIR] [--student DIR] [--writers w6 w7] [--ensemble 1]
        [--augment 1] [--cache FILE]

A held-out writer is unseen only if the encoder's own training never saw it either: the
shipped adapters were fine-tuned on w1–w10, so hold out later writers with them, and
never a fine-tuned student (it saw every training writer's labels).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kefuqa.models.baseline import RulesEngine
from kefuqa.training.dataset import hand_files, load_corpus, writer_of
from kefuqa.training.evaluation import evaluate_predictions
from kefuqa.training.train import TrainConfig, train

LABEL_NAMES = ("politeness", "emotional_control", "resolution", "sentiment")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", type=Path, required=True, help="converted encoder folder (kefuqa encoder build)")
    ap.add_argument("--lora", type=Path, help="LoRA adapters applied to the encoder (as the shipped model)")
    ap.add_argument("--student", type=Path, help="a distilled student of that encoder (kefuqa distill --out)")
    ap.add_argument("--writers", nargs="*", help="only hold out these writers (default: every writer)")
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--augment", type=int, default=1)
    ap.add_argument("--cache", type=Path, help="embedding cache file")
    args = ap.parse_args()
    convs = load_corpus(hand_files())
    writers = sorted({writer_of(c) for c in convs}, key=lambda w: (len(w), w))
    rules = RulesEngine()
    print(f"{'held-out writer':<16}{'n':>5}  {'engine':<8}" + "".join(f"{n[:11]:>13}" for n in LABEL_NAMES))
    for writer in args.writers or writers:
        test = [c for c in convs if writer_of(c) == writer]
        cfg = TrainConfig(data=hand_files(), out=Path(tempfile.mkdtemp()), encoder_dir=args.encoder,
                          lora=args.lora, student=args.student, ensemble=args.ensemble, epochs=args.epochs,
                          augment_copies=args.augment, test_ids=[c.id for c in test],
                          embedding_cache=args.cache, outside=[])
        f1 = train(cfg, log=lambda *_: None)["training"]["metrics"]["macro_f1"]
        base = evaluate_predictions([c.labels.model_dump() for c in test],
                                    [r["labels"] for r in rules.score_batch(test)])
        print(f"{writer:<16}{len(test):>5}  {'neural':<8}" + "".join(f"{f1[n]:>13.3f}" for n in LABEL_NAMES))
        print(f"{'':<16}{'':>5}  {'rules':<8}" + "".join(f"{base[n].macro_f1:>13.3f}" for n in LABEL_NAMES),
              flush=True)


if __name__ == "__main__":
    main()

"""Generalisation to other people's chats: leave-one-writer-out.

The hand-written corpus comes from five independent writers (w1…w5), each
with its own platforms and style. For each writer, train on the other four
and test on all of that writer's conversations; also score them with the
rule baseline. Prints macro-F1 per label.

    python bench/cross_writer.py --encoder DIR [--ensemble 3] [--cache FILE]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kefuqa.models.baseline import RulesEngine
from kefuqa.training.dataset import hand_files, load_corpus
from kefuqa.training.evaluation import evaluate_predictions
from kefuqa.training.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", type=Path, required=True, help="converted encoder folder (kefuqa encoder build)")
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--cache", type=Path, help="embedding cache file")
    args = ap.parse_args()
    convs = load_corpus(hand_files())
    rules = RulesEngine()
    print(f"{'held-out writer':<16}{'n':>5}  {'engine':<8}" + "".join(f"{n[:11]:>13}" for n in
          ("politeness", "emotional_control", "resolution", "sentiment")))
    for path in hand_files():
        writer = path.stem
        test = [c for c in convs if c.id.startswith(writer + "-")]
        cfg = TrainConfig(data=hand_files(), out=Path(tempfile.mkdtemp()), encoder_dir=args.encoder,
                          ensemble=args.ensemble, test_ids=[c.id for c in test], embedding_cache=args.cache)
        f1 = train(cfg, log=lambda *_: None)["metrics"]["macro_f1"]
        base = evaluate_predictions([c.labels.model_dump() for c in test], [r["labels"] for r in rules.score_batch(test)])
        print(f"{writer:<16}{len(test):>5}  {'neural':<8}" + "".join(f"{v:>13.3f}" for v in f1.values()))
        print(f"{'':<16}{'':>5}  {'rules':<8}" + "".join(f"{r.macro_f1:>13.3f}" for r in base.values()))


if __name__ == "__main__":
    main()

"""Rule-engine throughput on a generated 20,000-conversation archive.

    python bench/rules_throughput.py [--n 20000] [--runs 5]

Prints conversations/s (median of the runs, one process) for the engine
alone and for the whole batch pipeline (read → validate → mask → score → write).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import make_archive  # noqa: E402

from kefuqa.contract import Conversation  # noqa: E402
from kefuqa.io.readers import read_conversations  # noqa: E402
from kefuqa.models.baseline import RulesEngine  # noqa: E402
from kefuqa.pipeline import mask_conversation  # noqa: E402
from kefuqa.service.batch import score_file  # noqa: E402
from kefuqa.settings import Settings  # noqa: E402
from kefuqa.text.pii import PiiMasker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    archive = make_archive(tmp / "archive.jsonl", args.n)
    engine = RulesEngine()
    masker = PiiMasker()
    convs = [mask_conversation(c, masker) for _, c in read_conversations(archive) if isinstance(c, Conversation)]
    turns = sum(len(c.turns) for c in convs)
    engine_rates, pipeline_rates = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for i in range(0, len(convs), 64):
            engine.score_batch(convs[i : i + 64])
        engine_rates.append(len(convs) / (time.perf_counter() - t0))
        summary = score_file(archive, engine, Settings(), output=tmp / "out.jsonl", progress=False)
        pipeline_rates.append(summary.scored / summary.seconds)
    print(f"archive: {len(convs)} conversations, {turns} turns ({turns / len(convs):.1f} per conversation), "
          f"{args.runs} runs, 1 process")
    print(f"{'stage':<40}{'median conv/s':>15}{'min':>10}{'max':>10}")
    for name, rates in (
        ("rules engine (score_batch)", engine_rates),
        ("pipeline: read+validate+mask+score+write", pipeline_rates),
    ):
        print(f"{name:<40}{statistics.median(rates):>15.0f}{min(rates):>10.0f}{max(rates):>10.0f}")


if __name__ == "__main__":
    main()

"""How the int8 encoder's calls are laid out, and what each layout costs: the
shipped encoder on the same 200 conversations, one text per call (the engine's
layout: a text's dynamic int8 scale is its own), one conversation at a time (one
call, or length buckets whose longest text is at most R times the shortest), and
all texts length-sorted across conversations (32 a call). Runs interleaved (each
run times every layout once), median and best.

    python bench/encoder_calls.py MODEL_DIR [RUNS] [THREADS]   # e.g. $KEFUQA_HOME/registry/<version> 5 2
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from neural import conversations  # noqa: E402

from kefuqa.models.neural.engine import OnnxEmbedder  # noqa: E402
from kefuqa.models.neural.features import conversation_texts  # noqa: E402


def main() -> None:
    model_dir = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    convs = conversations(200)
    groups = [conversation_texts(c) for c in convs]
    texts = sorted({t for g in groups for t in g})
    single = OnnxEmbedder(model_dir, threads=threads)
    layouts = {"one text per call (the engine)": lambda: single(texts)}
    for name, ratio in (("one call", float("inf")), ("buckets R=2", 2.0), ("buckets R=1.25", 1.25)):
        embed = OnnxEmbedder(model_dir, threads=threads, micro_batch=64, bucket_ratio=ratio)
        layouts[f"per conversation, {name}"] = lambda embed=embed: [embed(g) for g in groups]
    across = OnnxEmbedder(model_dir, threads=threads, micro_batch=32, bucket_ratio=float("inf"))
    layouts["across conversations, 32 a call"] = lambda: across(texts)
    times: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(runs):  # interleaved, so that other load on the machine falls on every layout alike
        for name, fn in layouts.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"200 conversations, {len(texts)} distinct texts, {runs} interleaved runs, {threads} threads")
    print(f"{'layout':<45}{'median s':>9}{'best s':>8}")
    for name, ts in times.items():
        print(f"{name:<45}{statistics.median(ts):9.2f}{min(ts):8.2f}")


if __name__ == "__main__":
    main()

"""What keeping each conversation's texts apart costs: the shipped int8 encoder
on the same 200 conversations, one conversation at a time (one call, or length
buckets whose longest text is at most R times the shortest), against all texts
length-sorted across conversations (32 a call). Best of 2 runs.

    python bench/encoder_calls.py MODEL_DIR     # e.g. $KEFUQA_HOME/registry/<version>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from neural import conversations  # noqa: E402

from kefuqa.models.neural.engine import OnnxEmbedder  # noqa: E402
from kefuqa.models.neural.features import conversation_texts  # noqa: E402


def best(fn) -> float:
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    model_dir = Path(sys.argv[1])
    convs = conversations(200)
    groups = [conversation_texts(c) for c in convs]
    for name, ratio in (("one call", float("inf")), ("buckets R=2", 2.0), ("buckets R=1.5", 1.5),
                        ("buckets R=1.25 (default)", 1.25)):
        embed = OnnxEmbedder(model_dir, threads=2, bucket_ratio=ratio)
        print(f"per conversation, {name:<26}{best(lambda: [embed(g) for g in groups]):6.2f} s", flush=True)
    embed = OnnxEmbedder(model_dir, threads=2, micro_batch=32, bucket_ratio=float("inf"))
    texts = sorted({t for g in groups for t in g})
    print(f"{'across conversations, 32 a call':<45}{best(lambda: embed(texts)):6.2f} s")


if __name__ == "__main__":
    main()

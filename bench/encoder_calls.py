"""What one encoder call per conversation costs: the shipped int8 encoder on the
same 200 conversations, texts grouped per conversation (micro-batches of N
within it) or length-sorted across conversations (32 a call). Best of 2 runs.

    python bench/encoder_calls.py MODEL_DIR     # e.g. $KEFUQA_HOME/registry/<version>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from neural import conversations  # noqa: E402

from kefuqa.models.neural.engine import OnnxEmbedder  # noqa: E402
from kefuqa.models.neural.features import kept_turns, turn_text  # noqa: E402


def main() -> None:
    model_dir = Path(sys.argv[1])
    convs = conversations(200)
    groups = [sorted({turn_text(c.turns[i].text) for i in kept_turns(len(c.turns))}) for c in convs]
    for mb in (64, 16, 8, 4, 1):
        embed = OnnxEmbedder(model_dir, threads=2, micro_batch=mb)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            for g in groups:
                embed(g)
            times.append(time.perf_counter() - t0)
        print(f"per conversation, micro-batch {mb:>2}: {min(times):.2f} s", flush=True)
    embed = OnnxEmbedder(model_dir, threads=2, micro_batch=32)
    texts = sorted({t for g in groups for t in g})
    t0 = time.perf_counter()
    embed(texts)
    print(f"across conversations, 32 a call: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()

"""How the int8 encoder's calls are laid out, and what each layout costs: a model
with fixed int8 scales on the same 200 conversations, scored in batches of 64 as
``kefuqa score`` does (``KEFUQA_BATCH_SIZE``; each batch's distinct texts embedded
together), with one text per call, or texts of one token length sharing calls of at
most 8 (the engine's MICRO_BATCH), 32 or 128; calls run side by side on the cores,
one thread each. Runs interleaved (each run times every layout once), median and
best, and the ratio of each layout's median to one text per call.

    python bench/encoder_calls.py MODEL_DIR [RUNS] [THREADS] [BATCH]   # e.g. $KEFUQA_HOME/registry/<version> 5 2 64
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from neural import conversations  # noqa: E402

from kefuqa.models.neural.engine import MICRO_BATCH, QUERY_PREFIX, OnnxEmbedder  # noqa: E402
from kefuqa.models.neural.features import conversation_texts  # noqa: E402
from kefuqa.settings import Settings  # noqa: E402


def main() -> None:
    model_dir = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else Settings().batch_size
    convs = conversations(200)
    batches = [sorted({t for c in convs[i : i + batch] for t in conversation_texts(c)})
               for i in range(0, len(convs), batch)]
    layouts = {"one text per call": OnnxEmbedder(model_dir, threads=threads, micro_batch=1)}
    for cap in sorted({8, 32, 128, MICRO_BATCH}):
        name = f"one token length, at most {cap} a call" + (" (the engine)" if cap == MICRO_BATCH else "")
        layouts[name] = OnnxEmbedder(model_dir, threads=threads, micro_batch=cap)
    lengths = [[len(x.ids) for x in layouts["one text per call"].tokenizer.encode_batch([QUERY_PREFIX + t for t in b])]
               for b in batches]
    calls = {name: sum(len(e.buckets(n)) for n in lengths) for name, e in layouts.items()}
    times: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(runs):  # interleaved, so that other load on the machine falls on every layout alike
        for name, embed in layouts.items():
            t0 = time.perf_counter()
            for texts in batches:
                embed(texts)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["one text per call"])
    n_texts = sum(len(b) for b in batches)
    print(f"200 conversations in batches of {batch}, {n_texts} distinct texts per batch in all, "
          f"{runs} interleaved runs, {threads} threads")
    print(f"{'layout':<50}{'calls':>7}{'median s':>10}{'best s':>8}{'speed-up':>10}")
    for name, ts in times.items():
        print(f"{name:<50}{calls[name]:>7}{statistics.median(ts):10.2f}{min(ts):8.2f}"
              f"{base / statistics.median(ts):9.2f}×")


if __name__ == "__main__":
    main()

"""Neural engine benchmark, all in one run on the same 1,000 conversations:

- throughput of the int8 ONNX engine vs the same model with the PyTorch fp32
  eager encoder (and, for context, the fp32 ONNX graph in onnxruntime), and the
  share of conversations whose labels agree;
- p50/p99 latency of one 20-turn conversation (int8);
- peak RSS of each engine (measured in its own child process);
- model size before/after vocabulary pruning;
- with ``--student DIR`` (a head trained by ``kefuqa train --student``), the same int8
  engine on the distilled student, timed in the same interleaved runs, with its labels'
  agreement with the teacher's.

    python bench/neural.py [--n 1000] [--runs 2] [--threads 2] [--student runs/s4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path


def conversations(n: int, data: list[Path] | None = None):
    from kefuqa.pipeline import mask_conversation
    from kefuqa.text.pii import PiiMasker
    from kefuqa.training.augment import augment_corpus
    from kefuqa.training.dataset import hand_files, load_corpus

    convs = load_corpus(data or hand_files())
    if len(convs) < n:
        convs += augment_corpus(convs, 1, seed=1)[: n - len(convs)]
    return [mask_conversation(c, PiiMasker()) for c in convs[:n]]


def _engine(kind: str, model_dir: Path, enc_dir: Path, threads: int):
    from kefuqa.models.neural.engine import NeuralEngine

    if kind in ("int8", "student-int8"):
        return NeuralEngine(model_dir, threads=threads)  # the default: one encoder call per text
    if kind == "ort-fp32":
        return NeuralEngine(model_dir, threads=threads, encoder_file="encoder.onnx")
    import torch

    from kefuqa.models.encoder.embed import Encoder

    torch.set_num_threads(threads)
    encoder = Encoder(enc_dir)
    # fp32 outputs do not depend on batching, so it gets its fastest form: all distinct
    # texts of the 32 conversations, length-sorted, 32 per call.
    return NeuralEngine(model_dir, embedder=lambda t: encoder.embed(t, batch_size=32, max_length=128))


def _run(kind: str, model_dir: str, enc_dir: str, n: int, threads: int, latency: bool, out: mp.Queue,
         data: list[str] | None = None) -> None:
    convs = conversations(n, [Path(p) for p in data] if data else None)
    engine = _engine(kind, Path(model_dir), Path(enc_dir), threads)
    t0 = time.perf_counter()
    labels = [r["labels"] for i in range(0, n, 32) for r in engine.score_batch(convs[i : i + 32])]
    rate = n / (time.perf_counter() - t0)
    lat = []
    if latency:
        long = [c for c in convs if len(c.turns) >= 20] or convs
        one = long[0].model_copy(update={"turns": (long[0].turns * 2)[:20]})
        for _ in range(60):
            t0 = time.perf_counter()
            engine.score_batch([one])
            lat.append((time.perf_counter() - t0) * 1000)
    status = Path("/proc/self/status").read_text()
    peak = float(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
    out.put({"kind": kind, "rate": rate, "labels": labels, "latency_ms": lat, "peak_rss_mb": peak})


def _paired(rates: list[float], baseline: list[float]) -> list[float]:
    """Ratios of adjacent passes: the runs are interleaved, so each pair saw the same load."""
    return [a / b for a, b in zip(rates, baseline)]


def _agreement(labels: list[dict[str, str]], other: list[dict[str, str]]) -> str:
    """Per label, the share of conversations both give the same value."""
    return ", ".join(f"{k} {sum(a[k] == b[k] for a, b in zip(labels, other)) / len(labels):.1%}" for k in labels[0])


def _p50_p99(ms: list[float]) -> tuple[float, float]:
    lat = sorted(ms)
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]


def sizes(tmp: Path, kept: Path) -> list[tuple[str, int, float]]:
    from safetensors import safe_open

    from kefuqa.models.encoder.convert import convert
    from kefuqa.models.encoder.prune import load_kept_ids
    from kefuqa.training.export import export_encoder, quantize_int8

    rows = []
    variants = (("full vocabulary (250,002 pieces)", None), ("pruned vocabulary", set(load_kept_ids(kept).tolist())))
    for name, keep in variants:
        d = convert(tmp / name.split()[0], keep)
        with safe_open(str(d / "model.safetensors"), "np") as f:
            # a safe_open handle has keys() but supports neither `in` nor iteration
            params = sum(f.get_tensor(k).size for k in f.keys())  # noqa: SIM118
        int8 = quantize_int8(export_encoder(d, tmp / f"{name.split()[0]}.onnx"), tmp / f"{name.split()[0]}.int8.onnx",
                             d / "tokenizer.json")
        rows.append((name, params, (d / "model.safetensors").stat().st_size / 2**20, int8.stat().st_size / 2**20))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, nargs="+",
                    help="conversations to time (default: the training corpus, topped up with augmented copies)")
    ap.add_argument("--student", type=Path,
                    help="also time this trained student artifact (kefuqa train --student --out DIR)")
    args = ap.parse_args()
    from kefuqa.training.build_default import artifact_encoder, build_model_dir, build_version, teacher_artifact
    from kefuqa.training.export import export_encoder

    tmp = Path(tempfile.mkdtemp())
    kept = teacher_artifact() / "kept_ids.json"
    version = build_version(tmp / "home", teacher_artifact(), log=lambda *_: None)
    model_dir = tmp / "home" / "registry" / version
    enc_dir = artifact_encoder(teacher_artifact(), tmp / "enc")  # the same (fine-tuned) encoder, fp32
    export_encoder(enc_dir, model_dir / "encoder.onnx")
    dirs = {"int8": model_dir, "ort-fp32": model_dir, "fp32": model_dir}
    if args.student:
        dirs["student-int8"] = build_model_dir(args.student, tmp / "student")
    ctx = mp.get_context("spawn")
    kinds = tuple(dirs)
    results = {k: {"rates": [], "labels": [], "latency_ms": [], "peak_rss_mb": 0.0} for k in kinds}
    # Each timed pass is a fresh process (so peak RSS is the engine's own), and the runs are
    # interleaved across engines so that load from other users of the machine falls on all alike.
    for run in range(args.runs):
        for kind in kinds:
            q = ctx.Queue()
            p = ctx.Process(target=_run, args=(kind, str(dirs[kind]), str(enc_dir), args.n, args.threads,
                                               kind.endswith("int8") and run == 0, q,
                                               [str(p) for p in args.data] if args.data else None))
            p.start()
            res = q.get()
            p.join()
            r = results[kind]
            r["rates"].append(res["rate"])
            r["labels"] = res["labels"]
            r["latency_ms"] += res["latency_ms"]
            r["peak_rss_mb"] = max(r["peak_rss_mb"], res["peak_rss_mb"])
    i8, o32, f32, st = results["int8"], results["ort-fp32"], results["fp32"], results.get("student-int8")
    r32 = statistics.median(f32["rates"])
    rows = [("onnxruntime int8 (the default)", i8), ("onnxruntime fp32, same graph", o32),
            ("PyTorch fp32 eager (same model)", f32)] + ([(f"student int8 ({args.student.name})", st)] if st else [])
    print(f"{args.n} conversations, {args.runs} interleaved runs each, {args.threads} threads, a process per run")
    print(f"{'engine':<34}{'conv/s (median)':>16}{'vs fp32':>9}{'peak RSS MB':>13}")
    for name, res in rows:
        r = statistics.median(res["rates"])
        print(f"{name:<34}{r:>16.1f}{r / r32:>8.2f}x{res['peak_rss_mb']:>13.0f}")
    paired = _paired(i8["rates"], f32["rates"])
    print(f"int8 vs PyTorch fp32 per run: {', '.join(f'{x:.2f}x' for x in paired)}; "
          f"median {statistics.median(paired):.2f}x")
    agree = sum(a == b for a, b in zip(i8["labels"], f32["labels"])) / args.n
    print(f"label agreement int8 vs PyTorch fp32: all four {agree:.1%}; {_agreement(i8['labels'], f32['labels'])}")
    print("one 20-turn conversation, int8: p50 {:.1f} ms, p99 {:.1f} ms".format(*_p50_p99(i8["latency_ms"])))
    if st:
        print("student int8 vs PyTorch fp32 teacher per run: "
              + ", ".join(f"{x:.2f}x" for x in _paired(st["rates"], f32["rates"])))
        print("one 20-turn conversation, student int8: p50 {:.1f} ms, p99 {:.1f} ms".format(
            *_p50_p99(st["latency_ms"])))
        print(f"label agreement student int8 vs teacher int8: {_agreement(st['labels'], i8['labels'])}")
    print(f"{'encoder':<36}{'parameters':>14}{'fp32 MB':>10}{'int8 ONNX MB':>14}")
    for name, params, fp32_mb, i8_mb in sizes(tmp, kept):
        print(f"{name:<36}{params:>14,}{fp32_mb:>10.1f}{i8_mb:>14.1f}")
    print(json.dumps({"int8_rates": i8["rates"], "ort_fp32_rates": o32["rates"], "fp32_rates": f32["rates"]}
                     | ({"student_int8_rates": st["rates"]} if st else {})))


if __name__ == "__main__":
    main()

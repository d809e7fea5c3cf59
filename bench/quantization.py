"""How the encoder is quantised decides speed and int8/fp32 agreement; this
measures the options side by side, in one run, on the fixed test split:

- encoder time for the test split's texts, one conversation at a time, its texts in the
  engine's calls (texts of one token length share a call when the activation scales are
  fixed; one text per call when they are taken per call), against PyTorch fp32 eager of the same
  model (all texts length-sorted, 32 a call); runs interleaved, medians;
- cosine of each text's embedding to PyTorch fp32 (mean and worst);
- labels of the current model's head on those embeddings: macro-F1 per label and
  the number of test conversations whose label differs from fp32.

    python bench/quantization.py [--model-dir DIR] [--runs 3] [--threads 2]

Without --model-dir the shipped default is built into a temporary home.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def variants(enc_dir: Path, tmp: Path) -> dict[str, Path]:
    from kefuqa.training.export import export_encoder, quantize_int8

    fp32 = export_encoder(enc_dir, tmp / "encoder.onnx")
    tok = enc_dir / "tokenizer.json"
    out = {"onnxruntime fp32": fp32,
           "int8, SmoothQuant alpha 0.75, fixed scales (default)": quantize_int8(fp32, tmp / "sq75.onnx", tok),
           "same, scales per call (the shipped teacher)": quantize_int8(fp32, tmp / "dynamic.onnx", tok,
                                                                         static=False),
           "int8, SmoothQuant 0.75, SkipLayerNorm fused": quantize_int8(fp32, tmp / "sln.onnx", tok,
                                                                         skip_layer_norm=True),
           "int8, not smoothed": quantize_int8(fp32, tmp / "plain.onnx", tok, alpha=None)}
    for alpha in (0.5, 0.9):
        out[f"int8, SmoothQuant alpha {alpha}"] = quantize_int8(fp32, tmp / f"sq{alpha}.onnx", tok, alpha=alpha)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the optimiser and quantisers log every node
    import shutil

    import torch

    from kefuqa.contract import LABELS
    from kefuqa.models.baseline import RulesEngine
    from kefuqa.models.encoder.embed import Encoder
    from kefuqa.models.neural.engine import OnnxEmbedder, session
    from kefuqa.models.neural.features import build_inputs, conversation_texts
    from kefuqa.training.build_default import artifact_encoder, build_version, teacher_artifact
    from kefuqa.training.dataset import hand_files, load_corpus, load_split_ids, split
    from kefuqa.training.evaluation import evaluate_predictions

    tmp = Path(tempfile.mkdtemp())
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = tmp / "home" / "registry" / build_version(tmp / "home", teacher_artifact(), log=lambda *_: None)
    enc_dir = artifact_encoder(teacher_artifact(), tmp / "enc")
    shutil.copy(enc_dir / "tokenizer.json", tmp / "tokenizer.json")
    convs = split(load_corpus(hand_files()), load_split_ids()).test
    groups = [conversation_texts(c) for c in convs]
    texts = sorted({t for g in groups for t in g})
    rules, head = RulesEngine(), session(model_dir / "head.onnx", args.threads)
    gold = [c.labels.model_dump() for c in convs]

    def labels(table_per_conv):
        out = []
        for c, table in zip(convs, table_per_conv):
            inp = build_inputs([c], rules, lambda ts, table=table: np.stack([table[t] for t in ts]))
            logits = head.run(None, {"turns": inp.turns, "mask": inp.mask, "global": inp.global_feats})[0]
            out.append({n: LABELS[n][int(logits[0, j].argmax())] for j, n in enumerate(LABELS)})
        return out

    torch.set_num_threads(args.threads)
    encoder = Encoder(enc_dir)
    embedders = {name: OnnxEmbedder(tmp, encoder_file=path.name, threads=args.threads)
                 for name, path in variants(enc_dir, tmp).items()}
    # Runs are interleaved (each run times every encoder once) so that load from other
    # users of this shared machine falls on all of them alike; medians are per encoder.
    times: dict[str, list[float]] = {name: [] for name in ["PyTorch fp32 eager", *embedders]}
    tables: dict[str, list[dict]] = {}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ref = dict(zip(texts, encoder.embed(texts, batch_size=32, max_length=128)))
        times["PyTorch fp32 eager"].append(time.perf_counter() - t0)
        for name, emb in embedders.items():
            t0 = time.perf_counter()
            tables[name] = [dict(zip(g, emb(g))) for g in groups]
            times[name].append(time.perf_counter() - t0)
    t_ref = statistics.median(times["PyTorch fp32 eager"])
    ref_labels = labels([ref] * len(convs))
    rows = [("PyTorch fp32 eager", t_ref, 1.0, 1.0, ref_labels)]
    for name, tabs in tables.items():
        cos = np.array([float(table[t] @ ref[t]) for table in tabs for t in table])
        rows.append((name, statistics.median(times[name]), cos.mean(), cos.min(), labels(tabs)))
    print(f"{len(convs)} test conversations, {len(texts)} distinct texts, {args.threads} threads, "
          f"median of {args.runs} runs; head of model {model_dir.name}")
    head_cols = "".join(f"{n[:10]:>11}" for n in LABELS)
    print(f"{'encoder':<44}{'time s':>8}{'vs fp32':>9}{'cos mean':>10}{'cos min':>9} | macro-F1 {head_cols} | "
          f"conversations whose label differs from fp32 {head_cols}")
    for name, t, cmean, cmin, lab in rows:
        reps = evaluate_predictions(gold, lab)
        f1 = "".join(f"{reps[n].macro_f1:>11.3f}" for n in LABELS)
        diff = "".join(f"{sum(a[n] != b[n] for a, b in zip(lab, ref_labels)):>11d}" for n in LABELS)
        print(f"{name:<44}{t:>8.2f}{t_ref / t:>8.2f}x{cmean:>10.5f}{cmin:>9.4f} | {'':9}{f1} | {'':44}{diff}")


if __name__ == "__main__":
    main()

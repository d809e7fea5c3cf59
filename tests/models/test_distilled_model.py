"""The bundled distilled student: built offline beside the teacher as a registry version of
its own, named as a student, and its int8 build agreeing with its own PyTorch fp32 encoder on
the held-out writers as the teacher's does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kefuqa.models.encoder.embed import Encoder
from kefuqa.models.neural.engine import NeuralEngine
from kefuqa.models.speaker_roles import ROLE_FILE, read_role_file
from kefuqa.pipeline import mask_conversation
from kefuqa.text.pii import PiiMasker
from kefuqa.training.build_default import artifact_encoder, distilled_artifact
from kefuqa.training.dataset import load_corpus, outside_files
from kefuqa.training.evaluation import evaluate_predictions

STUDENT = json.loads((distilled_artifact() / "model.json").read_text(encoding="utf-8"))


def kefuqa(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {"KEFUQA_HOME": str(home), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([sys.executable, "-m", "kefuqa.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    built = kefuqa(home, "models", "build-default", "--student")
    assert built.returncode == 0, built.stderr
    assert f"serve it with: kefuqa models promote {STUDENT['version']}" in built.stdout
    return home


def test_the_student_is_a_version_beside_the_teacher_and_says_so(home: Path) -> None:
    assert STUDENT["encoder"] == {"role": "student", "layers": 4, "teacher_layers_kept": [2, 5, 8, 11]}
    listing = kefuqa(home, "models", "list").stdout.splitlines()
    champion = next(line for line in listing if line.startswith("*"))
    student = next(line for line in listing if STUDENT["version"] in line)
    assert champion.endswith("teacher 12 layers") and not student.startswith("*")
    assert student.endswith("student 4 layers")
    model = home / "registry" / STUDENT["version"]
    # Adapters only: the student is rebuilt from the teacher, never stored.
    assert sorted(p.name for p in (model / "student").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "student.json"]
    # Its speaker-role check was fitted on its own embeddings, not the teacher's.
    assert read_role_file(model / ROLE_FILE).encoder.version == STUDENT["version"]
    promoted = kefuqa(home, "models", "promote", STUDENT["version"])
    assert promoted.returncode == 0, promoted.stderr
    examples = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"
    scored = kefuqa(home, "score", str(examples), "-q", "--workers", "1")
    assert scored.returncode == 0, scored.stderr
    records = [json.loads(line) for line in scored.stdout.splitlines()]
    assert len(records) == 30 and all(r["model"]["version"] == STUDENT["version"] for r in records)


def test_student_int8_agrees_with_its_pytorch_fp32_on_the_held_out_writers(home: Path, tmp_path: Path) -> None:
    held_out = [mask_conversation(c, PiiMasker()) for c in load_corpus(outside_files())]
    model = home / "registry" / STUDENT["version"]
    int8 = NeuralEngine(model)
    encoder = Encoder(artifact_encoder(distilled_artifact(), tmp_path))
    fp32 = NeuralEngine(model, embedder=lambda texts: encoder.embed(texts, batch_size=64, max_length=128))
    got = {name: [r for i in range(0, len(held_out), 32) for r in e.score_batch(held_out[i : i + 32])]
           for name, e in (("int8", int8), ("fp32", fp32))}
    reports = evaluate_predictions([c.labels.model_dump() for c in held_out], [r["labels"] for r in got["int8"]])
    for name, rep in reports.items():
        assert rep.macro_f1 >= 0.85, (name, rep.macro_f1)  # a floor on writers the model never saw
        agree = np.mean([a["labels"][name] == b["labels"][name] for a, b in zip(got["int8"], got["fp32"])])
        assert agree >= 0.99, (name, agree)

"""The bundled distilled student: the default model, built offline with the teacher beside
it as a registry version of its own, named as a student, served by every door unless
``--engine teacher`` asks for the teacher, and its int8 build agreeing with its own PyTorch
fp32 encoder on the held-out writers as the teacher's does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kefuqa.models.neural.engine import NeuralEngine
from kefuqa.models.registry import Registry
from kefuqa.models.speaker_roles import ROLE_FILE, read_role_file
from kefuqa.service.cli import default_workers
from kefuqa.training.build_default import student_artifact, teacher_artifact
from tests.models.held_out import (
    assert_int8_agrees_with_fp32,
    assert_macro_f1_floor,
    assert_scores_do_not_depend_on_the_batch,
    held_out_conversations,
    same_length_texts,
    score,
)

STUDENT = json.loads((student_artifact() / "model.json").read_text(encoding="utf-8"))
TEACHER = json.loads((teacher_artifact() / "model.json").read_text(encoding="utf-8"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"


def kefuqa(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {"KEFUQA_HOME": str(home), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([sys.executable, "-m", "kefuqa.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    built = kefuqa(home, "models", "build-default")
    assert built.returncode == 0, built.stderr
    assert f"{STUDENT['version']} is now the current model" in built.stdout
    assert "serve the student" not in built.stdout
    return home


def versions_scored(home: Path, *argv: str) -> set[str]:
    scored = kefuqa(home, "score", str(EXAMPLES), "-q", "--workers", "1", *argv)
    assert scored.returncode == 0, scored.stderr
    records = [json.loads(line) for line in scored.stdout.splitlines()]
    assert len(records) == 30
    return {r["model"]["version"] for r in records}


def test_the_student_is_the_default_and_the_teacher_a_version_beside_it(home: Path) -> None:
    assert STUDENT["encoder"] == {"role": "student", "layers": 2, "teacher_layers_kept": [5, 11], "fine_tuned": True}
    listing = kefuqa(home, "models", "list").stdout.splitlines()
    champion = next(line for line in listing if line.startswith("*"))
    teacher = next(line for line in listing if TEACHER["version"] in line)
    assert STUDENT["version"] in champion and champion.endswith("student 2 layers, fine-tuned")
    assert teacher.endswith("teacher 12 layers") and not teacher.startswith("*")
    model = home / "registry" / STUDENT["version"]
    # Adapters only (distilled, then fine-tuned on the labels): the student is rebuilt from the teacher, never stored.
    assert sorted(p.name for p in (model / "student").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "student.json", "tuned"]
    assert sorted(p.name for p in (model / "student" / "tuned").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors"]
    # Its speaker-role check was fitted on its own embeddings, not the teacher's.
    assert read_role_file(model / ROLE_FILE).encoder.version == STUDENT["version"]
    assert versions_scored(home) == {STUDENT["version"]}
    assert versions_scored(home, "--engine", "teacher") == {TEACHER["version"]}
    assert versions_scored(home, "--engine", "student") == {STUDENT["version"]}
    # Without --workers, a neural engine runs one process per two cores, each with two encoder threads.
    default = kefuqa(home, "score", str(EXAMPLES), "-o", str(home / "out.jsonl"))
    workers = default_workers("neural", os.cpu_count() or 1)
    plural = "" if workers == 1 else "s"
    assert default.stderr.rstrip().endswith(f"{STUDENT['version']}, local, {workers} worker{plural}]"), default.stderr
    again = kefuqa(home, "models", "build-default")  # nothing to do, and the champion stays
    assert again.returncode == 0 and again.stdout.count("already built") == 2, again.stdout


CANDIDATE = json.loads((Path(__file__).resolve().parents[2] / "training" / "candidates" / "student4-60650fdb"
                        / "model.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("champion", "hint"), [
    (TEACHER, "the champion is the teacher; serve the bundled student with: "
              f"kefuqa models promote {STUDENT['version']}"),
    # the 4-layer student reads higher on the outside set, so the gate refuses the faster 2-layer one
    (CANDIDATE, f"the champion is {CANDIDATE['version']}; the bundled student {STUDENT['version']} is faster but "
                f"the gate refuses it (mean macro-F1 "),
], ids=["teacher", "4-layer student"])
def test_a_registry_keeps_its_champion_and_is_told_how_to_serve_the_bundled_student(
        tmp_path: Path, champion: dict, hint: str) -> None:
    home = tmp_path / "home"
    registry = Registry(home / "registry")
    champion_dir = registry.root / champion["version"]
    champion_dir.mkdir(parents=True)  # what an earlier build left: the champion
    (champion_dir / "metadata.json").write_text(json.dumps(champion), encoding="utf-8")
    registry.promote(champion["version"])
    built = kefuqa(home, "models", "build-default")
    assert built.returncode == 0, built.stderr
    assert hint in built.stdout, built.stdout
    assert registry.current() == champion["version"]
    # a student champion is the student role's answer; under a teacher, the newest student
    assert registry.by_role("student") == (CANDIDATE if champion is CANDIDATE else STUDENT)["version"]
    assert registry.by_role("teacher") == TEACHER["version"]
    assert (f"kefuqa models promote {STUDENT['version']} --force" in built.stdout) == (champion is CANDIDATE)


def test_student_int8_agrees_with_its_pytorch_fp32_on_the_held_out_writers(home: Path, tmp_path: Path) -> None:
    held_out = held_out_conversations()
    model = home / "registry" / STUDENT["version"]
    int8_records = score(NeuralEngine(model), held_out)
    assert_macro_f1_floor(held_out, int8_records)
    assert_int8_agrees_with_fp32(model, student_artifact(), held_out, int8_records, tmp_path)


def test_the_student_fixes_its_int8_scales_and_shares_encoder_calls(home: Path) -> None:
    """The student's activation scales are fixed at build time (training/static_int8.py),
    so texts of one token length share encoder calls: a call holds one length (no
    padding), at most MICRO_BATCH texts, longest first, and a text's vector is
    bit-identical alone, in a call with texts of its length, among a whole batch, and
    on one text per call."""
    import numpy as np
    import onnx

    from kefuqa.models.neural.engine import MICRO_BATCH, OnnxEmbedder
    from kefuqa.models.neural.features import conversation_texts

    model = home / "registry" / STUDENT["version"]
    ops = [n.op_type for n in onnx.load(str(model / "encoder.int8.onnx")).graph.node]
    # Four fixed activation quantizers per layer (the four inputs its linear maps read), none computed per call.
    assert ops.count("QuantizeLinear") == 4 * STUDENT["encoder"]["layers"] and "DynamicQuantizeLinear" not in ops
    embed = OnnxEmbedder(model)
    assert embed.micro_batch == MICRO_BATCH
    lengths = [10, 40, 10, 12, 10, 40, 9, 10]
    assert embed.buckets(lengths) == [[1, 5], [3], [0, 2, 4, 7], [6]]
    assert OnnxEmbedder(model, micro_batch=3).buckets(lengths) == [[1, 5], [3], [0, 2, 4], [7], [6]]
    with pytest.raises(ValueError, match="at least 1 text per encoder call, not 0"):
        OnnxEmbedder(model, micro_batch=0)
    chats = held_out_conversations()[:40]
    same = same_length_texts(embed, chats)
    assert len(same) >= 4
    alone = embed([same[0]])[0]
    assert np.array_equal(alone, embed(same)[0])
    everything = sorted({t for c in chats for t in conversation_texts(c)})
    assert np.array_equal(alone, embed(everything)[everything.index(same[0])])
    assert np.array_equal(embed(same), OnnxEmbedder(model, micro_batch=1)(same))


def test_student_scores_do_not_depend_on_the_batch(home: Path) -> None:
    assert_scores_do_not_depend_on_the_batch(NeuralEngine(home / "registry" / STUDENT["version"]),
                                             held_out_conversations()[:12])

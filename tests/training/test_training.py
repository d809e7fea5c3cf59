"""Training runs end to end on tiny data (a few steps) and exports a head
that onnxruntime loads; quality is measured by the documented full run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from kefuqa.models.encoder.convert import convert
from kefuqa.models.encoder.prune import load_kept_ids
from kefuqa.models.neural.head import N_GLOBAL, TURN_IN
from kefuqa.training.build_default import teacher_artifact
from kefuqa.training.train import TrainConfig, train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"


def test_training_a_few_steps_writes_a_loadable_artifact(tmp_path):
    kept = teacher_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    cfg = TrainConfig(data=[EXAMPLES], out=tmp_path / "out", encoder_dir=enc, epochs=2, ensemble=2,
                      augment_copies=1, review_sentences=8, test_ids=ids[:8], seed=3, outside=[],
                      consistency=1.0)  # both views each step, with the agreement loss
    meta = train(cfg, log=lambda *_: None)
    assert set(meta["metrics"]["macro_f1"]) == {"politeness", "emotional_control", "resolution", "sentiment"}
    assert meta["split_hash"] and meta["data_hash"] and meta["version"].startswith("20")
    # The report covers the int8 model (what ships), the PyTorch fp32 one and their agreement.
    m = meta["training"]["metrics"]
    assert set(m["fp32"]["macro_f1"]) == set(m["macro_f1"])
    assert all(0.0 <= v <= 1.0 for v in m["int8_fp32_agreement"].values())
    for name in ("head.onnx", "model.json", "training.json", "kept_ids.json"):
        assert (cfg.out / name).exists()
    sess = ort.InferenceSession(str(cfg.out / "head.onnx"))
    logits, attn, sent = sess.run(None, {"turns": np.zeros((3, 5, TURN_IN), np.float32),
                                         "mask": np.ones((3, 5), bool), "global": np.zeros((3, N_GLOBAL), np.float32)})
    assert logits.shape == (3, 4, 3) and attn.shape == (3, 4, 5) and sent.shape == (3, 5, 3)
    # Same seed, same data → same labels; calibration may differ in the last digits
    # (float sums in the CPU kernels depend on how threads split the work).
    again = train(TrainConfig(**{**cfg.__dict__, "out": tmp_path / "again"}), log=lambda *_: None)
    assert again["metrics"]["macro_f1"] == meta["metrics"]["macro_f1"]
    for name, ece in meta["metrics"]["ece"].items():
        assert again["metrics"]["ece"][name] == pytest.approx(ece, abs=0.01)


def test_lora_finetune_ships_adapters_that_rebuild_the_tuned_encoder(tmp_path):
    """Stage 1 on tiny data: adapters are written, merged into the converted
    encoder they change its embeddings, and the artifact (adapters + head)
    rebuilds a runnable model the way `kefuqa models build-default` does."""
    from safetensors import safe_open

    from kefuqa.models.encoder.embed import Encoder
    from kefuqa.models.neural.engine import NeuralEngine
    from kefuqa.training.build_default import build_model_dir
    from kefuqa.training.dataset import load_corpus
    from kefuqa.training.finetune import apply_lora

    kept = teacher_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    cfg = TrainConfig(data=[EXAMPLES], out=tmp_path / "out", encoder_dir=enc, epochs=1, ensemble=1,
                      augment_copies=0, review_sentences=8, test_ids=ids[:8], seed=3, finetune_epochs=1,
                      outside=[])
    meta = train(cfg, log=lambda *_: None)
    lora = cfg.out / "lora"
    assert (lora / "adapter_config.json").exists()
    with safe_open(str(lora / "adapter_model.safetensors"), "np") as f:
        names = list(f.keys())
        assert names and all("lora_" in n for n in names)
        assert sum(f.get_tensor(n).size for n in names) < 200_000  # adapters only: the encoder is rebuilt
    assert "LoRA" in meta["base"]
    text = "亲，这个问题我马上帮您处理"
    tuned = apply_lora(enc, lora, tmp_path / "tuned")
    delta = np.abs(Encoder(enc).embed(text) - Encoder(tuned).embed(text)).max()
    assert delta > 1e-5  # the adapters changed the encoder
    engine = NeuralEngine(build_model_dir(cfg.out, tmp_path / "model"))
    record = engine.score_batch(load_corpus([EXAMPLES])[:1])[0]
    assert set(record["labels"]) == {"politeness", "emotional_control", "resolution", "sentiment"}


def test_adapters_on_all_linear_layers_reach_the_feed_forward_layers_but_not_the_pooler(tmp_path):
    """More capacity than the query/value adapters: every linear layer inside the encoder
    layers gets one (the pooler, which no loss reaches, none), and they rebuild the encoder."""
    from safetensors import safe_open

    from kefuqa.models.encoder.embed import Encoder
    from kefuqa.training.dataset import load_corpus
    from kefuqa.training.finetune import FinetuneConfig, apply_lora, finetune

    kept = teacher_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    convs = load_corpus([EXAMPLES])  # enough steps for the warm-up to reach a learning rate that moves them
    lora = finetune(convs, enc, tmp_path / "run", FinetuneConfig(epochs=1, rank=4, modules="all"),
                    log=lambda *_: None)
    with safe_open(str(lora / "adapter_model.safetensors"), "np") as f:
        names = list(f.keys())
    for part in ("query", "key", "value", "attention.output.dense", "intermediate.dense", "11.output.dense"):
        assert any(f".{part}.lora_A" in n for n in names), part
    assert not any("pooler" in n for n in names)
    text = "亲，这个问题我马上帮您处理"
    tuned = Encoder(apply_lora(enc, lora, tmp_path / "tuned"))
    assert np.abs(Encoder(enc).embed(text) - tuned.embed(text)).max() > 1e-5
    for bad, message in (({"modules": "ffn"}, "expected one of attention, all"), ({"rank": 0}, "at least 1")):
        with pytest.raises(ValueError, match=message):
            finetune(convs, enc, tmp_path / "bad", FinetuneConfig(epochs=1, **bad), log=lambda *_: None)


def _write_outside(path: Path, n: int) -> list[dict]:
    """The first ``n`` example conversations under new ids, each naming its deciding turns."""
    rows = []
    for i, line in enumerate(EXAMPLES.read_text(encoding="utf-8").splitlines()[:n]):
        row = json.loads(line)
        agent = [j for j, t in enumerate(row["turns"]) if t["speaker"] == "agent"]
        customer = [j for j, t in enumerate(row["turns"]) if t["speaker"] == "customer"]
        row["id"] = f"x9-{i:04d}"
        row["rationale"] = {"politeness": agent[:1], "emotional_control": agent[:1], "resolution": agent[-1:],
                            "sentiment": customer[-1:]}
        rows.append(row)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_outside_writers_are_reported_used_by_the_gate_and_kept_out_of_training(tmp_path):
    from kefuqa.training.dataset import OUTSIDE_DIR

    kept = teacher_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    outside = tmp_path / "outside.jsonl"
    _write_outside(outside, 6)
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    logged: list[str] = []
    cfg = TrainConfig(data=[EXAMPLES], out=tmp_path / "out", encoder_dir=enc, epochs=2, ensemble=1,
                      augment_copies=1, review_sentences=8, test_ids=ids[20:26], seed=3, outside=[outside])
    meta = train(cfg, log=logged.append)
    m = meta["training"]["metrics"]
    # The registry compares models on the held-out writers, not on the in-writer split.
    assert meta["eval_set"] == "outside"
    assert meta["metrics"]["macro_f1"] == m["outside"]["macro_f1"]
    assert meta["metrics_test_split"]["macro_f1"] == m["macro_f1"]
    assert m["outside"]["n_test"] == 6
    channels = m["outside"]["channels"]
    assert sum(c["n"] for c in channels.values()) == 6 and set(channels) <= {"chat", "voice"}
    hits = m["outside"]["evidence_on_rationale"]
    assert hits["politeness"]["n"] == 6 and 0.0 <= hits["politeness"]["hit_rate"] <= 1.0
    # The outside copies of ex-0001…ex-0006 are near-duplicates: those six leave training.
    assert "near-duplicates dropped 6" in logged[0]
    # A held-out writer's file given as training data is refused before anything runs.
    with pytest.raises(ValueError, match="held-out"):
        train(TrainConfig(**{**cfg.__dict__, "data": [EXAMPLES, OUTSIDE_DIR / "x1.jsonl"]}), log=lambda *_: None)


def test_rationale_loss_rewards_attention_on_the_deciding_turns():
    import torch

    from kefuqa.training.rationale import rationale_loss

    target = torch.zeros(1, 4, 5)
    target[0, 0, 2] = 1.0
    has = target.sum(-1) > 0
    on = torch.full((1, 4, 5), 0.01)
    on[0, 0, 2] = 0.96
    uniform = torch.full((1, 4, 5), 0.2)
    assert float(rationale_loss(on, target, has)) < 0.05
    assert abs(float(rationale_loss(uniform, target, has)) - np.log(5)) < 1e-4
    assert float(rationale_loss(uniform, target, torch.zeros(1, 4, dtype=torch.bool))) == 0.0

"""Training runs end to end on tiny data (a few steps) and exports a head
that onnxruntime loads; quality is measured by the documented full run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kefuqa.models.encoder.convert import convert
from kefuqa.models.encoder.prune import load_kept_ids
from kefuqa.models.neural.head import N_GLOBAL, TURN_IN
from kefuqa.training.build_default import default_artifact
from kefuqa.training.train import TrainConfig, train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "conversations.jsonl"


def test_training_a_few_steps_writes_a_loadable_artifact(tmp_path):
    kept = default_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    cfg = TrainConfig(data=[EXAMPLES], out=tmp_path / "out", encoder_dir=enc, epochs=2, ensemble=2,
                      augment_copies=1, review_sentences=8, test_ids=ids[:8], seed=3,
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
    # Same seed, same data → same head.
    again = train(TrainConfig(**{**cfg.__dict__, "out": tmp_path / "again"}), log=lambda *_: None)
    assert again["metrics"] == meta["metrics"]


def test_mlflow_records_params_metrics_and_artifacts(tmp_path, monkeypatch):
    import mlflow

    from kefuqa.training.tracking import log_run

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    art = tmp_path / "art"
    art.mkdir()
    (art / "model.json").write_text("{}")
    run_id = log_run(tmp_path / "home", {"seed": 13}, {"f1_politeness": 0.9}, art)
    run = mlflow.get_run(run_id)
    assert run.data.params["seed"] == "13" and run.data.metrics["f1_politeness"] == 0.9
    assert (tmp_path / "home" / "mlflow.db").exists()
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run_id)] == ["model.json"]


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

    kept = default_artifact() / "kept_ids.json"
    enc = convert(tmp_path / "enc", set(load_kept_ids(kept).tolist()))
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    cfg = TrainConfig(data=[EXAMPLES], out=tmp_path / "out", encoder_dir=enc, epochs=1, ensemble=1,
                      augment_copies=0, review_sentences=8, test_ids=ids[:8], seed=3, finetune_epochs=1)
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

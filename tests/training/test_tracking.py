"""MLflow tracking and registry on a real local store (SQLite under a temporary
KEFUQA_HOME): runs, registered versions, aliases, artifact location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kefuqa.training.tracking import MODEL_NAME, Tracking, sync_aliases, track_training

mlflow = pytest.importorskip("mlflow")


def _meta(version: str) -> dict:
    return {"version": version, "data_hash": f"d-{version}", "split_hash": "s1", "eval_set": "outside"}


def _artifacts(tmp_path: Path, name: str) -> Path:
    art = tmp_path / name
    art.mkdir()
    (art / "model.json").write_text("{}")
    return art


def test_each_training_is_a_run_and_a_registered_version_with_tags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # artifacts must not land in the working directory
    tracking = Tracking.under(tmp_path / "home")
    a = track_training(tracking, _meta("2026.12.06-aaaa"), {"seed": 13}, {"f1_politeness": 0.9},
                       _artifacts(tmp_path, "a"))
    b = track_training(tracking, _meta("2026.12.06-aaaa"), {"seed": 13}, {"f1_politeness": 0.9},
                       _artifacts(tmp_path, "b"))
    assert a is not None and b is not None
    assert a.run_name != b.run_name and a.run_id != b.run_id  # same model retrained: two distinguishable runs
    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    mv = client.get_model_version(MODEL_NAME, a.model_version)
    assert mv.run_id == a.run_id
    assert mv.tags["kefuqa_version"] == "2026.12.06-aaaa" and mv.tags["corpus_hash"] == "d-2026.12.06-aaaa"
    assert mv.tags["split_hash"] == "s1" and mv.tags["f1_politeness"] == "0.9000"
    run = client.get_run(a.run_id)
    assert run.data.params["seed"] == "13" and run.data.metrics["f1_politeness"] == 0.9
    assert [x.path for x in client.list_artifacts(a.run_id, "model")] == ["model/model.json"]
    assert (tmp_path / "home" / "mlflow.db").exists()
    stored = list((tmp_path / "home" / "mlartifacts").rglob("model.json"))
    assert len(stored) == 2 and not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()


def test_aliases_follow_champion_and_challenger(tmp_path):
    tracking = Tracking.under(tmp_path / "home")
    v1 = track_training(tracking, _meta("v1"), {}, {"f1_politeness": 0.9}, _artifacts(tmp_path, "a"))
    v2 = track_training(tracking, _meta("v2"), {}, {"f1_politeness": 0.95}, _artifacts(tmp_path, "b"))
    assert v1 and v2
    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    assert sync_aliases(tracking, "v1", "v2") == [f"champion → {MODEL_NAME} v{v1.model_version} (v1)",
                                                  f"challenger → {MODEL_NAME} v{v2.model_version} (v2)"]
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == v1.model_version
    sync_aliases(tracking, "v2", None)  # promoted: no challenger left
    assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == v2.model_version
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(MODEL_NAME, "challenger")
    # A champion never tracked (the shipped model) leaves no stale alias behind.
    sync_aliases(tracking, "2026.12.06-shipped", "v2")
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(MODEL_NAME, "champion")


def test_no_store_is_created_just_to_sync_aliases(tmp_path):
    tracking = Tracking.under(tmp_path / "home")
    assert sync_aliases(tracking, "v1", None) == []
    assert not (tmp_path / "home" / "mlflow.db").exists()


def test_tracking_uri_setting_wins_over_the_home_default(tmp_path, monkeypatch):
    from kefuqa.settings import load_settings

    monkeypatch.setenv("KEFUQA_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    settings = load_settings()
    assert Tracking.under(tmp_path, settings.mlflow_tracking_uri).uri.endswith("elsewhere.db")
    monkeypatch.delenv("KEFUQA_MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'std.db'}")
    assert load_settings().mlflow_tracking_uri.endswith("std.db")
    assert os.environ["MLFLOW_TRACKING_URI"]


def test_the_aliases_follow_kefuqa_models_promote_and_rollback(tmp_path):
    """Through the command, as an operator runs it: the registry under KEFUQA_HOME and the
    MLflow store beside it move together."""
    import subprocess
    import sys

    from kefuqa.models.registry import Registry

    home = tmp_path / "home"
    registry = Registry(home / "registry")
    tracked = {}
    for version, f1 in (("v1", 0.90), ("v2", 0.92)):
        src = _artifacts(tmp_path, version)
        metrics = {"macro_f1": dict.fromkeys(("politeness", "emotional_control", "resolution", "sentiment"), f1)}
        registry.add(src, _meta(version) | {"name": "m", "created": f"2026-12-0{version[1]}T00:00:00",
                                            "metrics": metrics})
        tracked[version] = track_training(Tracking.under(home), _meta(version), {}, {"f1": f1}, src)
    registry.promote("v1")
    registry.set_challenger("v2")
    env = {"KEFUQA_HOME": str(home), "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}

    def kefuqa(*argv: str) -> str:
        res = subprocess.run([sys.executable, "-m", "kefuqa.cli", "models", *argv], capture_output=True, text=True,
                             env=env, timeout=300, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def alias(name: str) -> str | None:
        client = mlflow.MlflowClient(tracking_uri=Tracking.under(home).uri)
        try:
            return str(client.get_model_version_by_alias(MODEL_NAME, name).version)
        except mlflow.exceptions.MlflowException:
            return None

    v1, v2 = (tracked[v].model_version for v in ("v1", "v2"))
    out = kefuqa("promote", "v2")
    assert f"MLflow alias champion → {MODEL_NAME} v{v2} (v2)" in out
    assert (alias("champion"), alias("challenger")) == (v2, None)
    out = kefuqa("rollback")
    assert "current model is now v1" in out and f"MLflow alias challenger → {MODEL_NAME} v{v2} (v2)" in out
    assert (alias("champion"), alias("challenger")) == (v1, v2)
    assert not (tmp_path / "mlruns").exists()

"""MLflow tracking and model registry for trained models.

Each ``kefuqa train`` is one MLflow run (unique name: the model version and the
start time) and one version of the registered model ``kefu-qa``, linked to its run
and tagged with the kefu-qa registry version, the corpus and split hashes and its
metrics. The aliases ``champion`` and ``challenger`` follow ``kefuqa models
promote`` / ``rollback``. The store is ``sqlite:///<KEFUQA_HOME>/mlflow.db`` with
artifacts under ``<KEFUQA_HOME>/mlartifacts`` unless a tracking URI is set.

MLflow is optional (the ``train`` extra): without it nothing is tracked and
training still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_NAME = "kefu-qa"
EXPERIMENT = "kefu-qa"
VERSION_TAG = "kefuqa_version"


@dataclass(frozen=True)
class Tracking:
    uri: str
    artifact_root: Path  # used only when this store creates the experiment

    @classmethod
    def under(cls, home: Path, uri: str | None = None) -> Tracking:
        return cls(uri or f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts")


@dataclass(frozen=True)
class Tracked:
    run_id: str
    run_name: str
    model_version: str  # the MLflow registry's version number of ``kefu-qa``


def _client(tracking: Tracking):
    import mlflow
    from mlflow import MlflowClient

    if tracking.uri.startswith("sqlite:///"):
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking.uri)
    return mlflow, MlflowClient(tracking_uri=tracking.uri)


def _experiment_id(mlflow: Any, client: Any, tracking: Tracking) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    # Without an artifact location MLflow writes artifacts to ./mlruns of whatever
    # directory training ran in; keep them beside the store instead.
    tracking.artifact_root.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(EXPERIMENT, artifact_location=tracking.artifact_root.resolve().as_uri())


def track_training(tracking: Tracking, meta: dict[str, Any], params: dict[str, Any],
                   metrics: dict[str, float], artifacts: Path) -> Tracked | None:
    """Log the run and register it as a new version of ``kefu-qa``; None without MLflow."""
    try:
        mlflow, client = _client(tracking)
    except ImportError:
        return None  # tracking is optional; training itself does not need it
    experiment = _experiment_id(mlflow, client, tracking)
    run_name = f"{meta['version']} {datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    tags = {VERSION_TAG: meta["version"], "corpus_hash": meta["data_hash"],
            "split_hash": meta["split_hash"], "eval_set": meta.get("eval_set", "test")}
    with mlflow.start_run(experiment_id=experiment, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(artifacts), artifact_path="model")
        source = f"{run.info.artifact_uri}/model"
    if not client.search_registered_models(f"name = '{MODEL_NAME}'"):
        client.create_registered_model(MODEL_NAME, description="kefu-qa conversation scorer (head + int8 encoder)")
    version_tags = tags | {k: f"{v:.4f}" for k, v in metrics.items()}
    mv = client.create_model_version(MODEL_NAME, source, run_id=run.info.run_id, tags=version_tags)
    return Tracked(run.info.run_id, run_name, str(mv.version))


def sync_aliases(tracking: Tracking, champion: str | None, challenger: str | None) -> list[str]:
    """Point ``champion`` / ``challenger`` at the MLflow versions of these kefu-qa versions
    (removing an alias whose model is not registered there). Returns what was set."""
    if tracking.uri.startswith("sqlite:///") and not Path(tracking.uri.removeprefix("sqlite:///")).exists():
        return []  # nothing was ever tracked here: do not create a store just to find that out
    try:
        _, client = _client(tracking)
    except ImportError:
        return []
    if not client.search_registered_models(f"name = '{MODEL_NAME}'"):
        return []
    done = []
    for alias, version in (("champion", champion), ("challenger", challenger)):
        found = _mlflow_version(client, version) if version else None
        if found is None:
            _drop_alias(client, alias)
            continue
        client.set_registered_model_alias(MODEL_NAME, alias, found)
        done.append(f"{alias} → {MODEL_NAME} v{found} ({version})")
    return done


def _mlflow_version(client: Any, version: str) -> str | None:
    hits = client.search_model_versions(f"name = '{MODEL_NAME}' and tag.{VERSION_TAG} = '{version}'")
    return str(max(int(h.version) for h in hits)) if hits else None


def _drop_alias(client: Any, alias: str) -> None:
    try:
        client.get_model_version_by_alias(MODEL_NAME, alias)
    except Exception:  # MlflowException: no such alias, nothing to remove
        return
    client.delete_registered_model_alias(MODEL_NAME, alias)

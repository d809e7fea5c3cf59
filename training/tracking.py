"""MLflow tracking of training runs: a local SQLite store under KEFUQA_HOME by
default (MLflow's own default since 3.7), ``MLFLOW_TRACKING_URI`` when set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def log_run(home: Path, params: dict[str, Any], metrics: dict[str, float], artifacts: Path) -> str | None:
    try:
        import mlflow
    except ImportError:
        return None  # tracking is optional; training itself does not need it
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("kefu-qa")
    with mlflow.start_run() as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(artifacts))
        return run.info.run_id

"""What the service's routes depend on, read from ``request.app.state``.

``create_app`` sets the settings, the metrics, the PII masker, the alert thresholds and
an empty ``Model``; the app's lifespan loads the engine, starts the batcher and marks the
model ready. Scoring goes through ``Scorer``: the same validation and masking as the
batch scorer, then the dynamic batcher, then the alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Request

from kefuqa.contract import Conversation
from kefuqa.io.readers import validate_object
from kefuqa.models.engine import Engine
from kefuqa.pipeline import mask_conversation
from kefuqa.service.alerts import AlertThresholds, alerts
from kefuqa.service.batcher import DynamicBatcher
from kefuqa.service.errors import ApiError
from kefuqa.service.metrics import ServiceMetrics
from kefuqa.settings import Limits, Settings
from kefuqa.text.pii import PiiMasker


@dataclass
class Model:
    """The engine and its batcher, set by the lifespan once the model is loaded and warm."""

    engine: Engine | None = None
    batcher: DynamicBatcher | None = None
    ready: bool = False


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_metrics(request: Request) -> ServiceMetrics:
    return cast(ServiceMetrics, request.app.state.metrics)


async def get_model(request: Request) -> Model:
    return cast(Model, request.app.state.model)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ModelDep = Annotated[Model, Depends(get_model)]


async def get_engine(model: ModelDep) -> Engine:
    if model.engine is None:
        raise ApiError(503, "model not loaded yet")
    return model.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


class Scorer:
    """Conversations in, score records with alerts out, for one request."""

    def __init__(self, limits: Limits, masker: PiiMasker, thresholds: AlertThresholds, model: Model) -> None:
        self.limits, self.masker, self.thresholds, self.model = limits, masker, thresholds, model

    def conversation(self, obj: Any) -> Conversation:
        """Validated against ``transcript.md`` and the limits, with PII masked; a 422 with
        the reason otherwise."""
        result = validate_object(obj, self.limits)
        if isinstance(result, str):
            raise ApiError(422, result)
        return mask_conversation(result, self.masker)

    async def score(self, convs: list[Conversation], live: bool) -> list[dict[str, Any]]:
        """Through the app's batcher (503 until the model is ready)."""
        if not self.model.ready or self.model.batcher is None:
            raise ApiError(503, "model not loaded yet")
        records = await self.model.batcher.score(convs)
        for conv, record in zip(convs, records):
            record["alerts"] = alerts(conv, record, self.thresholds, live=live)
        return records


async def get_scorer(request: Request, settings: SettingsDep, model: ModelDep) -> Scorer:
    return Scorer(settings.limits, request.app.state.masker, request.app.state.thresholds, model)


ScorerDep = Annotated[Scorer, Depends(get_scorer)]

"""What the service's routes depend on, read from ``request.app.state``.

``create_app`` sets the settings, the metrics, the PII masker, the alert thresholds, the
alert memory, the webhook sender (or None) and an empty ``Model``; the app's lifespan loads
the engine, starts the batcher and the sender and marks the model ready. Scoring goes through
``Scorer``: the same validation and masking as the batch scorer, then the dynamic batcher,
then the alerts, each marked new or not, the new ones handed to the webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import Depends, Request

from kefuqa.contract import Conversation
from kefuqa.io.readers import validate_object
from kefuqa.models.engine import Engine
from kefuqa.pipeline import mask_conversation
from kefuqa.service.alert_memory import AlertMemory
from kefuqa.service.alerts import AlertThresholds, alerts
from kefuqa.service.batcher import DynamicBatcher
from kefuqa.service.errors import ApiError
from kefuqa.service.metrics import ServiceMetrics
from kefuqa.service.webhook import WebhookSender
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


@dataclass(frozen=True)
class AlertDesk:
    """What turns found alerts into news: the thresholds, the memory of what each
    conversation already raised, and the webhook for the new ones (None: no webhook)."""

    thresholds: AlertThresholds
    memory: AlertMemory
    webhook: WebhookSender | None = None


class Scorer:
    """Conversations in, score records with alerts out, for one request."""

    def __init__(self, limits: Limits, masker: PiiMasker, desk: AlertDesk, model: Model) -> None:
        self.limits, self.masker, self.desk, self.model = limits, masker, desk, model

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
        now = datetime.now(UTC)
        return [await self._with_alerts(conv, record, live, now) for conv, record in zip(convs, records)]

    async def _with_alerts(self, conv: Conversation, record: dict[str, Any], live: bool,
                           now: datetime) -> dict[str, Any]:
        if conv.customer_id is not None:  # the pseudonym, after agent_id as the batch scorer writes it
            at = list(record).index("agent_id") + 1
            items = list(record.items())
            record = dict(items[:at] + [("customer_id", conv.customer_id)] + items[at:])
        found = alerts(conv, record, self.desk.thresholds, live=live, now=now)
        new = await self.desk.memory.first_seen(conv.id, [a["id"] for a in found])
        record["alerts"] = [{**a, "new": a["id"] in new} for a in found]
        fresh = [a for a in record["alerts"] if a["new"]]
        if fresh and self.desk.webhook is not None:
            who = {"conversation_id": conv.id, "agent_id": conv.agent_id}
            if conv.customer_id is not None:
                who["customer_id"] = conv.customer_id
            self.desk.webhook.send({**who, "alerts": fresh})
        return record


async def get_scorer(request: Request, settings: SettingsDep, model: ModelDep) -> Scorer:
    return Scorer(settings.limits, request.app.state.masker, request.app.state.alert_desk, model)


ScorerDep = Annotated[Scorer, Depends(get_scorer)]

"""What leads watch: agreement between reviewers and with the model, and the audit log."""

from typing import Any

from fastapi import APIRouter, Query

from .. import agreement, audit
from ..deps import CurrentUser, TxDep, lead_only

router = APIRouter(tags=["leads"])


@router.get("/api/review/agreement", summary="Cohen's kappa per label and per reviewer")
def get_agreement(user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: agreement.compute(s, user))


@router.get("/api/review/audit")
def get_audit(user: CurrentUser, tx: TxDep, entity: str | None = None, entity_id: str | None = None,
              limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
    lead_only(user)
    return tx.run(lambda s: {"entries": audit.entries(s, entity, entity_id, limit=limit)})

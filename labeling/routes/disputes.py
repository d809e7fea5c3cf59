"""Agents dispute a score; reviewers answer, agents escalate or accept the answer."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from .. import disputes
from ..deps import ConfigDep, CurrentUser, TxDep

router = APIRouter(tags=["disputes"])


class DisputeBody(BaseModel):
    conversation_id: str
    reason: str
    labels: dict[str, str] | None = None


class AnswerBody(BaseModel):
    outcome: str
    answer: str
    version: int
    labels: dict[str, str] | None = None


class EscalateBody(BaseModel):
    reason: str
    version: int


class VersionBody(BaseModel):
    version: int


@router.get("/api/review/disputes")
def list_disputes(user: CurrentUser, cfg: ConfigDep, tx: TxDep, status: str | None = None,
                  overdue: bool = False) -> dict[str, Any]:
    return tx.run(lambda s: {"disputes": disputes.list_disputes(s, user, status, overdue, tz=cfg.timezone)})


@router.post("/api/review/disputes", status_code=201)
def file(body: DisputeBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: disputes.file_dispute(s, user, cfg, body.conversation_id, body.reason, body.labels),
                  write=True)


@router.post("/api/review/disputes/{dispute_id}/answer")
def answer(dispute_id: int, body: AnswerBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: disputes.answer_dispute(s, user, cfg, dispute_id, body.outcome, body.answer,
                                                    body.labels, version=body.version), write=True)


@router.post("/api/review/disputes/{dispute_id}/escalate")
def escalate(dispute_id: int, body: EscalateBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: disputes.escalate(s, user, cfg, dispute_id, body.reason, version=body.version),
                  write=True)


@router.post("/api/review/disputes/{dispute_id}/accept")
def accept(dispute_id: int, body: VersionBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: disputes.accept(s, user, dispute_id, version=body.version, tz=cfg.timezone), write=True)

"""Appeals on a period grade (绩效申诉): agents file and re-appeal; the lead of their team
acknowledges, decides and records the notification; admins decide re-appeals; leads read
the statistics per period."""

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kefuqa.http_errors import error_response

from .. import appeal_stats, appeals
from ..deps import ConfigDep, CurrentUser, TxDep

router = APIRouter(tags=["appeals"], responses={
    401: error_response("not logged in"),
    403: error_response("your role may not take this step; detail says who may"),
    404: error_response("no such appeal for you"),
    409: error_response("the appeal changed since you loaded it, or is not at this step"),
})


class AppealBody(BaseModel):
    period: str = Field(description="2026-11 (month), 2026-Q4 (quarter) or 2026 (year)")
    grade: str = Field(description="the grade appealed against: one of the rubric's grades "
                       "(KEFUQA_REVIEW_APPEAL_GRADES, by default 优秀, 良好, 中等, 合格, 不合格) or 数据不足")
    score: float | None = Field(None, description="the period score appealed against (0–100)")
    reason: str
    agent_id: str | None = Field(None, description="optional; must be the logged-in agent's own")


class NoteBody(BaseModel):
    version: int
    note: str = ""


class DecisionBody(BaseModel):
    version: int
    outcome: Literal["upheld", "overturned"]
    reason: str
    new_grade: str | None = None


class ReappealBody(BaseModel):
    version: int
    reason: str


@router.get("/api/review/appeals", summary="Appeals on a period grade the user may see")
def list_appeals(user: CurrentUser, cfg: ConfigDep, tx: TxDep, period: str | None = None, status: str | None = None,
                 overdue: bool = False) -> dict[str, Any]:
    return tx.run(lambda s: {"appeals": appeals.list_appeals(s, user, period, status, overdue, tz=cfg.timezone),
                             "grades": cfg.appeal_grades})


@router.post("/api/review/appeals", status_code=201, summary="An agent appeals their grade for a period")
def file(body: AppealBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.file_appeal(s, user, cfg, body.period, body.grade, body.score, body.reason,
                                                agent_id=body.agent_id), write=True)


# Before /appeals/{appeal_id}, which would otherwise take "stats" for an id.
@router.get("/api/review/appeals/stats", tags=["leads"], summary="Appeal statistics per period")
def stats(user: CurrentUser, cfg: ConfigDep, tx: TxDep,
          period: str | None = Query(None, description="one period, e.g. 2026-11")) -> dict[str, Any]:
    return tx.run(lambda s: {"periods": appeal_stats.period_stats(s, user, cfg, period)})


@router.get("/api/review/appeals/{appeal_id}", summary="One appeal with its timeline")
def get_appeal(appeal_id: int, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.get_appeal(s, user, appeal_id, tz=cfg.timezone))


@router.post("/api/review/appeals/{appeal_id}/acknowledge")
def acknowledge(appeal_id: int, body: NoteBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.acknowledge(s, user, cfg, appeal_id, body.note, version=body.version),
                  write=True)


@router.post("/api/review/appeals/{appeal_id}/decide")
def decide(appeal_id: int, body: DecisionBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.decide(s, user, cfg, appeal_id, body.outcome, body.reason, body.new_grade,
                                           version=body.version), write=True)


@router.post("/api/review/appeals/{appeal_id}/notify", summary="Record that the agent was told the result")
def notify(appeal_id: int, body: NoteBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.notify(s, user, cfg, appeal_id, body.note, version=body.version), write=True)


@router.post("/api/review/appeals/{appeal_id}/reappeal", summary="The agent appeals once more, to an admin")
def reappeal(appeal_id: int, body: ReappealBody, user: CurrentUser, cfg: ConfigDep, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: appeals.reappeal(s, user, cfg, appeal_id, body.reason, version=body.version),
                  write=True)

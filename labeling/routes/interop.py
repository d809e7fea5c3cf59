"""Exports (training rows, score records, Label Studio tasks), Label Studio import and
the Label Studio labelling interface that matches the export."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from .. import access, audit, export, interop
from ..deps import CurrentUser, TxDep, lead_only

router = APIRouter(tags=["interop"])

LsUsers = Annotated[list[str] | None, Query(
    description="NAME=EMAIL: the kefu-qa user NAME is the Label Studio user with this e-mail (repeat per reviewer)")]


@router.get("/api/review/export", summary="training (JSONL), scores (JSONL), label-studio (JSON)")
def do_export(user: CurrentUser, tx: TxDep, format: Literal["training", "scores", "label-studio"] = "training",
              since: datetime | None = None, ls_user: LsUsers = None,
              ls_default_user: Annotated[str | None, Query(description="label-studio: the Label Studio user "
                                                           "(e-mail) credited for the other reviewers")] = None,
              ) -> Response:
    lead_only(user)
    users = _annotators(ls_user, ls_default_user)

    def go(s: Session) -> Response:
        where = access.visible(s, user)
        audit.record(s, user.name, "export", "export", format,
                     after={"since": since.isoformat() if since else None})
        if format == "label-studio":
            return JSONResponse(interop.tasks(s, where, users=users), headers=_attachment("label-studio-tasks.json"))
        rows = export.training_rows(s, since, where) if format == "training" else export.score_records(s, where)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return PlainTextResponse(text, media_type="application/x-ndjson",
                                 headers=_attachment(f"reviewed-{format}.jsonl"))
    return tx.run(go, write=True)


@router.post("/api/review/import/label-studio")
async def import_ls(request: Request, user: CurrentUser, tx: TxDep,
                    ls_user: LsUsers = None) -> dict[str, Any]:
    lead_only(user)
    users = _annotators(ls_user, None)
    try:
        data = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(422, {"message": f"bad JSON: {exc}"}) from exc
    result: dict[str, Any] = await run_in_threadpool(
        tx.run, lambda s: interop.import_annotations(s, data, reviewer=user.name, actor=user.name, users=users),
        True)
    return result


@router.get("/api/review/label-config", response_class=PlainTextResponse,
            summary="Label Studio labelling interface matching the export")
def ls_config() -> PlainTextResponse:
    return PlainTextResponse(interop.label_config(), media_type="application/xml")


def _annotators(pairs: list[str] | None, default: str | None) -> interop.Annotators:
    try:
        return interop.annotators(pairs or [], default, flags=("ls_user", "ls_default_user"))
    except access.Invalid as exc:
        raise HTTPException(exc.status, exc.body()) from exc


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}

"""The review app: the web page at ``/review`` and JSON endpoints under ``/api/review``.

``make_router(settings)`` is included by the main service app and by
``kefuqa review serve``. Login gives an HttpOnly, SameSite=Strict session
cookie (or, with ``"bearer": true``, a token for ``Authorization: Bearer``).
Every action is a JSON endpoint; errors are ``{"detail": {"message": …}}``
with 401/403/404/409/422, never a 500 for bad input.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint
# annotations at runtime, and ``User`` below is local to make_router.
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kefuqa.contract import check_safe_text
from kefuqa.settings import Settings

from . import access, agreement, audit, auth, disputes, export, interop, queue, reviews, views
from .access import ReviewError
from .config import ReviewConfig, db_url
from .db import StoreError, open_engine, session
from .throttle import LoginThrottle

COOKIE = "kefuqa_review"
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"review.js": "text/javascript", "review-lists.js": "text/javascript", "review.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _Store:
    """The engine, opened on first use (a SQLite store is created and migrated then)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_engine(self.url)
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def presented_token(request: Request) -> tuple[str | None, bool]:
    """The session token a request carries, and whether it came in the cookie: a bearer
    token (scripts) wins over the cookie (the page)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(COOKIE), True


class LoginBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    bearer: bool = False

    @field_validator("name", "password")
    @classmethod
    def _storable(cls, v: str) -> str:
        return check_safe_text(v)  # a NUL or lone surrogate is a 422, not a database error


class ReviewBody(BaseModel):
    labels: dict[str, str]
    version: int
    comment: str = ""
    lead_time: float | None = None


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


class TeamBody(BaseModel):
    restricted: bool


class ActiveBody(BaseModel):
    active: bool


class UserBody(BaseModel):
    name: str
    role: Literal["reviewer", "lead", "admin", "agent"]
    password: str
    team: str | None = None
    agent_id: str | None = None


def make_router(settings: Settings, config: ReviewConfig | None = None) -> APIRouter:
    cfg = config or settings.review
    store = _Store(db_url(settings))

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        store.close()  # connections go back when the app stops

    router = APIRouter(lifespan=lifespan)
    throttle = LoginThrottle(cfg.login_attempts, cfg.login_window_minutes * 60)

    @contextmanager
    def tx(write: bool = False) -> Iterator[Session]:
        try:
            engine = store.engine()
        except StoreError as exc:
            raise HTTPException(503, {"message": str(exc)}) from exc
        try:
            with session(engine, write=write) as s:
                yield s
        except ReviewError as exc:
            raise HTTPException(exc.status, exc.body()) from exc
        except auth.UnknownUser as exc:
            raise HTTPException(404, {"message": str(exc)}) from exc
        except auth.AuthError as exc:
            raise HTTPException(422, {"message": str(exc)}) from exc

    def current_user(request: Request) -> auth.Principal:
        token, via_cookie = presented_token(request)
        with tx() as s:
            user = auth.resolve(s, token)
        if user is None:
            raise HTTPException(401, {"message": "log in first (POST /api/review/login)"})
        json_body = request.headers.get("content-type", "").startswith("application/json")
        if via_cookie and request.method not in ("GET", "HEAD") and not json_body:
            raise HTTPException(415, {"message": "send JSON (Content-Type: application/json)"})
        return user

    User = Annotated[auth.Principal, Depends(current_user)]

    def run(fn: Callable[[Session], Any], write: bool = False) -> Any:
        with tx(write) as s:
            return fn(s)

    # ---------------------------------------------------------------- page
    @router.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "review.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)

    @router.get("/review/static/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, {"message": "no such file"})
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"X-Content-Type-Options": "nosniff",
                                                                             "Cache-Control": "no-cache"})

    # ---------------------------------------------------------------- login
    @router.post("/api/review/login", tags=["review"], summary="Log in; sets the session cookie")
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        address = request.client.host if request.client else ""
        wait = throttle.retry_after(body.name, address)
        if wait:
            raise HTTPException(429, {"message": f"too many failed logins for {body.name!r}; try again in {wait} s"},
                                headers={"Retry-After": str(wait)})
        with tx(write=True) as s:
            try:
                token, user = auth.login(s, body.name, body.password, cfg.session_hours)
            except auth.AuthError as exc:
                throttle.failed(body.name, address)
                raise HTTPException(401, {"message": str(exc)}) from exc
        throttle.succeeded(body.name, address)
        response.set_cookie(COOKIE, token, max_age=int(cfg.session_hours * 3600), httponly=True, samesite="strict",
                            secure=cfg.cookie_secure, path="/")
        return {"user": user.as_dict(), **({"token": token} if body.bearer else {})}

    @router.post("/api/review/logout", tags=["review"])
    def logout(request: Request, response: Response) -> dict[str, bool]:
        """Ends the session of the cookie or of the bearer token the request carries."""
        token, _ = presented_token(request)
        if token:
            with tx(write=True) as s:
                auth.logout(s, token)
        response.delete_cookie(COOKIE, path="/")
        return {"ok": True}

    @router.get("/api/review/session", tags=["review"], summary="Who is logged in (user null when nobody)")
    def who(request: Request) -> dict[str, Any]:
        token, _ = presented_token(request)
        with tx() as s:
            user = auth.resolve(s, token)
        return {"user": user.as_dict() if user else None}

    @router.get("/api/review/me", tags=["review"])
    def me(user: User) -> dict[str, Any]:
        return {"user": user.as_dict(), "labels_url": "/api/review/label-config"}

    # ---------------------------------------------------------------- queue and items
    @router.get("/api/review/queue", tags=["review"], summary="Disputes first, then least confident, plus sample")
    def get_queue(user: User, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        return run(lambda s: queue.build_queue(s, user, limit))

    # Conversation ids may contain "/" (e.g. "shop-7/2026-11/c1"); the page sends them
    # percent-encoded, which arrives decoded, so the id is a path parameter. The /review and
    # /audit routes come first: the id before them is whatever precedes the suffix.
    @router.post("/api/review/items/{conversation_id:path}/review", tags=["review"],
                 responses={409: {"description": "someone saved this item after you loaded it"}})
    def save(conversation_id: str, body: ReviewBody, user: User) -> dict[str, Any]:
        return run(lambda s: reviews.save_review(s, user, conversation_id, body.labels, version=body.version,
                                                       comment=body.comment, lead_time=body.lead_time), write=True)

    @router.get("/api/review/items/{conversation_id:path}/audit", tags=["review"])
    def item_audit(conversation_id: str, user: User) -> dict[str, Any]:
        def go(s: Session) -> dict[str, Any]:
            access.get_conversation(s, user, conversation_id)
            access.require_reviewer(user)
            return {"entries": audit.entries(s, conversation_id=conversation_id)}
        return run(go)

    @router.get("/api/review/items/{conversation_id:path}", tags=["review"])
    def get_item(conversation_id: str, user: User) -> dict[str, Any]:
        return run(lambda s: views.item(s, user, conversation_id))

    @router.get("/api/review/mine", tags=["review"], summary="An agent's own scored conversations")
    def mine(user: User) -> dict[str, Any]:
        return run(lambda s: {"conversations": views.my_conversations(s, user)})

    # ---------------------------------------------------------------- disputes
    @router.get("/api/review/disputes", tags=["disputes"])
    def list_disputes(user: User, status: str | None = None, overdue: bool = False) -> dict[str, Any]:
        return run(lambda s: {"disputes": disputes.list_disputes(s, user, status, overdue)})

    @router.post("/api/review/disputes", tags=["disputes"], status_code=201)
    def file(body: DisputeBody, user: User) -> dict[str, Any]:
        return run(lambda s: disputes.file_dispute(s, user, cfg, body.conversation_id, body.reason,
                                                         body.labels), write=True)

    @router.post("/api/review/disputes/{dispute_id}/answer", tags=["disputes"])
    def answer(dispute_id: int, body: AnswerBody, user: User) -> dict[str, Any]:
        return run(lambda s: disputes.answer_dispute(s, user, cfg, dispute_id, body.outcome, body.answer,
                                                           body.labels, version=body.version), write=True)

    @router.post("/api/review/disputes/{dispute_id}/escalate", tags=["disputes"])
    def escalate(dispute_id: int, body: EscalateBody, user: User) -> dict[str, Any]:
        return run(lambda s: disputes.escalate(s, user, cfg, dispute_id, body.reason, version=body.version),
                   write=True)

    @router.post("/api/review/disputes/{dispute_id}/accept", tags=["disputes"])
    def accept(dispute_id: int, body: VersionBody, user: User) -> dict[str, Any]:
        return run(lambda s: disputes.accept(s, user, dispute_id, version=body.version), write=True)

    # ---------------------------------------------------------------- leads
    @router.get("/api/review/agreement", tags=["leads"], summary="Cohen's kappa per label and per reviewer")
    def get_agreement(user: User) -> dict[str, Any]:
        return run(lambda s: agreement.compute(s, user))

    @router.get("/api/review/audit", tags=["leads"])
    def get_audit(user: User, entity: str | None = None, entity_id: str | None = None,
                  limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
        _lead(user)
        return run(lambda s: {"entries": audit.entries(s, entity, entity_id, limit=limit)})

    @router.get("/api/review/teams", tags=["leads"])
    def teams(user: User) -> dict[str, Any]:
        _lead(user)
        return run(lambda s: {"teams": access.list_teams(s)})

    @router.post("/api/review/teams/{team}", tags=["leads"], summary="Restrict a team's items to its members")
    def set_team(team: str, body: TeamBody, user: User) -> dict[str, Any]:
        return run(lambda s: access.set_team_restriction(s, user, team, body.restricted), write=True)

    @router.get("/api/review/users", tags=["admin"])
    def users(user: User) -> dict[str, Any]:
        _admin(user)
        return run(lambda s: {"users": auth.list_users(s)})

    @router.post("/api/review/users", tags=["admin"], status_code=201)
    def add_user(body: UserBody, user: User) -> dict[str, Any]:
        _admin(user)
        return run(lambda s: auth.principal(auth.add_user(
            s, body.name, body.role, body.password, team=body.team, agent_id=body.agent_id, actor=user.name)
        ).as_dict(), write=True)

    @router.post("/api/review/users/{name}/active", tags=["admin"], summary="Enable or disable a login")
    def set_user_active(name: str, body: ActiveBody, user: User) -> dict[str, Any]:
        _admin(user)
        if name == user.name and not body.active:
            raise HTTPException(409, {"message": "an admin cannot disable their own login"})

        def go(s: Session) -> dict[str, Any]:
            auth.set_active(s, name, body.active, actor=user.name)
            return {"name": name, "active": body.active}
        return run(go, write=True)

    # ---------------------------------------------------------------- interop
    @router.get("/api/review/export", tags=["interop"], summary="training (JSONL), scores (JSONL), label-studio (JSON)")
    def do_export(user: User, format: Literal["training", "scores", "label-studio"] = "training",
                  since: datetime | None = None) -> Response:
        _lead(user)

        def go(s: Session) -> Response:
            where = access.visible(s, user)
            audit.record(s, user.name, "export", "export", format,
                         after={"since": since.isoformat() if since else None})
            if format == "label-studio":
                return JSONResponse(interop.tasks(s, where), headers=_attachment("label-studio-tasks.json"))
            rows = export.training_rows(s, since, where) if format == "training" else export.score_records(s, where)
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            return PlainTextResponse(text, media_type="application/x-ndjson",
                                     headers=_attachment(f"reviewed-{format}.jsonl"))
        return run(go, write=True)

    @router.post("/api/review/import/label-studio", tags=["interop"])
    async def import_ls(request: Request, user: User) -> dict[str, Any]:
        _lead(user)
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(422, {"message": f"bad JSON: {exc}"}) from exc
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(
            run, lambda s: interop.import_annotations(s, data, reviewer=user.name, actor=user.name), True)

    @router.get("/api/review/label-config", tags=["interop"], response_class=PlainTextResponse,
                summary="Label Studio labelling interface matching the export")
    def ls_config() -> PlainTextResponse:
        return PlainTextResponse(interop.label_config(), media_type="application/xml")

    return router


def _lead(user: auth.Principal) -> None:
    if not user.leads:
        raise HTTPException(403, {"message": "leads and admins only"})


def _admin(user: auth.Principal) -> None:
    if user.role != "admin":
        raise HTTPException(403, {"message": "admins only"})


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}

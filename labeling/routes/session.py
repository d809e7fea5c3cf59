"""Log in and out, and who is logged in. Login gives an HttpOnly, SameSite=Strict
session cookie (or, with ``"bearer": true``, a token for ``Authorization: Bearer``);
failed logins are throttled per account and client address."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field, field_validator

from kefuqa.contract import check_safe_text

from .. import auth
from ..deps import COOKIE, ConfigDep, CurrentUser, ThrottleDep, TxDep, presented_token

router = APIRouter(tags=["review"])


class LoginBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    bearer: bool = False

    @field_validator("name", "password")
    @classmethod
    def _storable(cls, v: str) -> str:
        return check_safe_text(v)  # a NUL or lone surrogate is a 422, not a database error


@router.post("/api/review/login", summary="Log in; sets the session cookie")
def login(body: LoginBody, request: Request, response: Response, cfg: ConfigDep, throttle: ThrottleDep,
          tx: TxDep) -> dict[str, Any]:
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


@router.post("/api/review/logout")
def logout(request: Request, response: Response, tx: TxDep) -> dict[str, bool]:
    """Ends the session of the cookie or of the bearer token the request carries."""
    token, _ = presented_token(request)
    if token:
        with tx(write=True) as s:
            auth.logout(s, token)
    response.delete_cookie(COOKIE, path="/")
    return {"ok": True}


@router.get("/api/review/session", summary="Who is logged in (user null when nobody)")
def who(request: Request, tx: TxDep) -> dict[str, Any]:
    token, _ = presented_token(request)
    with tx() as s:
        user = auth.resolve(s, token)
    return {"user": user.as_dict() if user else None}


@router.get("/api/review/me")
def me(user: CurrentUser) -> dict[str, Any]:
    return {"user": user.as_dict(), "labels_url": "/api/review/label-config"}

"""Request bounds that hold for every route, checked while the body streams in,
and the route label metrics use.

A declared ``Content-Length`` over the limit is refused at once; otherwise the body
is read here, counted as it arrives, and refused as soon as it passes the limit, so
no request, authenticated or not, makes the server hold more than the limit. A body
within the limit is handed on to the app unchanged. Login bodies get a much smaller
limit: they are unauthenticated and never need more than a name and a password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypedDict

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGIN_PATHS = ("/api/review/login",)
LOGIN_MAX_BYTES = 4096


class ProxyOptions(TypedDict):
    proxy_headers: bool
    forwarded_allow_ips: list[str] | None


def proxy_options(trusted_proxies: str) -> ProxyOptions:
    """uvicorn options for ``X-Forwarded-For``: honoured only from the listed proxies
    (KEFUQA_TRUSTED_PROXIES), never by default, so a client cannot pick the address
    the login throttle counts by sending the header itself."""
    trusted = [p.strip() for p in trusted_proxies.split(",") if p.strip()]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def body_limit(path: str, default: int) -> int:
    return min(default, LOGIN_MAX_BYTES) if path in LOGIN_PATHS else default


class BodyLimitMiddleware:
    """Pure ASGI, outermost: nothing behind it reads more than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.max_bytes)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, f"body too large: {int(declared)} bytes > {limit} (KEFUQA_MAX_BODY_BYTES)")
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: the app sees that
                await self.app(scope, _replay(message, receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _refuse(send, f"body too large: more than {limit} bytes (KEFUQA_MAX_BODY_BYTES)")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay({"type": "http.request", "body": b"".join(chunks), "more_body": False},
                                      receive), send)


def _replay(first: Message, then: Receive) -> Receive:
    """A ``receive`` that gives ``first`` (the buffered body), then what ``then`` gives
    (a disconnect, when the app waits for one)."""
    pending = [first]

    async def receive() -> Message:
        return pending.pop() if pending else await then()

    return receive


def route_label(routes: list, scope: Mapping) -> str:
    """The route template a request matched (``/api/review/items/{conversation_id:path}``),
    or ``unmatched``: metrics labels stay a small, fixed set whatever paths are asked for.
    After routing the scope holds the route; before it (a refused key) the top-level
    routes are matched here."""
    routed = scope.get("route")
    if routed is not None and getattr(routed, "path", None):
        return str(routed.path)
    for route in routes:
        if getattr(route, "path", None) is None:
            continue
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(route.path)
    return "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

"""Builders for the review tests: conversations, score records with chosen confidence, users."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import uvicorn

from kefuqa.contract import LABELS, Conversation, ScoreRecord
from kefuqa.http_limits import proxy_options
from kefuqa.labeling.auth import add_user, principal
from kefuqa.labeling.db import session
from kefuqa.labeling.importer import import_scores
from kefuqa.text.pii import PiiMasker

PASSWORD = "correct-horse-9"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai

DEFAULT_LABELS = {"politeness": "good", "emotional_control": "good", "resolution": "resolved", "sentiment": "positive"}


def conversation(cid: str, agent: str = "a-1", text: str | None = None) -> Conversation:
    return Conversation.model_validate({
        "id": cid, "agent_id": agent, "started_at": "2026-03-02T10:00:00+08:00",
        "turns": [
            {"speaker": "customer", "text": "在吗？我的快递三天了还没到"},
            {"speaker": "agent", "text": text or "亲，您好，这边帮您查一下物流哦，不知道您方便吗"},
            {"speaker": "customer", "text": "好的谢谢"},
        ]})


def record(cid: str, agent: str = "a-1", labels: dict[str, str] | None = None, top: float = 0.9,
           model: tuple[str, str] = ("kefu-test", "1.0")) -> ScoreRecord:
    """A score record whose least confident head has top probability ``top``."""
    labels = {**DEFAULT_LABELS, **(labels or {})}
    probs = {}
    for name, values in LABELS.items():
        p = top if name == "resolution" else 0.95
        rest = (1 - p) / (len(values) - 1)
        probs[name] = {v: (p if v == labels[name] else rest) for v in values}
    return ScoreRecord.model_validate({
        "id": cid, "agent_id": agent, "model": {"name": model[0], "version": model[1]}, "labels": labels,
        "probs": probs, "turns": [{"index": 0, "speaker": "customer", "sentiment": 0.1}],
        "evidence": [{"turn": 1, "start": 0, "end": 2, "rule": "polite.greeting", "text": "亲，"}],
        "metrics": {"agent_turns": 1, "first_response_s": None, "avg_response_s": None,
                    "polite_phrase_rate": 1.0, "taboo_hits": 0}})


def load(engine, items: list[tuple[str, str, float]], shares=(1.0, 0.0, 0.0), teams=None, labels=None,
         texts: dict[str, str] | None = None, now: datetime = T0, seed: int = 0):
    """Import (id, agent, top probability) items; every one queued by default."""
    recs = [(i, record(cid, agent, (labels or {}).get(cid), top)) for i, (cid, agent, top) in enumerate(items, 1)]
    convs = {cid: conversation(cid, agent, (texts or {}).get(cid)) for cid, agent, _ in items}
    with session(engine, write=True) as s:
        return import_scores(s, recs, convs, masker=PiiMasker(), actor="test", shares=shares, teams=teams,
                             seed=seed, now=now)


def users(engine, *specs: tuple[str, str, str | None]) -> dict[str, Any]:
    """(name, role, team) → principals by name. Agents get agent_id = name."""
    out = {}
    with session(engine, write=True) as s:
        for name, role, team in specs:
            out[name] = principal(add_user(s, name, role, PASSWORD, team=team, actor="test"))
    return out


class Server:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app, trusted_proxies: str = "") -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        # The proxy options `kefuqa serve` and `kefuqa review serve` run with.
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                ws="none", access_log=False, **proxy_options(trusted_proxies))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

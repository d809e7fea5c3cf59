from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from kefuqa.models.baseline import RulesEngine
from kefuqa.service.app import create_app
from kefuqa.service.auth import hash_key
from kefuqa.settings import Limits, ServiceSettings, Settings

API_KEY = "kq_test_key_123"


@dataclass
class Server:
    url: str
    settings: Settings

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(settings: Settings, engine_factory=None) -> Iterator[Server]:
    app = create_app(settings, engine_factory=engine_factory)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        raise RuntimeError("server did not become ready")
    yield Server(url, settings)
    server.should_exit = True
    thread.join(timeout=10)


def rules_settings(home=None, **service) -> Settings:
    import tempfile
    from pathlib import Path

    return Settings(
        engine="rules",
        home=home or Path(tempfile.mkdtemp(prefix="kefuqa-home-")),
        limits=Limits(max_turns=50, max_turn_chars=500, max_total_chars=5000),
        service=ServiceSettings(api_key_hashes=hash_key(API_KEY), max_body_bytes=200_000, max_batch_items=8,
                                **service),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from serve(rules_settings(), engine_factory=RulesEngine)

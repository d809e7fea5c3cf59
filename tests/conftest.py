from __future__ import annotations

import json
from pathlib import Path

import pytest


def conv(cid: str = "c-1", turns: list[dict] | None = None, **extra) -> dict:
    return {
        "id": cid,
        "agent_id": "a-1",
        "turns": turns
        or [
            {"speaker": "customer", "text": "在吗？我的快递三天了还没到"},
            {"speaker": "agent", "text": "亲，您好，这边帮您查一下物流哦"},
        ],
        **extra,
    }


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def make_conv():
    return conv

"""Soak test: mixed valid, invalid, oversized and hostile traffic against one real
`kefuqa serve` (review app mounted), at a fixed concurrency for a fixed time.

Prints the count of every status per kind of request, the 5xx count (must be 0),
and the server's RSS at the start, every minute and at the end (must stay flat).

    python bench/soak.py [--seconds 600] [--concurrency 32] [--engine rules|neural]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "conversations.jsonl"
KEY = "kq_soak_key"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def requests(rng: random.Random, convs: list[dict]) -> tuple[str, str, str, bytes | None, dict[str, str]]:
    """(kind, method, path, body, headers): one request of the mix."""
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    conv = rng.choice(convs)
    roll = rng.random()
    if roll < 0.45:
        return "valid", "POST", "/v1/score", json.dumps(conv, ensure_ascii=False).encode(), auth
    if roll < 0.55:
        batch = {"conversations": [dict(c, id=f"{c['id']}-{i}") for i, c in enumerate(rng.sample(convs, 4))]}
        return "valid-batch", "POST", "/v1/score/batch", json.dumps(batch, ensure_ascii=False).encode(), auth
    if roll < 0.65:
        bad = dict(conv, turns=[{"speaker": "agent", "text": rng.choice(["\ud800", "a\u0000b", " "])}])
        return "invalid", "POST", "/v1/score", json.dumps(bad).encode(), auth
    if roll < 0.70:
        return "deep", "POST", "/v1/score", b"[" * 5000 + b"]" * 5000, auth
    if roll < 0.75:
        return "oversized", "POST", "/v1/score", b"x" * 1_500_000, auth
    if roll < 0.82:
        return "unknown-path", "GET", f"/v1/nothing-{rng.randrange(10**9)}", None, auth
    if roll < 0.88:
        return "no-key", "POST", "/v1/score", json.dumps(conv).encode(), {"Content-Type": "application/json"}
    if roll < 0.94:
        body = json.dumps({"name": f"u{rng.randrange(1000)}", "password": "wrong"}).encode()
        return "login-fail", "POST", "/api/review/login", body, {"Content-Type": "application/json"}
    body = json.dumps({"name": "x", "password": "p" * 100_000}).encode()
    return "login-oversized", "POST", "/api/review/login", body, {"Content-Type": "application/json"}


async def soak(url: str, seconds: float, concurrency: int, pid: int) -> None:
    convs = [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    rss = [(0.0, rss_mb(pid))]
    t0 = time.monotonic()
    deadline = t0 + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while time.monotonic() < deadline:
                kind, method, path, body, headers = requests(rng, convs)
                try:
                    r = await client.request(method, path, content=body, headers=headers)
                    counts[kind][r.status_code] += 1
                except httpx.HTTPError as exc:
                    counts[kind][type(exc).__name__] += 1

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(60.0, max(deadline - time.monotonic(), 0.0)))
            rss.append((time.monotonic() - t0, rss_mb(pid)))

    await asyncio.gather(sampler(), *(worker(i) for i in range(concurrency)))
    total = sum(sum(c.values()) for c in counts.values())
    print(f"{total} requests in {time.monotonic() - t0:.0f} s at concurrency {concurrency}")
    print(f"{'kind':<16} statuses")
    for kind, c in sorted(counts.items()):
        print(f"{kind:<16} " + "  ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=str)))
    fivexx = sum(v for c in counts.values() for k, v in c.items() if isinstance(k, int) and k >= 500)
    print(f"5xx: {fivexx}")
    print("RSS MB: " + "  ".join(f"{t:.0f}s {m:.0f}" for t, m in rss))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--engine", default="rules", choices=["rules", "neural"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if args.engine == "neural":
            home = Path(os.environ.get("KEFUQA_HOME", str(Path.home() / ".kefuqa")))
        proc, url = start_server(home, engine=args.engine, key=KEY,
                                 extra_env={"KEFUQA_REVIEW_DB_URL": f"sqlite:///{home}/review.db"})
        try:
            asyncio.run(soak(url, args.seconds, args.concurrency, proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

"""Service benchmark, measured in one run on loopback:

- p50/p99 latency and throughput at concurrency 1, 8 and 32, with and
  without dynamic batching (two real `kefuqa serve` processes, neural engine);
- HTTP overhead: the same conversation scored in-process vs over HTTP;
- batch throughput: local worker processes vs Ray local (same archive);
- the server's RSS during a sustained load (growth check);
- corpus traffic: distinct corpus conversations, each sent once, to a server with its
  default settings (the turn-embedding cache on): latency at concurrency 1, 8 and 32 and the
  cache's hit rate, which comes only from phrases that recur across different chats.

    python bench/service.py [--seconds 60] [--requests 120] [--model runs/s4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import make_archive  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "kq_bench_key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, batch_size: int = 32, engine: str = "neural", key: str = KEY,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A real `kefuqa serve` on a free loopback port, once it answers /readyz."""
    from kefuqa.service.auth import hash_key

    port = free_port()
    env = {**os.environ, "KEFUQA_HOME": str(home), "KEFUQA_ENGINE": engine, "KEFUQA_API_KEY_HASHES": hash_key(key),
           "KEFUQA_BATCH_MAX_SIZE": str(batch_size), "KEFUQA_BATCH_MAX_WAIT_MS": "5", **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "kefuqa.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    def get(key: str) -> float:
        return float(next(line for line in status.splitlines() if line.startswith(key)).split()[1]) / 1024

    return get("VmRSS"), get("VmHWM")


async def load(url: str, bodies: list[dict], concurrency: int, n: int | None = None, seconds: float | None = None):
    lat: list[float] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    deadline = time.perf_counter() + seconds if seconds else None
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while True:
                i = next(counter)
                if (n is not None and i >= n) or (deadline and time.perf_counter() > deadline):
                    return
                t0 = time.perf_counter()
                r = await client.post("/v1/score", json=bodies[i % len(bodies)])
                r.raise_for_status()
                lat.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return lat, time.perf_counter() - t0


def corpus_bodies(n: int) -> list[dict]:
    """``n`` distinct conversations spread over the training corpus (every writer), as an
    integrator would send them: no labels."""
    from kefuqa.training.dataset import hand_files, load_corpus

    convs = load_corpus(hand_files())
    picked = convs[:: max(len(convs) // n, 1)][:n]
    return [c.model_dump(mode="json", exclude_none=True, exclude={"labels", "rationale"}) for c in picked]


def hit_ratio(url: str) -> float:
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("kefuqa_embedding_cache_hit_ratio")))


def corpus_traffic(home: Path, requests: int) -> tuple[list[tuple[int, float, float, float]], float]:
    """Each body once: warm-up, then concurrency 1, 8 and 32 on bodies not sent before."""
    counts = {1: requests // 2, 8: requests, 32: 2 * requests}
    bodies = corpus_bodies(32 + sum(counts.values()))
    proc, url = start_server(home, 32)  # the server's own cache settings
    rows = []
    try:
        asyncio.run(load(url, bodies[:32], 8, n=32))
        start = 32
        for c, n in counts.items():
            lat, secs = asyncio.run(load(url, bodies[start : start + n], c, n=n))
            rows.append((c, statistics.median(lat), pct(lat, 0.99), len(lat) / secs))
            start += n
        return rows, hit_ratio(url)
    finally:
        proc.terminate()
        proc.wait()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--embedding-cache", type=int, default=0,
                    help="turn embeddings each server caches (default 0: the bodies repeat, so a cache would "
                         "time cache hits; 0 times every request encoded as a new chat is)")
    ap.add_argument("--model", type=Path,
                    help="serve this trained artifact folder (kefuqa train --out) instead of the shipped model")
    args = ap.parse_args()
    from kefuqa.contract import Conversation
    from kefuqa.models.neural import load_default_engine
    from kefuqa.service.batch import EngineSpec, score_file
    from kefuqa.settings import Settings
    from kefuqa.training.build_default import build_version, student_artifact

    tmp = Path(tempfile.mkdtemp())
    home = tmp / "home"
    build_version(home, args.model or student_artifact(), log=lambda *_: None)
    examples = (ROOT / "examples" / "conversations.jsonl").read_text(encoding="utf-8")
    bodies = [json.loads(line) for line in examples.splitlines()]
    for b in bodies:
        b.pop("labels", None)

    # In-process vs HTTP for one conversation.
    engine = load_default_engine(home=home)
    conv = Conversation.model_validate(bodies[0])
    engine.score_batch([conv])
    inproc = []
    for _ in range(30):
        t0 = time.perf_counter()
        engine.score_batch([conv])
        inproc.append((time.perf_counter() - t0) * 1000)
    del engine

    rows = []
    rss_rows = []
    for label, size in (("dynamic batching (32, 5 ms)", 32), ("no batching", 1)):
        proc, url = start_server(home, size,
                                 extra_env={"KEFUQA_EMBEDDING_CACHE_ENTRIES": str(args.embedding_cache)})
        try:
            http_one, _ = asyncio.run(load(url, [bodies[0]], 1, n=30))
            for c in (1, 8, 32):
                server0, client0 = cpu_seconds(proc.pid), time.process_time()
                lat, secs = asyncio.run(load(url, bodies, c, n=args.requests if c > 1 else args.requests // 2))
                # CPU per request of the server and of this load generator, which share the machine's cores
                cpu = ((cpu_seconds(proc.pid) - server0) * 1000 / len(lat),
                       (time.process_time() - client0) * 1000 / len(lat))
                rows.append((label, c, statistics.median(lat), pct(lat, 0.99), len(lat) / secs, *cpu))
            if size > 1:
                before = rss_mb(proc.pid)
                asyncio.run(load(url, bodies, 8, seconds=args.seconds / 2))
                mid = rss_mb(proc.pid)
                asyncio.run(load(url, bodies, 8, seconds=args.seconds / 2))
                after = rss_mb(proc.pid)
                rss_rows = [("after warm-up", *before), (f"after {args.seconds / 2:.0f} s load", *mid),
                            (f"after {args.seconds:.0f} s load", *after)]
                overhead = (statistics.median(http_one), statistics.median(inproc))
        finally:
            proc.terminate()
            proc.wait()

    print("HTTP API on loopback, neural int8 engine, examples/conversations.jsonl bodies, "
          f"turn-embedding cache {args.embedding_cache} entries")
    print(f"{'server':<30}{'conc.':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}{'server CPU ms/req':>19}"
          f"{'client CPU ms/req':>19}")
    for label, c, p50, p99, rps, server_cpu, client_cpu in rows:
        print(f"{label:<30}{c:>6}{p50:>9.1f}{p99:>9.1f}{rps:>8.1f}{server_cpu:>19.1f}{client_cpu:>19.1f}")
    print(f"one conversation: HTTP p50 {overhead[0]:.1f} ms vs in-process {overhead[1]:.1f} ms "
          f"→ HTTP overhead {overhead[0] - overhead[1]:.1f} ms")
    print(f"{'server memory':<30}{'RSS MB':>9}{'peak MB':>9}")
    for name, rss, peak in rss_rows:
        print(f"{name:<30}{rss:>9.0f}{peak:>9.0f}")

    traffic, hits = corpus_traffic(home, args.requests)
    print("corpus traffic: distinct corpus conversations, each sent once, dynamic batching (32, 5 ms), "
          f"the server's default turn-embedding cache (hit rate {hits:.1%})")
    print(f"{'conc.':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}")
    for c, p50, p99, rps in traffic:
        print(f"{c:>6}{p50:>9.1f}{p99:>9.1f}{rps:>8.1f}")

    archive = make_archive(tmp / "archive.jsonl", 20_000)
    spec = EngineSpec("rules")
    local = score_file(archive, spec, Settings(), output=tmp / "local.jsonl", progress=False, workers=2)
    from kefuqa.service.ray_runner import score_file_ray

    ray_s = score_file_ray(archive, spec, Settings(batch_size=500), output=tmp / "ray", workers=2)
    ray_records = b"".join(p.read_bytes() for p in sorted((tmp / "ray" / "records").glob("part-*")))
    same = (tmp / "local.jsonl").read_bytes() == ray_records
    print("batch, 20,000 generated conversations, rules engine, 2 workers")
    print(f"{'runner':<30}{'conv/s':>9}{'seconds':>9}")
    print(f"{'local processes':<30}{local.scored / local.seconds:>9.0f}{local.seconds:>9.1f}")
    print(f"{'Ray local (start-up included)':<30}{ray_s.scored / ray_s.seconds:>9.0f}{ray_s.seconds:>9.1f}")
    print(f"identical output: {same}")


if __name__ == "__main__":
    main()

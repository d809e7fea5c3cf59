"""Batch scoring on Ray Data as the archive grows, measured in one run:

- conv/s of the local runner (worker processes) and of Ray (a local Ray that the run
  starts, start-up included) on the same archive, and whether the two outputs are
  byte-identical (Ray's part files concatenated in name order);
- the driver's peak RSS (the process that runs ``score_file_ray``; Ray's own processes
  are not in it) for each archive size, up to 1,000,000 conversations: it must stay
  flat, since the read tasks, the actors and the write tasks hold the data, not the
  driver. Beside the peak (``ru_maxrss``), the peaks of its private memory and of the
  shared pages of Ray's object store it has touched, sampled every 0.1 s.

Each run is a fresh Python process, so each peak is that run's own. The archives are
prefixes of one generated archive (``bench/synth.py``).

    python bench/ray_scale.py [--sizes 10000 100000 1000000] [--compare 100000] [--workers 2] [--engine rules]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import make_archive  # noqa: E402


class MemoryPeaks:
    """Peaks of this process's private (``RssAnon``) and shared (``RssShmem``: pages of
    Ray's object store it has touched) resident memory, sampled from /proc every 0.1 s."""

    def __init__(self) -> None:
        self.anon_kb = self.shmem_kb = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.1):
            fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
            self.anon_kb = max(self.anon_kb, int(fields["RssAnon"].split()[0]))
            self.shmem_kb = max(self.shmem_kb, int(fields["RssShmem"].split()[0]))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def run_one(runner: str, archive: Path, out: Path, workers: int, engine: str) -> dict[str, float]:
    """One run in this process; its figures, for the parent to read from stdout."""
    from kefuqa.service.batch import EngineSpec, score_file
    from kefuqa.settings import Settings

    peaks = MemoryPeaks()
    spec = EngineSpec(engine, threads=1)
    if runner == "ray":
        from kefuqa.service.ray_runner import score_file_ray

        summary = score_file_ray(archive, spec, Settings(), output=out, workers=workers)
    else:
        summary = score_file(archive, spec, Settings(), output=out, rejects=out.with_name("local.rejects.jsonl"),
                             progress=False, workers=workers)
    peaks.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"scored": summary.scored, "seconds": summary.seconds, "peak_rss_mb": peak_kb / 1024,
            "anon_mb": peaks.anon_kb / 1024, "shmem_mb": peaks.shmem_kb / 1024}


def measure(runner: str, archive: Path, out: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--one", runner, str(archive), str(out), "--workers", str(args.workers),
           "--engine", args.engine]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{runner} run on {archive.name} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def prefix(src: Path, dst: Path, lines: int) -> Path:
    with src.open("rb") as fin, dst.open("wb") as fout:
        for _ in range(lines):
            fout.write(fin.readline())
    return dst


def ray_env(tmp: Path) -> dict[str, str]:
    # Ray's session files in the benchmark's folder, and a token of the run's own, so that
    # the local Ray runs with token auth without writing ~/.ray/auth_token.
    (tmp / "ray").mkdir()
    return {**os.environ, "RAY_TMPDIR": str(tmp / "ray"), "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


HEADER = f"{'driver peak RSS MB':>20}{'private':>9}{'shared':>8}"


def memory(r: dict[str, float]) -> str:
    return f"{r['peak_rss_mb']:>20.0f}{r['anon_mb']:>9.0f}{r['shmem_mb']:>8.0f}"


def concatenated(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("part-*")))


def compare(biggest: Path, tmp: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
    archive = prefix(biggest, tmp / f"compare-{args.compare}.jsonl", args.compare)
    local = measure("local", archive, tmp / "local.jsonl", args, env)
    ray = measure("ray", archive, tmp / "ray-compare", args, env)
    same = concatenated(tmp / "ray-compare" / "records") == (tmp / "local.jsonl").read_bytes()
    print(f"{args.compare:,} conversations, {args.engine} engine, {args.workers} workers")
    print(f"{'runner':<34}{'conv/s':>9}{'seconds':>9}{HEADER}")
    for name, r in (("local worker processes", local), ("Ray, local (start-up included)", ray)):
        print(f"{name:<34}{r['scored'] / r['seconds']:>9.0f}{r['seconds']:>9.1f}{memory(r)}")
    print(f"byte-identical records: {same}")
    shutil.rmtree(tmp / "ray-compare")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--compare", type=int, default=100_000, help="archive size for local vs Ray conv/s")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engine", default="rules", help="rules (the cheapest engine) or neural")
    ap.add_argument("--one", nargs=3, metavar=("RUNNER", "ARCHIVE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        runner, archive, out = args.one
        print(json.dumps(run_one(runner, Path(archive), Path(out), args.workers, args.engine)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="kq-ray-scale-"))
    try:
        env = ray_env(tmp)
        total = max([*args.sizes, args.compare])
        biggest = make_archive(tmp / "archive.jsonl", total)
        compare(biggest, tmp, args, env)
        print(f"\nRay driver as the archive grows ({args.engine} engine, {args.workers} actors)")
        print(f"{'conversations':>14}{'conv/s':>9}{'seconds':>9}{HEADER}")
        for n in sorted(args.sizes):
            archive = biggest if n == total else prefix(biggest, tmp / f"archive-{n}.jsonl", n)
            r = measure("ray", archive, tmp / f"ray-{n}", args, env)
            print(f"{n:>14,}{r['scored'] / r['seconds']:>9.0f}{r['seconds']:>9.1f}{memory(r)}", flush=True)
            shutil.rmtree(tmp / f"ray-{n}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

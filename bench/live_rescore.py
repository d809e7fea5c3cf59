"""The turn-embedding cache, all in one run on the champion model (KEFUQA_HOME, or
the shipped model built in a temporary home), with the engine every door builds
(``create_engine``: for voice calls, the speaker-role check embeds the turns too):

- live re-scoring: each of the corpus's 20-turn conversations (real ones of at least
  20 turns, cut to 20) scored cold, and re-scored after its 20th turn arrives with
  the first 19 already scored; engine calls in this process, the three layouts
  interleaved per conversation, medians and p90 over every conversation and round;
- ``kefuqa score`` (the real CLI, worker processes) on corpus chats, with the
  cache off (``KEFUQA_EMBEDDING_CACHE_ENTRIES=0``) and on (the default), the runs
  interleaved; conversations/s from the CLI's summary line (its count and clock,
  model loading in the workers included), and the peak RSS of its largest process;
- the cache's hit rate over that archive in one process (a worker sees its share).

    python bench/live_rescore.py [--rounds 3] [--archive 480] [--runs 2] [--threads 2] [--model runs/s4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def corpus():
    from kefuqa.training.dataset import hand_files, load_corpus

    return load_corpus(hand_files())


def live_chats(convs):
    """The corpus's chats of at least 20 turns, cut to 20, PII masked as every door does."""
    from kefuqa.pipeline import mask_conversation
    from kefuqa.text.pii import PiiMasker

    masker = PiiMasker()
    return [mask_conversation(c.model_copy(update={"turns": c.turns[:20]}), masker)
            for c in convs if len(c.turns) >= 20]


def _ms(fn, into: dict[str, list[float]], name: str) -> None:
    """Wall and CPU milliseconds of ``fn()`` (CPU: this process, every thread), into ``into``."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    into[name].append((time.perf_counter() - t0) * 1000)
    into[name + " cpu"].append((time.process_time() - c0) * 1000)


def engines(home: Path, threads: int):
    """The engine every door builds (``create_engine``: the neural engine inside the
    phone-call steps, whose speaker-role check embeds a voice call's turns too), without
    and with a cache; and that cache."""
    from kefuqa.models.engine import create_engine
    from kefuqa.models.neural.embedding_cache import EmbeddingCache

    cache = EmbeddingCache(50_000, 64 << 20)
    plain = create_engine("neural", home=home, threads=threads)
    return plain, create_engine("neural", home=home, threads=threads, embedding_cache=cache), cache


def time_live(home: Path, chats, rounds: int, threads: int) -> dict[str, list[float]]:
    plain, cached, cache = engines(home, threads)
    for c in chats[:3]:  # warm both sessions
        plain.score_batch([c])
        cached.score_batch([c])
    times: dict[str, list[float]] = {k: [] for k in ("no cache", "cold", "live", "embedded",
                                                     "no cache cpu", "cold cpu", "live cpu")}
    for _ in range(rounds):
        for chat in chats:
            earlier = chat.model_copy(update={"turns": chat.turns[:19]})
            _ms(lambda: plain.score_batch([chat]), times, "no cache")  # noqa: B023 - called at once
            cache.clear()
            _ms(lambda: cached.score_batch([chat]), times, "cold")  # noqa: B023
            cache.clear()
            cached.score_batch([earlier])  # the chat as it stood one turn ago
            before = cache.stats().misses
            _ms(lambda: cached.score_batch([chat]), times, "live")  # noqa: B023
            times["embedded"].append(cache.stats().misses - before)
    return times


# Peak RSS is a high-water mark that survives fork and exec: a child forked from this process
# (which holds built models and engines) would report this process's size. A small launcher
# forks the CLI instead and reports the CLI's own peak (its workers it waited for included).
_LAUNCHER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, st, ru = os.wait4(p.pid, 0); "
             "print(f'launcher maxrss_kb {ru.ru_maxrss}', file=sys.stderr); sys.exit(os.waitstatus_to_exitcode(st))")


def run_cli(archive: Path, out: Path, env: dict[str, str], extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """One ``kefuqa score`` run: (conversations/s by its summary line, peak RSS MB of its largest process)."""
    log = out.with_suffix(".log")
    with log.open("w") as fh:
        status = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "kefuqa.cli", "score",
                                 str(archive), "-o", str(out), *extra],
                                stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    text = log.read_text()
    if status != 0:
        raise SystemExit(f"kefuqa score failed:\n{text}")
    scored, seconds = re.findall(r"scored (\d+), rejected \d+.*?, ([\d.]+) s \(", text)[-1]
    peak_kb = int(re.findall(r"launcher maxrss_kb (\d+)", text)[-1])
    return int(scored) / float(seconds), peak_kb / 1024  # the CLI's own count and clock, unrounded


def time_cli(home: Path, convs, n: int, runs: int, tmp: Path) -> dict[str, list[tuple[float, float]]]:
    step = max(len(convs) // n, 1)
    archive = tmp / "archive.jsonl"
    with archive.open("w", encoding="utf-8") as fh:
        for c in convs[::step][:n]:
            fh.write(json.dumps(c.model_dump(mode="json", exclude_none=True), ensure_ascii=False) + "\n")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("KEFUQA_EMBEDDING_CACHE_")}
    base = {**inherited, "KEFUQA_HOME": str(home), "KEFUQA_ENGINE": "neural"}  # the cache at its defaults
    per_core = ("--workers", str(os.cpu_count() or 1))
    layouts = {"cache off": ({**base, "KEFUQA_EMBEDDING_CACHE_ENTRIES": "0"}, ()),
               # one process per two cores, two encoder threads each, one cache per process
               "cache on (default)": (base, ()),
               # one process per core, one encoder thread each: what the rules engine does
               "cache on, 1 worker per core": (base, per_core)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in layouts}
    outputs: dict[str, bytes] = {}
    for run in range(runs):  # interleaved, in turn in each order, so load falls on all alike
        for i, (name, (env, extra)) in enumerate(sorted(layouts.items(), reverse=run % 2 == 1)):
            out = tmp / f"scores-{run}-{i}.jsonl"
            results[name].append(run_cli(archive, out, env, extra))
            outputs[name] = out.read_bytes()
    if len(set(outputs.values())) != 1:
        raise SystemExit("the archive's scores differ with and without the cache")
    return results


def archive_in_process(home: Path, convs, n: int, threads: int) -> dict[str, float]:
    """The same archive in this process, chunks of 64, each chunk scored without the cache
    and with it (one cache for the whole archive), each first in turn: CPU ms per
    conversation of each, which other load on the machine moves less than wall time, and
    the hit rate."""
    from kefuqa.pipeline import mask_conversation
    from kefuqa.text.pii import PiiMasker

    plain, cached, cache = engines(home, threads)
    both = {"off": plain, "on": cached}
    step = max(len(convs) // n, 1)
    masked = [mask_conversation(c, PiiMasker()) for c in convs[::step][:n]]
    cpu = {"off": 0.0, "on": 0.0}
    for i in range(0, len(masked), 64):
        for name, engine in sorted(both.items(), reverse=i % 128 == 64):  # each goes first in turn
            c0 = time.process_time()
            engine.score_batch(masked[i : i + 64])
            cpu[name] += time.process_time() - c0
    stats = cache.stats()
    return {"off": cpu["off"] * 1000 / len(masked), "on": cpu["on"] * 1000 / len(masked),
            "hit_rate": stats.hit_rate, "mb": stats.bytes / 2**20}


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(int(len(s) * q), len(s) - 1)]


def report_live(times: dict[str, list[float]], chats: int, args) -> None:
    live, cold = times["live"], times["cold"]
    paired = [a / b for a, b in zip(live, cold)]
    print(f"live re-score: {chats} corpus chats of 20 turns x {args.rounds} rounds, {args.threads} threads, "
          f"layouts interleaved per chat")
    print(f"{'score of the 20-turn chat':<50}{'p50 ms':>8}{'p90 ms':>8}{'vs cold':>9}{'p50 CPU ms':>12}")
    for name, label in (("no cache", "no cache"), ("cold", "cold (cache on, empty)"),
                        ("live", "live: re-sent with turn 20, 1-19 cached")):
        xs = times[name]
        print(f"{label:<50}{statistics.median(xs):8.1f}{pct(xs, 0.9):8.1f}"
              f"{statistics.median(xs) / statistics.median(cold):8.2f}x{statistics.median(times[name + ' cpu']):12.1f}")
    print(f"live / cold per chat and round: median {statistics.median(paired):.2f}x "
          f"(target <= 0.35x); live p50 {statistics.median(live):.1f} ms (target < 10 ms)")
    print(f"texts embedded by a live re-score: mean {statistics.mean(times['embedded']):.2f}, "
          f"max {max(times['embedded']):.0f} (a 20-turn chat has about 20)")


def report_archive(cli: dict[str, list[tuple[float, float]]], inproc: dict[str, float], args) -> None:
    print(f"\nkefuqa score, {args.archive} corpus chats, {args.runs} interleaved runs, all cores")
    print(f"{'run':<30}{'conv/s (median)':>16}{'runs':>22}{'peak RSS MB':>13}")
    for name, rs in cli.items():
        rates = [r for r, _ in rs]
        print(f"{name:<30}{statistics.median(rates):16.1f}{', '.join(f'{r:.1f}' for r in rates):>22}"
              f"{max(m for _, m in rs):13.0f}")
    on, off = (statistics.median([r for r, _ in cli[k]]) for k in ("cache on (default)", "cache off"))
    print(f"cache on / off: {on / off:.2f}x; outputs identical")
    print(f"same archive in one process, chunks interleaved: CPU {inproc['off']:.1f} ms/conv without the cache, "
          f"{inproc['on']:.1f} with it ({inproc['off'] / inproc['on']:.2f}x); hit rate {inproc['hit_rate']:.1%} "
          f"of turn texts, {inproc['mb']:.1f} MB held")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--archive", type=int, default=480)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=Path,
                    help="time this trained artifact folder (kefuqa train --out) in a temporary home")
    args = ap.parse_args()
    from kefuqa.training.build_default import build_version, student_artifact

    tmp = Path(tempfile.mkdtemp())
    home = tmp / "home" if args.model else Path(os.environ.get("KEFUQA_HOME", tmp / "home"))
    # The champion there is what every layout scores with.
    build_version(home, args.model or student_artifact(), log=lambda *_: None)
    convs = corpus()
    chats = live_chats(convs)
    times = time_live(home, chats, args.rounds, args.threads)
    report_live(times, len(chats), args)
    cli = time_cli(home, convs, args.archive, args.runs, tmp)
    report_archive(cli, archive_in_process(home, convs, args.archive, args.threads), args)


if __name__ == "__main__":
    main()

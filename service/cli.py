"""``kefuqa score``: score an archive from the command line.

Each command imports what it needs when it runs, so ``kefuqa --help`` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

# Encoder threads per worker process of a neural engine by default. Measured on 2 cores with
# the student: one process with both threads on the encoder scored 1.4x the conversations/s of
# two single-threaded ones (its encoder calls are short, and a second process's tokenising and
# rule features compete for the same cores); the teacher scored the same either way.
NEURAL_THREADS = 2


def default_workers(engine: str, cores: int) -> int:
    """Worker processes when ``--workers`` is not given: every core for the rules engine (pure
    Python, one thread), one per NEURAL_THREADS cores for a neural one."""
    return cores if engine == "rules" else max(cores // NEURAL_THREADS, 1)


def _score(args: argparse.Namespace) -> int:
    from kefuqa.io.readers import InputError
    from kefuqa.models.engine import EngineError, chosen_engine
    from kefuqa.models.rules.schema import RulesFileError
    from kefuqa.service.batch import BatchSummary, EngineSpec, score_file
    from kefuqa.settings import load_settings

    settings = load_settings()
    if args.batch_size:
        settings.batch_size = args.batch_size
    name = args.engine or settings.engine
    runner = "ray" if name == "ray" or args.address else "local"
    if name == "ray":
        name = settings.engine if settings.engine != "ray" else "auto"
    cores = os.cpu_count() or 1
    if args.workers:
        threads = max(cores // args.workers, 1)
    elif runner == "ray":
        threads = 1  # an actor holds one CPU
    else:
        threads = min(cores, NEURAL_THREADS)
    spec = EngineSpec(name, args.rules or settings.rules_file, settings.home, threads=threads,
                      cache_entries=settings.embedding_cache_entries,
                      cache_mb=settings.embedding_cache_mb)
    summary: BatchSummary
    try:
        engine = spec()  # fail fast on a bad engine or rules file, before any process starts
        info = engine.info
        chosen = chosen_engine(engine)
        if spec.name == "auto":  # decided once here: workers build the same engine, without a second warning
            spec = replace(spec, name=chosen)
        workers = args.workers or default_workers(chosen, cores)
        if runner == "ray":
            from kefuqa.service.ray_runner import score_file_ray

            if args.rejects:
                raise InputError("with Ray the rejects are written under OUT/rejects/; leave out --rejects")
            summary = ray_summary = score_file_ray(args.input, spec, settings, output=args.output,
                                                   address=args.address, workers=args.workers, resume=args.resume)
            workers = ray_summary.actors
        else:
            # One worker scores in this process, with the engine already built.
            factory = spec if workers > 1 else (lambda: engine)
            summary = score_file(args.input, factory, settings, output=args.output, rejects=args.rejects,
                                 workers=workers, resume=args.resume, progress=False if args.quiet else None)
    except (InputError, EngineError, RulesFileError) as exc:
        print(f"kefuqa score: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        plural = "" if workers == 1 else "s"
        print(f"{summary.line()} [engine {info.name} {info.version}, {runner}, {workers} worker{plural}]",
              file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from kefuqa.http_limits import proxy_options
    from kefuqa.service.app import create_app
    from kefuqa.service.auth import KeyFileError
    from kefuqa.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        app = create_app(settings)
    except (ValueError, KeyFileError) as exc:
        print(f"kefuqa serve: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host or settings.service.host, port=args.port or settings.service.port,
                log_level="warning", access_log=False, **proxy_options(settings.service.trusted_proxies))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from kefuqa.service.auth import hash_key, new_key

    if args.keys_command == "new":
        key, digest = new_key()
        print(f"API key (give it to the integrator; it is not stored): {key}")
        print(f"hash (put it in KEFUQA_API_KEY_HASHES or the KEFUQA_API_KEYS_FILE): {digest}")
    else:
        print(hash_key(args.key))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the HTTP API (FastAPI + uvicorn)")
    serve.add_argument("--host", help="default KEFUQA_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default KEFUQA_PORT or 8000")
    serve.set_defaults(func=_serve)
    keys = sub.add_parser("keys", help="API keys: make one, or hash an existing one")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    ksub.add_parser("new", help="a new random key and its hash").set_defaults(func=_keys)
    h = ksub.add_parser("hash", help="the SHA-256 hash of KEY")
    h.add_argument("key")
    h.set_defaults(func=_keys)

    p = sub.add_parser("score", help="score an archive of conversations (JSONL, JSONL.gz, JSON array, Parquet)")
    p.add_argument("input", type=Path, help="conversations per transcript.md")
    p.add_argument("-o", "--output", type=Path, help="score records: .jsonl or .parquet (default: JSONL on stdout); "
                   "with Ray a directory of part files, OUT or OUT.parquet")
    p.add_argument("--rejects", type=Path, help="invalid inputs with line and reason (default: OUT.rejects.jsonl)")
    p.add_argument("--engine", choices=["auto", "rules", "neural", "teacher", "student", "ray"],
                   help="default: KEFUQA_ENGINE or auto; neural = the champion, teacher / student = the registry's "
                        "model of that role; ray = the default engine on Ray Data")
    p.add_argument("--address", help="Ray cluster (implies --engine ray): HOST:PORT of its GCS, ray://HOST:10001 "
                   "(Ray Client) or auto; default: a local Ray")
    p.add_argument("--workers", type=int, help="scoring processes / Ray actors (default: one per core for the rules "
                   "engine, one per two cores with two encoder threads each for a neural one; Ray: its CPUs - 1)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run (same input and -o)")
    p.add_argument("--rules", type=Path, help="user rules file merged over the defaults")
    p.add_argument("--batch-size", type=int, help="conversations per engine call")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line (errors still show)")
    p.set_defaults(func=_score)

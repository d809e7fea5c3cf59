"""Batch scoring of an archive (``kefuqa score``): the pipeline's
``score_stream`` (read → validate → mask → score), written in input order, with
every invalid line in a rejects file.

Scoring runs in worker processes (one engine, one inference session each);
reading, validation and writing stay in this process so the order and the
duplicate-id check are exact. After each chunk the output is flushed and a
checkpoint records how far the input was handled and how many bytes of
output are complete; ``resume`` truncates to that point and goes on, so
every valid input is scored exactly once even after ``kill -9``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kefuqa.contract import Conversation
from kefuqa.io.readers import InputError, count_records, read_conversations
from kefuqa.io.writers import ScoreOutputs
from kefuqa.models.engine import Engine
from kefuqa.pipeline import InProcess, ScoredChunk, Submitter, score_stream
from kefuqa.service.interrupts import signals_held
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker

EngineFactory = Callable[[], Engine]


@dataclass(frozen=True)
class EngineSpec:
    """A picklable engine factory, so worker processes build their own engine."""

    name: str
    rules_file: Path | None = None
    home: Path | None = None
    threads: int | None = None
    cache_entries: int = 0  # the turn-embedding cache each engine builds for itself (0: none)
    cache_mb: float = 0.0

    def __call__(self) -> Engine:
        from kefuqa.models.engine import create_engine
        from kefuqa.models.neural.embedding_cache import new_cache

        return create_engine(self.name, rules_file=self.rules_file, home=self.home, threads=self.threads,
                             embedding_cache=new_cache(self.cache_entries, self.cache_mb))


@dataclass(frozen=True)
class BatchSummary:
    """What one run did. After ``--resume``, ``scored`` and ``rejected`` count this run only
    (so the rate is this run's); ``scored_before`` and ``rejected_before`` are the
    interrupted run's."""

    scored: int
    rejected: int
    seconds: float
    output: Path | None
    rejects: Path | None
    resumed_from_line: int = 0
    scored_before: int = 0
    rejected_before: int = 0

    def line(self) -> str:
        where = f" → {self.output}" if self.output else ""
        rej = f" (see {self.rejects})" if self.rejects else ""
        rate = self.scored / self.seconds if self.seconds > 0 else 0.0
        resumed = (f", resumed after line {self.resumed_from_line} (already done: {self.scored_before} scored, "
                   f"{self.rejected_before} rejected)") if self.resumed_from_line else ""
        return (f"scored {self.scored}, rejected {self.rejected}{rej}, {self.seconds:.2f} s "
                f"({rate:.0f} conversations/s){resumed}{where}")


def default_rejects_path(input_path: Path, output: Path | None) -> Path:
    base = output if output is not None else Path(input_path.name)
    name = base.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return base.with_name(name + ".rejects.jsonl")


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint.json")


# ------------------------------------------------------------ worker processes
_WORKER_ENGINE: Engine | None = None


def _init_worker(factory: EngineFactory) -> None:
    global _WORKER_ENGINE  # one engine per worker process, created once
    # Ctrl-C, and SIGTERM from systemd or `kill -- -PGID`, reach the whole process group. The
    # parent decides and stops the workers through the pool: a worker killed while it waits for
    # work holds the pool's queue lock, and the pool would then hang for ever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _WORKER_ENGINE = factory()


def _score_in_worker(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.score_batch([Conversation.model_validate(d) for d in payload])


class _WorkerPool:
    """The pipeline's ``Submitter`` over worker processes: each builds its engine once;
    at most two chunks per worker are in flight, so memory stays flat."""

    def __init__(self, factory: EngineFactory, workers: int) -> None:
        self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(factory,))
        self.window = 2 * workers

    def submit(self, convs: list[Conversation]) -> Any:
        return self.pool.apply_async(_score_in_worker, ([c.model_dump(mode="json") for c in convs],))

    def result(self, handle: Any) -> list[dict[str, Any]]:
        return handle.get()

    def close(self) -> None:
        """The workers finish the chunks they hold (at most two each) and exit. Also after an
        interruption: ``Pool.terminate`` would wait for ever on a lock held by a killed worker."""
        self.pool.close()
        self.pool.join()


def input_fingerprint(path: Path, blocks: int = 64, block: int = 65536) -> str:
    """Size plus a hash of ``blocks`` evenly spaced blocks: an input edited since the
    interrupted run (lines added, removed or rewritten) does not resume, and a
    many-gigabyte archive is not read in full to find out."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        step = max(size // blocks, block)
        for offset in range(0, size, step):
            fh.seek(offset)
            h.update(fh.read(block))
        if size > block:
            fh.seek(size - block)
            h.update(fh.read(block))
    return h.hexdigest()[:32]


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a crash leaves the old or the new checkpoint, never half


@dataclass
class _Run:
    """How far a run has come. With an output file it is saved as the checkpoint after
    every chunk; ``--resume`` starts from the last one saved."""

    input: str  # the input, resolved
    fingerprint: str | None
    checkpoint: Path | None
    line: int = 0  # the last input line handled
    scored: int = 0
    rejected: int = 0
    resumed_from_line: int = 0
    scored_before: int = 0  # by the interrupted run this one resumes
    rejected_before: int = 0
    resume_at: tuple[int, int] | None = None  # the complete byte sizes of records and rejects

    def advance(self, done: ScoredChunk, out_bytes: int, rej_bytes: int) -> None:
        self.line = done.last_line
        self.scored += len(done.records)
        self.rejected += len(done.rejects)
        if self.checkpoint is not None:
            _save_checkpoint(self.checkpoint, {"input": self.input, "fingerprint": self.fingerprint,
                                               "line": self.line,
                                               "out_bytes": out_bytes, "rej_bytes": rej_bytes,
                                               "scored": self.scored, "rejected": self.rejected})

    def finish(self) -> None:
        if self.checkpoint is not None and self.checkpoint.exists():
            self.checkpoint.unlink()  # finished: nothing to resume

    def stopped_note(self, output: Path | None) -> str:
        """Where an interrupted run left its output, for the one-line message."""
        if output is None:
            return f"stopped after input line {self.line}"
        if output.suffix == ".parquet":
            return (f"{output} holds the records up to input line {self.line}; "
                    "Parquet output cannot be resumed, score the input again")
        return f"{output} is complete up to input line {self.line}; run the same command with --resume to finish"

    def summary(self, seconds: float, output: Path | None, rejects: Path) -> BatchSummary:
        return BatchSummary(self.scored - self.scored_before, self.rejected - self.rejected_before, seconds,
                            output, rejects if self.rejected else None, self.resumed_from_line,
                            self.scored_before, self.rejected_before)


def _start_run(input_path: Path, output: Path | None, resume: bool) -> _Run:
    """A fresh run, or with ``resume`` the interrupted one its checkpoint describes."""
    ckpt = checkpoint_path(output) if output is not None else None
    # A missing input has none: reading it reports "no such file" as for any run.
    fingerprint = input_fingerprint(input_path) if ckpt is not None and input_path.is_file() else None
    run = _Run(str(input_path.resolve()), fingerprint, ckpt)
    if not resume:
        return run
    if ckpt is None or output is None or output.suffix == ".parquet":
        raise InputError("--resume needs a JSONL output file (-o OUT.jsonl)")
    if not ckpt.exists():
        return run
    state = json.loads(ckpt.read_text(encoding="utf-8"))
    if state.get("input") != run.input:
        raise InputError(f"{ckpt}: that run scored {state.get('input')}, not {input_path}")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        raise InputError(f"{input_path} changed since the interrupted run ({ckpt}); resuming would mix "
                         "records of two inputs: score it again without --resume")
    run.line = run.resumed_from_line = state["line"]
    run.scored = run.scored_before = state["scored"]
    run.rejected = run.rejected_before = state["rejected"]
    run.resume_at = (state["out_bytes"], state["rej_bytes"])
    return run


def score_file(
    input_path: Path,
    engine_factory: EngineFactory,
    settings: Settings,
    output: Path | None = None,
    rejects: Path | None = None,
    progress: bool | None = None,
    workers: int = 1,
    resume: bool = False,
) -> BatchSummary:
    """Score an archive (see the module's docstring). ``progress``: a bar on stderr; by default
    only when stderr is a terminal. Ctrl-C or SIGTERM (raised as ``KeyboardInterrupt``) stops
    the workers, leaves the output whole up to the last checkpoint and propagates with a
    note saying how far the output goes."""
    masker = PiiMasker.from_settings(settings.pii)
    rejects = rejects or default_rejects_path(input_path, output)
    run = _start_run(input_path, output, resume)
    show = sys.stderr.isatty() if progress is None else progress
    t0 = time.perf_counter()
    pool = _WorkerPool(engine_factory, workers) if workers > 1 else None
    try:
        # One worker scores in this process, with an engine built once, here.
        scorer: Submitter = pool if pool is not None else InProcess(engine_factory())
        with ScoreOutputs(output, rejects, run.resume_at) as out, _progress_bar(input_path, run.line, show) as bar:
            items = read_conversations(input_path, settings.limits)
            for done in score_stream(items, scorer, masker, batch_size=settings.batch_size, after_line=run.line):
                with signals_held():  # output, rejects and checkpoint move on together
                    out.write_records(done.records)
                    for rec in done.rejects:
                        out.write_reject(rec)
                    run.advance(done, *out.commit())
                bar.update(done.last_line - bar.n)
            bar.update(max((bar.total or 0) - bar.n, 0))  # blank lines at the end are not items
    except KeyboardInterrupt as exc:
        exc.add_note(run.stopped_note(output))
        raise
    finally:
        if pool is not None:
            pool.close()
    run.finish()
    return run.summary(time.perf_counter() - t0, output, rejects)


def _progress_bar(input_path: Path, start_line: int, show: bool) -> tqdm:
    """A bar over input lines, with the total (so a percentage and an ETA) where the input
    can be counted ahead; a resumed run starts at the line it resumes after."""
    total = count_records(input_path) if show else None
    return tqdm(total=total, initial=start_line, disable=not show, unit=" conv", file=sys.stderr,
                dynamic_ncols=True)

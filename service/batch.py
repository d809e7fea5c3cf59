"""Batch scoring of an archive: read → validate → mask → score → write, in
input order, with every invalid line in a rejects file.

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
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from kefuqa.contract import Conversation
from kefuqa.io.readers import InputError, Reject, read_conversations
from kefuqa.io.writers import dumps, reject_record
from kefuqa.models.engine import Engine
from kefuqa.pipeline import mask_conversation
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

    def __call__(self) -> Engine:
        from kefuqa.models.engine import create_engine

        return create_engine(self.name, rules_file=self.rules_file, home=self.home, threads=self.threads)


@dataclass(frozen=True)
class BatchSummary:
    scored: int
    rejected: int
    seconds: float
    output: Path | None
    rejects: Path | None
    resumed_from_line: int = 0

    def line(self) -> str:
        where = f" → {self.output}" if self.output else ""
        rej = f" (see {self.rejects})" if self.rejected and self.rejects else ""
        rate = self.scored / self.seconds if self.seconds > 0 else 0.0
        resumed = f", resumed after line {self.resumed_from_line}" if self.resumed_from_line else ""
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


def chunks(items: Iterator[tuple[int, Conversation | Reject]], size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------ worker processes
_WORKER_ENGINE: Engine | None = None


def _init_worker(factory: EngineFactory) -> None:
    global _WORKER_ENGINE  # one engine per worker process, created once
    _WORKER_ENGINE = factory()


def _score_in_worker(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.score_batch([Conversation.model_validate(d) for d in payload])


class _Scorer:
    """In-process for one worker, a process pool otherwise; results in submit order."""

    def __init__(self, factory: EngineFactory, workers: int) -> None:
        self.pool = None
        if workers > 1:
            self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(factory,))
            self.window = 2 * workers
        else:
            self.engine = factory()
            self.window = 1

    def submit(self, convs: list[Conversation]) -> Any:
        if self.pool is None:
            return convs  # scored in result(), where a failure is handled like a worker's
        return self.pool.apply_async(_score_in_worker, ([c.model_dump(mode="json") for c in convs],))

    def result(self, handle: Any) -> list[dict[str, Any]]:
        return self.engine.score_batch(handle) if self.pool is None else handle.get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


# ------------------------------------------------------------ outputs
class _Outputs:
    """Score records (JSONL, JSONL.gz or Parquet, or stdout) and the rejects file."""

    def __init__(self, stack: ExitStack, output: Path | None, rejects: Path, resume: dict | None) -> None:
        self.output, self.rejects = output, rejects
        self.parquet = None
        self.rej: IO[bytes] | None = None
        mode = "r+b" if resume else "wb"
        if output is None:
            self.out: IO[bytes] = sys.stdout.buffer
        elif output.suffix == ".parquet":
            from kefuqa.io.parquet import ParquetRecordWriter

            self.parquet = ParquetRecordWriter(output)
            stack.callback(self.parquet.close)
        else:
            if output.suffix == ".gz":
                raise InputError(f"{output}: write JSONL or Parquet (.jsonl, .parquet); compress afterwards")
            output.parent.mkdir(parents=True, exist_ok=True)
            self.out = stack.enter_context(output.open(mode if output.exists() else "wb"))
            if resume:
                self.out.truncate(resume["out_bytes"])
                self.out.seek(resume["out_bytes"])
        if resume and rejects.exists():
            self.rej = stack.enter_context(rejects.open("r+b"))
            self.rej.truncate(resume["rej_bytes"])
            self.rej.seek(resume["rej_bytes"])
        elif not resume and rejects.exists():
            rejects.unlink()  # a fresh run: an old rejects file would mix two runs
        self.stack = stack

    def write_records(self, records: list[dict[str, Any]]) -> None:
        if self.parquet is not None:
            self.parquet.write(records)
        else:
            self.out.write("".join(dumps(r) + "\n" for r in records).encode())

    def write_reject(self, record: dict[str, Any]) -> None:
        if self.rej is None:  # created on the first reject only
            self.rejects.parent.mkdir(parents=True, exist_ok=True)
            self.rej = self.stack.enter_context(self.rejects.open("wb"))
        self.rej.write((dumps(record) + "\n").encode())

    def commit(self) -> tuple[int, int]:
        """Flush and fsync; the byte sizes that are now complete."""
        out_bytes = rej_bytes = 0
        if self.parquet is None:
            self.out.flush()
            if self.out is not sys.stdout.buffer:
                os.fsync(self.out.fileno())
                out_bytes = self.out.tell()
        if self.rej is not None:
            self.rej.flush()
            os.fsync(self.rej.fileno())
            rej_bytes = self.rej.tell()
        return out_bytes, rej_bytes


def _one_by_one(scorer: _Scorer, lined: list[tuple[int, Conversation]],
                masker: PiiMasker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A chunk's engine call failed: score its conversations one at a time; the ones
    that still fail become reject lines with the error, the rest are scored as usual."""
    records, failed = [], []
    for line, conv in lined:
        try:
            records.extend(scorer.result(scorer.submit([conv])))
        except Exception as exc:  # noqa: BLE001 - reported on that conversation's reject line
            reason = masker.mask(f"could not score: {type(exc).__name__}: {exc}")[:500]
            failed.append({"line": line, "id": conv.id, "reason": reason, "raw": None})
    return records, failed


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
    masker = PiiMasker.from_settings(settings.pii)
    rejects = rejects or default_rejects_path(input_path, output)
    ckpt = checkpoint_path(output) if output is not None else None
    state: dict[str, Any] | None = None
    # A missing input has none: reading it reports "no such file" as for any run.
    fingerprint = input_fingerprint(input_path) if ckpt is not None and input_path.is_file() else None
    if resume:
        if ckpt is None or output is None or output.suffix == ".parquet":
            raise InputError("--resume needs a JSONL output file (-o OUT.jsonl)")
        if ckpt.exists():
            state = json.loads(ckpt.read_text(encoding="utf-8"))
            if state.get("input") != str(input_path.resolve()):
                raise InputError(f"{ckpt}: that run scored {state.get('input')}, not {input_path}")
            if fingerprint is not None and state.get("fingerprint") != fingerprint:
                raise InputError(f"{input_path} changed since the interrupted run ({ckpt}); resuming would mix "
                                 "records of two inputs: score it again without --resume")
    start_line = state["line"] if state else 0
    scored = state["scored"] if state else 0
    rejected = state["rejected"] if state else 0
    show = sys.stderr.isatty() if progress is None else progress
    t0 = time.perf_counter()
    scorer = _Scorer(engine_factory, workers)
    try:
        with ExitStack() as stack:
            out = _Outputs(stack, output, rejects, state)
            bar = stack.enter_context(tqdm(disable=not show, unit=" conv", file=sys.stderr, initial=start_line))
            pending: deque = deque()

            def drain(block: bool) -> None:
                nonlocal scored, rejected
                while pending and (block or len(pending) >= scorer.window):
                    last_line, n_in, handle, rejects_here, lined = pending.popleft()
                    try:
                        records = scorer.result(handle) if handle is not None else []
                    except Exception:  # noqa: BLE001 - one failing conversation must not stop the run
                        records, failed = _one_by_one(scorer, lined, masker)
                        rejects_here = sorted(rejects_here + failed, key=lambda r: r["line"])
                    out.write_records(records)
                    for rec in rejects_here:
                        out.write_reject(rec)
                    scored += len(records)
                    rejected += len(rejects_here)
                    out_bytes, rej_bytes = out.commit()
                    if ckpt is not None:
                        _save_checkpoint(ckpt, {"input": str(input_path.resolve()), "fingerprint": fingerprint,
                                                "line": last_line,
                                                "out_bytes": out_bytes, "rej_bytes": rej_bytes,
                                                "scored": scored, "rejected": rejected})
                    bar.update(n_in)

            for chunk in chunks(read_conversations(input_path, settings.limits), settings.batch_size):
                chunk = [(n, item) for n, item in chunk if n > start_line]  # done before a crash
                if not chunk:
                    continue
                lined = [(n, mask_conversation(i, masker)) for n, i in chunk if not isinstance(i, Reject)]
                convs = [c for _, c in lined]
                rejects_here = [reject_record(i, masker) for _, i in chunk if isinstance(i, Reject)]
                pending.append((chunk[-1][0], len(chunk), scorer.submit(convs) if convs else None, rejects_here, lined))
                drain(block=False)
            drain(block=True)
    finally:
        scorer.close()
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # finished: nothing to resume
    return BatchSummary(scored, rejected, time.perf_counter() - t0, output,
                        rejects if rejected else None, start_line)

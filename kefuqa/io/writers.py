"""Output for score records and rejects: JSON Lines (UTF-8, Chinese kept readable)
or Parquet for records, JSON Lines for rejects.

``ScoreRecord`` is the typed boundary: the pipeline hands records over as
``ScoreRecord`` objects and ``record_object`` turns each into the JSON object
that is written.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any

from kefuqa.contract import ScoreRecord
from kefuqa.io.readers import InputError, Reject
from kefuqa.text.pii import PiiMasker


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _mask_value(value: Any, masker: PiiMasker) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list):
        return [_mask_value(v, masker) for v in value]
    if isinstance(value, dict):
        return {masker.mask(k): _mask_value(v, masker) for k, v in value.items()}
    return value


def _unescape(match: re.Match[str]) -> str:
    ch = chr(int(match.group(1), 16))
    return match.group() if "\ud800" <= ch <= "\udfff" else ch


def mask_raw(raw: str, masker: PiiMasker) -> str:
    """A rejected input line with PII masked in what it *says*: JSON is decoded, its
    strings masked and written back (so ``\\u0031\\u0033\\u0038…`` cannot hide a phone
    number); a line that does not parse has its \\u escapes decoded before masking."""
    if not masker.enabled:
        return raw
    try:
        masked = _mask_value(json.loads(raw), masker)
    except (ValueError, RecursionError):
        return masker.mask(_ESCAPE.sub(_unescape, raw))
    text = dumps(masked)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as its \\u escape
        text = json.dumps(masked, separators=(",", ":"))
    return text


def reject_record(reject: Reject, masker: PiiMasker) -> dict[str, Any]:
    """The rejects-file line: where, why, and the (masked) input to fix and re-run."""
    return {
        "line": reject.line,
        "id": masker.mask_id(reject.id) if reject.id is not None else None,
        "reason": masker.mask(reject.reason),
        "raw": mask_raw(reject.raw, masker) if reject.raw is not None else None,
    }


# The order kefu-qa writes a record's metrics in: its own counts and times beside the
# scores.md ones they go with (the Parquet schema in kefuqa/io/parquet.py has it too).
_METRICS_ORDER = ("agent_turns", "customer_turns", "first_response_s", "avg_response_s",
                  "longest_wait_s", "duration_s", "polite_phrase_rate", "taboo_hits")


def record_object(record: ScoreRecord) -> dict[str, Any]:
    """A score record as it is written (a JSON Lines line, a Parquet row): the fields the
    engine set, ``started_at`` as ``datetime.isoformat`` writes it (``+00:00``, not ``Z``),
    floats as Python floats, and the metrics in the order above."""
    data = record.model_dump(exclude_unset=True)
    if record.started_at is not None and "started_at" in data:
        data["started_at"] = record.started_at.isoformat()
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        ordered = {name: metrics[name] for name in _METRICS_ORDER if name in metrics}
        data["metrics"] = ordered | {name: v for name, v in metrics.items() if name not in ordered}
    return data


class ScoreOutputs:
    """Where a run writes: score records (JSON Lines, Parquet, or JSON Lines on stdout)
    and the rejects file, which is created on the first reject. A context manager.

    ``resume_at`` is ``(out_bytes, rej_bytes)``, the sizes a checkpoint recorded as
    complete: both files are truncated to them and written on from there. Without it a
    rejects file left by an earlier run is removed, so two runs never mix. A run that stops
    with an exception (Ctrl-C, SIGTERM) leaves both files as the last ``commit`` made them:
    whole records only, matching the checkpoint."""

    def __init__(self, output: Path | None, rejects: Path, resume_at: tuple[int, int] | None = None) -> None:
        self.output, self.rejects = output, rejects
        self.out: IO[bytes] | None = None
        self.parquet: Any = None  # a ParquetRecordWriter; pyarrow is imported only for Parquet
        self.rej: IO[bytes] | None = None
        self._stack = ExitStack()
        self._committed = resume_at or (0, 0)
        try:
            self._open_output(resume_at)
            self._open_rejects(resume_at)
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> ScoreOutputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is not None:
                self._rollback()
        finally:
            self._stack.close()

    def _rollback(self) -> None:
        for fh, size in ((self.out, self._committed[0]), (self.rej, self._committed[1])):
            if fh is not None and fh is not sys.stdout.buffer:
                with suppress(OSError):  # the disk error that stopped the run must not be hidden
                    fh.truncate(size)

    def _open_output(self, resume_at: tuple[int, int] | None) -> None:
        output = self.output
        if output is None:
            self.out = sys.stdout.buffer
        elif output.suffix == ".parquet":
            from kefuqa.io.parquet import ParquetRecordWriter

            self.parquet = ParquetRecordWriter(output)
            self._stack.callback(self.parquet.close)
        else:
            if output.suffix == ".gz":
                raise InputError(f"{output}: write JSONL or Parquet (.jsonl, .parquet); compress afterwards")
            output.parent.mkdir(parents=True, exist_ok=True)
            mode = "r+b" if resume_at and output.exists() else "wb"
            self.out = self._stack.enter_context(output.open(mode))
            if resume_at:
                self.out.truncate(resume_at[0])
                self.out.seek(resume_at[0])

    def _open_rejects(self, resume_at: tuple[int, int] | None) -> None:
        if resume_at and self.rejects.exists():
            self.rej = self._stack.enter_context(self.rejects.open("r+b"))
            self.rej.truncate(resume_at[1])
            self.rej.seek(resume_at[1])
        elif not resume_at and self.rejects.exists():
            self.rejects.unlink()  # a fresh run: an old rejects file would mix two runs

    def write_records(self, records: Sequence[ScoreRecord]) -> None:
        objects = [record_object(r) for r in records]
        if self.parquet is not None:
            self.parquet.write(objects)
        elif self.out is not None:
            self.out.write("".join(dumps(o) + "\n" for o in objects).encode())

    def write_reject(self, record: dict[str, Any]) -> None:
        if self.rej is None:  # created on the first reject only
            self.rejects.parent.mkdir(parents=True, exist_ok=True)
            self.rej = self._stack.enter_context(self.rejects.open("wb"))
        self.rej.write((dumps(record) + "\n").encode())

    def commit(self) -> tuple[int, int]:
        """Flush and fsync; the byte sizes of the records and rejects now complete."""
        out_bytes = rej_bytes = 0
        if self.out is not None:
            self.out.flush()
            if self.out is not sys.stdout.buffer:
                os.fsync(self.out.fileno())
                out_bytes = self.out.tell()
        if self.rej is not None:
            self.rej.flush()
            os.fsync(self.rej.fileno())
            rej_bytes = self.rej.tell()
        self._committed = (out_bytes, rej_bytes)
        return out_bytes, rej_bytes

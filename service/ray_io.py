"""Ray Data's two ends for batch scoring: a datasource that reads archives on the
cluster (read → validate → mask, as ``kefuqa.pipeline.prepare`` does locally) and a
datasink that writes each scored part of the input as its own files.

The unit of work is a *unit*: ``unit_items`` consecutive input items of one file,
exactly one ``prepare`` chunk. Its key, ``FFFFF-LLLLLLLLLLLL`` (file number, first
line), names what it becomes under the output directory::

    records/part-FFFFF-LLLLLLLLLLLL.jsonl   (or .parquet): its score records, in line order
    rejects/part-FFFFF-LLLLLLLLLLLL.jsonl   its rejects, when it has any
    _units/part-FFFFF-LLLLLLLLLLLL.json     the commit marker, written last

so part names sort into input order, and a unit counts as done once its markers
account for every one of its rows (``kefuqa.service.ray_output``).
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink, FileBasedDatasource

from kefuqa.contract import Conversation
from kefuqa.io.parquet import ParquetRecordWriter, read_parquet_rows
from kefuqa.io.readers import InputError, Item, parse_records
from kefuqa.io.writers import dumps, record_object
from kefuqa.pipeline import Chunk, chunks, prepare, score_stream
from kefuqa.service.batch import EngineSpec
from kefuqa.settings import Limits
from kefuqa.text.pii import PiiMasker

RECORDS, REJECTS, UNITS = "records", "rejects", "_units"

# What the read tasks hand to the scoring actors: one row per input item.
READ_SCHEMA = pa.schema([("unit", pa.string()), ("unit_rows", pa.int64()), ("line", pa.int64()),
                         ("conv", pa.string()), ("reject", pa.string())])
# What the actors hand to the sink: one row per input item, a record or a reject line.
SCORED_SCHEMA = pa.schema([("unit", pa.string()), ("unit_rows", pa.int64()), ("line", pa.int64()),
                           ("kind", pa.string()), ("text", pa.string())])


def unit_key(file_no: int, line: int) -> str:
    return f"{file_no:05d}-{line:012d}"


def part_name(key: str) -> str:
    return f"part-{key}"


def runs(values: list[Any]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of equal neighbours: a unit's rows stay together."""
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or values[end] != values[start]:
            yield start, end
            start = end


# ------------------------------------------------------------------ reading
def _lines(f: io.BufferedReader) -> Iterator[tuple[int, bytes | Any]]:
    """JSON Lines, or a JSON array (parsed whole, items numbered from 1), as the
    local reader (``kefuqa.io.readers``) numbers them."""
    head = f.peek(64).lstrip()[:1]
    if head == b"[":
        try:
            items = json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not a valid JSON array: {exc}") from exc
        yield from enumerate(items, 1)
        return
    for line_no, line in enumerate(f, 1):
        yield line_no, line.rstrip(b"\r\n")


def _unit_table(key: str, chunk: Chunk) -> pa.Table:
    # (line, conversation, reject line): exactly one of the two is set
    rows: list[tuple[int, str | None, str | None]] = [(n, conv.model_dump_json(), None) for n, conv in chunk.lined]
    rows += [(rec["line"], None, dumps(rec)) for rec in chunk.rejects]
    rows.sort(key=lambda r: r[0])
    return pa.Table.from_pydict({"unit": [key] * len(rows), "unit_rows": [chunk.items] * len(rows),
                                 "line": [r[0] for r in rows], "conv": [r[1] for r in rows],
                                 "reject": [r[2] for r in rows]}, schema=READ_SCHEMA)


def read_units(items: Iterable[Item], file_no: int, masker: PiiMasker, unit_items: int,
               done: frozenset[str] = frozenset()) -> Iterator[pa.Table]:
    """One table per unit of ``unit_items`` input items (``READ_SCHEMA``), masked by
    ``prepare``; the units in ``done`` are skipped after their ids were seen."""
    for part in chunks(items, unit_items):
        key = unit_key(file_no, part[0][0])
        if key in done:
            continue
        for chunk in prepare(part, masker, batch_size=unit_items):
            yield _unit_table(key, chunk)


class ConversationSource(FileBasedDatasource):
    """Archives (JSONL, ``.jsonl.gz``, a JSON array, Parquet) read by Ray's read tasks,
    one file per task, streamed: each unit is validated (duplicate ids over the whole
    file, as locally) and PII-masked here, so nothing unmasked enters Ray's object
    store. Units in ``done`` (finished by an interrupted run) are read for their ids
    but not emitted."""

    def __init__(self, paths: list[str], *, limits: Limits, masker: PiiMasker, unit_items: int,
                 done: frozenset[str] = frozenset()) -> None:
        super().__init__(paths)
        self.numbers = {os.path.normpath(p): i for i, p in enumerate(paths)}
        self.limits, self.masker, self.unit_items, self.done = limits, masker, unit_items, done

    def _open_input_source(self, filesystem: Any, path: str, **open_args: Any) -> Any:
        if path.endswith(".parquet"):  # Parquet needs a seekable file, not a stream
            return filesystem.open_input_file(path)
        return super()._open_input_source(filesystem, path, **open_args)

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[Block]:
        file_no = self.numbers[os.path.normpath(path)]
        raw: Iterable[tuple[int, Any]]
        if path.endswith(".parquet"):
            raw = read_parquet_rows(cast(Path, f))  # pyarrow opens a path or an open file alike
        else:
            raw = _lines(io.BufferedReader(cast(io.RawIOBase, f), 1 << 20))
        try:
            yield from read_units(parse_records(raw, self.limits), file_no, self.masker, self.unit_items, self.done)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
        except Exception as exc:  # a broken file: gzip, Arrow and Parquet raise several types
            raise InputError(f"{path}: cannot read: {exc}") from exc


# ------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class MaskedUpstream(PiiMasker):
    """The masker for conversations the read task has masked already: they pass
    through unchanged (masking twice could pseudonymise an id's pseudonym), while
    what is made here, an engine's error on a reject line, is masked as usual."""

    active: bool = True

    def mask(self, text: str) -> str:
        return PiiMasker(self.active, self.mask_order_numbers, self.id_key).mask(text)


class RayScorer:
    """An actor of the pool: builds its engine once, then scores whole blocks with
    the pipeline's ``score_stream``; a conversation the engine fails on becomes a
    reject, as locally. Reader rejects pass through."""

    def __init__(self, spec: EngineSpec, masker: PiiMasker, batch_size: int) -> None:
        self.engine = spec()
        self.masker = MaskedUpstream(False, masker.mask_order_numbers, masker.id_key, active=masker.enabled)
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        cols = batch.to_pydict()
        out: dict[str, list[Any]] = {name: [] for name in SCORED_SCHEMA.names}
        for start, end in runs(cols["unit"]):  # lines are unique within a unit, not within a block
            rows = list(zip(cols["line"][start:end], cols["conv"][start:end], cols["reject"][start:end]))
            scored = [(line, "reject", rej) for line, _, rej in rows if rej is not None]
            scored += self._score([(line, Conversation.model_validate_json(c)) for line, c, _ in rows if c is not None])
            scored.sort(key=lambda r: r[0])
            out["unit"] += [cols["unit"][start]] * len(scored)
            out["unit_rows"] += [cols["unit_rows"][start]] * len(scored)
            for name, values in zip(("line", "kind", "text"), zip(*scored)):
                out[name] += values
        return pa.Table.from_pydict(out, schema=SCORED_SCHEMA)

    def _score(self, lined: list[tuple[int, Conversation]]) -> list[tuple[int, str, str]]:
        out: list[tuple[int, str, str]] = []
        pos = 0
        for done in score_stream(lined, self.engine, self.masker, batch_size=self.batch_size):
            failed = {rej["line"] for rej in done.rejects}
            lines = [line for line, _ in lined[pos : pos + done.items] if line not in failed]
            pos += done.items
            out += [(line, "record", dumps(record_object(rec))) for line, rec in zip(lines, done.records)]
            out += [(rej["line"], "reject", dumps(rej)) for rej in done.rejects]
        return out


# ------------------------------------------------------------------ writing
def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename: a killed task leaves a hidden temporary file, never
    half a part under the part's name."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ScoreSink(Datasink[list[dict[str, Any]]]):
    """Writes each group of rows of one unit as its part files and, last, its marker.
    A unit normally arrives whole; should Ray split one across blocks, each piece is
    a part of its own, named by its first line, and the markers add up."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        self.out_dir, self.fmt = out_dir, fmt

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        for sub in (RECORDS, REJECTS, UNITS):
            (self.out_dir / sub).mkdir(parents=True, exist_ok=True)

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[dict[str, Any]]:
        markers = []
        for block in blocks:
            cols = BlockAccessor.for_block(block).to_arrow().to_pydict()
            for start, end in runs(cols["unit"]):
                markers.append(self._write_part({k: v[start:end] for k, v in cols.items()}))
        return markers

    def _write_part(self, rows: dict[str, list[Any]]) -> dict[str, Any]:
        unit = rows["unit"][0]
        name = part_name(unit_key(int(unit.split("-")[0]), rows["line"][0]))
        records = [t for k, t in zip(rows["kind"], rows["text"]) if k == "record"]
        rejects = [t for k, t in zip(rows["kind"], rows["text"]) if k == "reject"]
        if records:
            path = self.out_dir / RECORDS / f"{name}.{self.fmt}"
            _atomic_write(path, lambda tmp: _write_records(tmp, records, self.fmt))
        if rejects:
            text = "".join(r + "\n" for r in rejects).encode()
            _atomic_write(self.out_dir / REJECTS / f"{name}.jsonl", lambda tmp: tmp.write_bytes(text))
        marker = {"part": name, "unit": unit, "unit_rows": rows["unit_rows"][0], "rows": len(rows["line"]),
                  "first_line": rows["line"][0], "last_line": rows["line"][-1],
                  "scored": len(records), "rejected": len(rejects)}
        data = json.dumps(marker).encode()
        _atomic_write(self.out_dir / UNITS / f"{name}.json", lambda tmp: tmp.write_bytes(data))
        return marker


def _write_records(path: Path, lines: list[str], fmt: str) -> None:
    if fmt == "parquet":
        writer = ParquetRecordWriter(path)
        try:
            writer.write([json.loads(line) for line in lines])
        finally:
            writer.close()
    else:
        path.write_bytes("".join(line + "\n" for line in lines).encode())

"""Read conversation archives: JSON Lines, ``.jsonl.gz`` and a JSON array.

Yields ``(line_no, Conversation)`` or ``(line_no, Reject)`` in input order.
Nothing is dropped: every input line ends up scored or rejected with a reason.
For a JSON array, ``line_no`` is the item's position (1-based).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kefuqa.contract import Conversation, check_safe_text
from kefuqa.settings import Limits


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    id: str | None = None
    raw: str | None = None  # the offending input, PII-masked before it is written


Item = tuple[int, Conversation | Reject]


class InputError(Exception):
    """The input as a whole cannot be read (missing file, unknown format)."""


def describe_validation_error(exc: ValidationError) -> str:
    """One readable reason per problem, e.g. ``turns[2].speaker: unknown speaker 'bot'``."""
    parts = []
    for err in exc.errors():
        loc = ""
        for piece in err["loc"]:
            loc += f"[{piece}]" if isinstance(piece, int) else (f".{piece}" if loc else str(piece))
        if err["type"] == "missing":
            parts.append(f"missing {loc}")
        elif loc.endswith(".speaker") and err["type"] == "literal_error":
            parts.append(f"{loc}: unknown speaker {err['input']!r} (expected agent, customer or system)")
        elif loc.endswith(".text") and "empty text" in err["msg"]:
            parts.append(f"{loc}: empty text")
        else:
            parts.append(f"{loc or 'conversation'}: {err['msg']}")
    return "; ".join(parts)


def _check_limits(conv: Conversation, limits: Limits) -> str | None:
    if len(conv.turns) > limits.max_turns:
        return f"too many turns: {len(conv.turns)} > {limits.max_turns} (KEFUQA_MAX_TURNS)"
    total = 0
    for i, turn in enumerate(conv.turns):
        if len(turn.text) > limits.max_turn_chars:
            return (
                f"turns[{i}].text too long: {len(turn.text)} characters > "
                f"{limits.max_turn_chars} (KEFUQA_MAX_TURN_CHARS)"
            )
        total += len(turn.text)
    if total > limits.max_total_chars:
        return f"conversation too long: {total} characters > {limits.max_total_chars} (KEFUQA_MAX_TOTAL_CHARS)"
    return None


def validate_object(obj: Any, limits: Limits) -> Conversation | str:
    """A parsed JSON value → a Conversation, or the reason it is not one."""
    if not isinstance(obj, dict):
        return f"not a JSON object (got {type(obj).__name__})"
    try:
        conv = Conversation.model_validate(obj)
    except ValidationError as exc:
        return describe_validation_error(exc)
    return _check_limits(conv, limits) or conv


def json_limit_reason(exc: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused a syntactically valid document."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]  # "Exceeds the limit (4300 digits) for integer string conversion"


def _safe_id(obj: Any) -> str | None:
    """The item's id for a reject line, when it is a string a UTF-8 writer can carry."""
    cid = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(cid, str):
        return None
    try:
        return check_safe_text(cid)
    except ValueError:
        return None


def parse_records(records: Iterable[tuple[int, bytes | str | Any]], limits: Limits) -> Iterator[Item]:
    """Raw lines (bytes/str) or already-parsed objects → conversations or rejects."""
    first_seen: dict[str, int] = {}
    for line_no, raw in records:
        text: str | None = None
        if isinstance(raw, (bytes, str)):
            if len(raw) > limits.max_line_bytes:
                reason = f"line too long: {len(raw)} bytes > {limits.max_line_bytes} (KEFUQA_MAX_LINE_BYTES)"
                yield line_no, Reject(line_no, reason, raw=None)
                continue
            try:
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            except UnicodeDecodeError as exc:
                yield line_no, Reject(line_no, f"not UTF-8: {exc.reason} at byte {exc.start}")
                continue
            if not text.strip():
                continue  # blank lines are layout, not records
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line_no, Reject(line_no, f"bad JSON: {exc.msg} at column {exc.colno}", raw=text)
                continue
            except (ValueError, RecursionError) as exc:  # integers over 4,300 digits, deep nesting
                yield line_no, Reject(line_no, f"bad JSON: {json_limit_reason(exc)}", raw=text)
                continue
        else:
            obj = raw
        result = validate_object(obj, limits)
        conv_id = _safe_id(obj)
        if isinstance(result, str):
            yield line_no, Reject(line_no, result, id=conv_id, raw=text)
            continue
        if result.id in first_seen:
            reason = f"duplicate id {result.id!r} (first seen on line {first_seen[result.id]})"
            yield line_no, Reject(line_no, reason, id=result.id, raw=text)
            continue
        first_seen[result.id] = line_no
        yield line_no, result


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _raw_records(path: Path) -> Iterator[tuple[int, bytes | Any]]:
    with _open(path) as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        rest = fh.read() if head == b"[" else None
        if rest is not None:  # a JSON array: parsed whole, items numbered from 1
            try:
                items = json.loads(b"[" + rest)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: not a valid JSON array: {exc}") from exc
            yield from enumerate(items, 1)
            return
    with _open(path) as fh:
        for line_no, line in enumerate(fh, 1):
            yield line_no, line.rstrip(b"\r\n")


def count_records(path: Path) -> int | None:
    """How many lines (Parquet: rows) the reader will number, counted ahead of the run so a
    progress bar can show a percentage and an ETA. Counting newlines in 1 MiB blocks runs at
    disk or gunzip speed, far ahead of scoring. None for a JSON array or an unreadable file
    (the reader reports what is wrong with it)."""
    try:
        if path.suffix == ".parquet":
            from kefuqa.io.parquet import count_parquet_rows

            return count_parquet_rows(path)
        with _open(path) as fh:
            lines, head, last = 0, b"", b"\n"
            while block := fh.read(1 << 20):
                head = head or block.lstrip()[:1]
                if head == b"[":
                    return None
                lines += block.count(b"\n")
                last = block[-1:]
        return lines + (last != b"\n")
    except Exception:  # noqa: BLE001 - a missing or broken file is the reader's to report
        return None


def read_conversations(path: Path, limits: Limits | None = None) -> Iterator[Item]:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a .jsonl, .jsonl.gz, .json or .parquet file")
    if path.suffix == ".parquet":
        from kefuqa.io.parquet import read_parquet_rows

        try:
            yield from parse_records(read_parquet_rows(path), limits or Limits())
        except Exception as exc:  # pyarrow raises several types for a broken file
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
        return
    try:
        yield from parse_records(_raw_records(path), limits or Limits())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc

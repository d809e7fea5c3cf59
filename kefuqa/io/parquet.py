"""Parquet input and output (pyarrow) with an explicit score-record schema,
so every row group has the same types whatever its values (None included)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from kefuqa.contract import LABELS


def _probs_type() -> pa.DataType:
    return pa.struct([(name, pa.struct([(v, pa.float64()) for v in values])) for name, values in LABELS.items()])


SCORE_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("agent_id", pa.string()),
    ("started_at", pa.string()),
    ("channel", pa.string()),
    ("model", pa.struct([("name", pa.string()), ("version", pa.string())])),
    ("labels", pa.struct([(name, pa.string()) for name in LABELS])),
    ("probs", _probs_type()),
    ("turns", pa.list_(pa.struct([("index", pa.int64()), ("speaker", pa.string()), ("sentiment", pa.float64())]))),
    ("evidence", pa.list_(pa.struct([("turn", pa.int64()), ("start", pa.int64()), ("end", pa.int64()),
                                     ("rule", pa.string()), ("text", pa.string())]))),
    ("metrics", pa.struct([("agent_turns", pa.int64()), ("customer_turns", pa.int64()),
                           ("first_response_s", pa.float64()), ("avg_response_s", pa.float64()),
                           ("longest_wait_s", pa.float64()), ("duration_s", pa.float64()),
                           ("polite_phrase_rate", pa.float64()), ("taboo_hits", pa.int64()),
                           # Call metrics (docs/phone-calls.md), after the others; null for chats.
                           ("silence_share", pa.float64()), ("longest_silence_s", pa.float64()),
                           ("overlaps", pa.int64()), ("interruptions", pa.int64()), ("talk_ratio", pa.float64()),
                           ("hold_events", pa.int64()), ("holds_unannounced", pa.int64()),
                           ("holds_unthanked", pa.int64()), ("hold_etiquette", pa.float64())])),
    # Last, so a reader that takes columns by position finds the others where they were;
    # null where the transcript named no customer.
    ("customer_id", pa.string()),
    # Voice records only (docs/phone-calls.md); null for chats.
    ("role_flags", pa.list_(pa.struct([("turn", pa.int64()), ("likely_speaker", pa.string()),
                                       ("p", pa.float64())]))),
])


# The zone of a timestamp stored without one: transcript.md asks for an offset, and a time
# without one is Shanghai local time, as grading reads it (docs/grading.md).
NAIVE_TIME_ZONE = ZoneInfo("Asia/Shanghai")


def count_parquet_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def read_parquet_rows(path: Path, batch_rows: int = 4096) -> Iterator[tuple[int, Any]]:
    """Rows as Python objects, numbered from 1 (the 'line' of a reject).

    A timestamp with a zone keeps it (``+08:00`` stays ``+08:00``). One without is read in
    ``NAIVE_TIME_ZONE``, except a legacy INT96 column (Spark, Hive, Impala): those hold UTC
    instants by convention, so they are read as UTC."""
    pf = pq.ParquetFile(path)
    int96 = {pf.schema.column(i).path.split(".")[0] for i in range(len(pf.schema))
             if pf.schema.column(i).physical_type == "INT96"}
    n = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            n += 1
            yield n, {k: _plain(v, UTC if k in int96 else NAIVE_TIME_ZONE) for k, v in row.items() if v is not None}


def _plain(obj: Any, zone: tzinfo) -> Any:
    # Parquet has no "absent": a null optional field means the key was not there.
    if isinstance(obj, dict):
        return {k: _plain(v, zone) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_plain(v, zone) for v in obj]
    if isinstance(obj, datetime) and obj.tzinfo is None:
        return obj.replace(tzinfo=zone)
    return obj


# A row group is written when either is reached: large groups read fast, and no more than
# about one group of records is held in memory.
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 128 << 20  # of Arrow memory


class ParquetRecordWriter:
    def __init__(self, path: Path, row_group_rows: int = ROW_GROUP_ROWS,
                 row_group_bytes: int = ROW_GROUP_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, SCORE_SCHEMA)
        self.row_group_rows, self.row_group_bytes = row_group_rows, row_group_bytes
        self.pending: list[pa.Table] = []

    def write(self, records: list[dict[str, Any]]) -> None:
        if records:
            rows = [{k: r.get(k) for k in SCORE_SCHEMA.names} for r in records]
            self.pending.append(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA))
            if (sum(t.num_rows for t in self.pending) >= self.row_group_rows
                    or sum(t.nbytes for t in self.pending) >= self.row_group_bytes):
                self._write_row_group()

    def _write_row_group(self) -> None:
        if self.pending:
            table = pa.concat_tables(self.pending)
            self.writer.write_table(table, row_group_size=table.num_rows)
            self.pending = []

    def close(self) -> None:
        """Write what is pending and the footer; a run that stops early still leaves a readable
        file with every record handed over."""
        self._write_row_group()
        self.writer.close()

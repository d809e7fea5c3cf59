"""Parquet input and output (pyarrow) with an explicit score-record schema,
so every row group has the same types whatever its values (None included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
                           ("polite_phrase_rate", pa.float64()), ("taboo_hits", pa.int64())])),
])


def read_parquet_rows(path: Path, batch_rows: int = 4096) -> Iterator[tuple[int, Any]]:
    """Rows as Python objects, numbered from 1 (the 'line' of a reject)."""
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            n += 1
            yield n, _drop_nulls(row)


def _drop_nulls(obj: Any) -> Any:
    # Parquet has no "absent": a null optional field means the key was not there.
    if isinstance(obj, dict):
        return {k: _drop_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_nulls(v) for v in obj]
    return obj


class ParquetRecordWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, SCORE_SCHEMA)

    def write(self, records: list[dict[str, Any]]) -> None:
        if records:
            rows = [{k: r.get(k) for k in SCORE_SCHEMA.names} for r in records]
            self.writer.write_table(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA))

    def close(self) -> None:
        self.writer.close()

"""The same batch scoring on Ray Data, for archives past one machine.

This process runs the pipeline's ``score_stream`` (read, validate, mask, with
exact line numbers, duplicate ids and rejects, as in the local runner) in
windows of conversations; Ray Data does the expensive part: ``map_batches``
over an actor pool where each actor holds one engine (one ONNX session),
``preserve_order`` keeps input order, and records are written here as JSONL or
Parquet. Bad rows never reach Ray, so one bad line cannot fail a block (Ray
Data cannot skip a row).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kefuqa.contract import Conversation
from kefuqa.io.readers import InputError, read_conversations
from kefuqa.io.writers import ScoreOutputs
from kefuqa.pipeline import score_stream
from kefuqa.service.batch import BatchSummary, EngineSpec, default_rejects_path
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker


class RayScorer:
    """An actor of the pool: builds its engine once, scores one batch per call."""

    def __init__(self, spec: EngineSpec) -> None:
        self.engine = spec()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        convs = [Conversation.model_validate_json(s) for s in batch["conversation"]]
        records = self.engine.score_batch(convs)
        return {"record": [json.dumps(r, ensure_ascii=False) for r in records]}


class _RayWindows:
    """The pipeline's ``Submitter`` on Ray Data: one window of conversations is one
    Ray Data pipeline, scored by an actor pool of ``workers`` actors, in order."""

    window = 1

    def __init__(self, spec: EngineSpec, batch_size: int, workers: int) -> None:
        self.spec, self.batch_size, self.workers = spec, batch_size, workers

    def submit(self, conversations: list[Conversation]) -> Any:
        import ray.data

        # Enough blocks for every actor to get work.
        blocks = max(1, min(-(-len(conversations) // self.batch_size), 4 * self.workers))
        ds = ray.data.from_items([{"conversation": c.model_dump_json()} for c in conversations],
                                 override_num_blocks=blocks)
        return ds.map_batches(RayScorer, fn_constructor_kwargs={"spec": self.spec}, batch_size=self.batch_size,
                              compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks)), num_cpus=1)

    def result(self, handle: Any) -> list[dict[str, Any]]:
        return [json.loads(r) for batch in _iter_records(handle) for r in batch]


def score_file_ray(
    input_path: Path,
    spec: EngineSpec,
    settings: Settings,
    output: Path | None = None,
    rejects: Path | None = None,
    address: str | None = None,
    workers: int = 1,
    window: int = 20_000,
) -> BatchSummary:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InputError("Ray is not installed: pip install 'ray[data]'") from exc

    masker = PiiMasker.from_settings(settings.pii)
    rejects = rejects or default_rejects_path(input_path, output)
    t0 = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 num_cpus=None if address else workers)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    scored = rejected = 0
    try:
        with ScoreOutputs(output, rejects) as out:
            # Windows bound the memory this process holds; an engine error fails the run.
            items = read_conversations(input_path, settings.limits)
            scorer = _RayWindows(spec, settings.batch_size, workers)
            for done in score_stream(items, scorer, masker, batch_size=window, isolate_failures=False):
                for rec in done.rejects:
                    out.write_reject(rec)
                out.write_records(done.records)
                scored += len(done.records)
                rejected += len(done.rejects)
                out.commit()
    finally:
        if started_here:
            ray.shutdown()
    return BatchSummary(scored, rejected, time.perf_counter() - t0, output, rejects if rejected else None)


def _iter_records(ds: Any) -> Iterator[list[str]]:
    for batch in ds.iter_batches(batch_size=256, batch_format="pandas"):
        yield batch["record"].tolist()

"""The same batch scoring on Ray Data, for archives past one machine.

This process reads, validates and masks (exact line numbers, duplicate ids
and rejects, as in the local runner); Ray Data does the expensive part:
``map_batches`` over an actor pool where each actor holds one engine (one
ONNX session), ``preserve_order`` keeps input order, and records are written
here as JSONL or Parquet. Bad rows never reach Ray, so one bad line cannot
fail a block (Ray Data cannot skip a row).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kefuqa.contract import Conversation
from kefuqa.io.readers import InputError, Reject, read_conversations
from kefuqa.io.writers import reject_record
from kefuqa.pipeline import mask_conversation
from kefuqa.service.batch import BatchSummary, EngineSpec, _Outputs, chunks, default_rejects_path
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker


class RayScorer:
    """An actor of the pool: builds its engine once, scores one batch per call."""

    def __init__(self, spec: EngineSpec) -> None:
        self.engine = spec()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        convs = [Conversation.model_validate_json(s) for s in batch["conversation"]]
        records = self.engine.score_batch(convs)
        return {"record": [json.dumps(r, ensure_ascii=False) for r in records]}


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
    import json

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
        with ExitStack() as stack:
            out = _Outputs(stack, output, rejects, None)
            # Windows bound the memory this process holds; each is one Ray Data pipeline.
            for window_items in chunks(read_conversations(input_path, settings.limits), window):
                convs = [mask_conversation(i, masker) for _, i in window_items if not isinstance(i, Reject)]
                for _, item in window_items:
                    if isinstance(item, Reject):
                        out.write_reject(reject_record(item, masker))
                        rejected += 1
                if convs:
                    # Enough blocks for every actor to get work.
                    blocks = max(1, min(-(-len(convs) // settings.batch_size), 4 * workers))
                    ds: ray.data.Dataset = ray.data.from_items(
                        [{"conversation": c.model_dump_json()} for c in convs], override_num_blocks=blocks)
                    ds = ds.map_batches(RayScorer, fn_constructor_kwargs={"spec": spec},
                                        batch_size=settings.batch_size,
                                        compute=ray.data.ActorPoolStrategy(size=min(workers, blocks)), num_cpus=1)
                    for batch in _iter_records(ds):
                        out.write_records([json.loads(r) for r in batch])
                        scored += len(batch)
                out.commit()
    finally:
        if started_here:
            ray.shutdown()
    return BatchSummary(scored, rejected, time.perf_counter() - t0, output, rejects if rejected else None)


def _iter_records(ds: Any) -> Iterator[list[str]]:
    for batch in ds.iter_batches(batch_size=256, batch_format="pandas"):
        yield batch["record"].tolist()

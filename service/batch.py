"""Batch scoring of an archive: read → validate → mask → score → write, in
input order, with every invalid line in a rejects file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from kefuqa.contract import Conversation
from kefuqa.io.readers import Reject, read_conversations
from kefuqa.io.writers import dumps, open_text_out, reject_record
from kefuqa.models.engine import Engine
from kefuqa.pipeline import mask_conversation
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker


@dataclass(frozen=True)
class BatchSummary:
    scored: int
    rejected: int
    seconds: float
    output: Path | None
    rejects: Path | None

    def line(self) -> str:
        where = f" → {self.output}" if self.output else ""
        rej = f" (see {self.rejects})" if self.rejected and self.rejects else ""
        rate = self.scored / self.seconds if self.seconds > 0 else 0.0
        return (
            f"scored {self.scored}, rejected {self.rejected}{rej}, "
            f"{self.seconds:.2f} s ({rate:.0f} conversations/s){where}"
        )


def default_rejects_path(input_path: Path, output: Path | None) -> Path:
    base = output if output is not None else Path(input_path.name)
    name = base.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return base.with_name(name + ".rejects.jsonl")


def _batches(items: Iterator[tuple[int, Conversation | Reject]], size: int):
    batch: list[tuple[int, Conversation | Reject]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_file(
    input_path: Path,
    engine: Engine,
    settings: Settings,
    output: Path | None = None,
    rejects: Path | None = None,
    progress: bool | None = None,
) -> BatchSummary:
    masker = PiiMasker(settings.pii.enabled, settings.pii.mask_order_numbers)
    rejects = rejects or default_rejects_path(input_path, output)
    show = sys.stderr.isatty() if progress is None else progress
    start = time.perf_counter()
    scored = rejected = 0
    with ExitStack() as stack:
        out: IO[str] = stack.enter_context(open_text_out(output)) if output else sys.stdout
        rej_out: IO[str] | None = None
        bar = stack.enter_context(tqdm(disable=not show, unit=" conv", file=sys.stderr))
        for batch in _batches(read_conversations(input_path, settings.limits), settings.batch_size):
            convs = []
            for _, item in batch:
                if isinstance(item, Reject):
                    if rej_out is None:  # created on the first reject only
                        rej_out = stack.enter_context(open_text_out(rejects))
                    rej_out.write(dumps(reject_record(item, masker)) + "\n")
                    rejected += 1
                else:
                    convs.append(mask_conversation(item, masker))
            for record in engine.score_batch(convs):
                out.write(dumps(record) + "\n")
            scored += len(convs)
            bar.update(len(batch))
    return BatchSummary(scored, rejected, time.perf_counter() - start, output, rejects if rejected else None)

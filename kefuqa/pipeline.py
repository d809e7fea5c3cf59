"""The one scoring path every door that reads conversations shares:
read → reject → mask PII → score → record.

``score_stream`` takes what a reader yields (``(line, Conversation | Reject)``),
cuts it into chunks of ``batch_size`` input items, turns each reject into its
rejects-file line, masks the conversations and has an engine score them; what
comes back is typed ``ScoreRecord`` objects (scores.md) in input order, beside
the rejects. ``kefuqa score`` (in this process, in worker processes and with
``--resume``), the Ray runner and ``kefuqa eval`` score through it; the HTTP
API shares ``mask_conversation`` and the engine's ``score_batch``.

Where a chunk is scored is the caller's choice: an engine in this process, or
a ``Submitter`` that scores chunks elsewhere (worker processes, a Ray actor
pool) and hands the records back in the order the chunks were submitted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.io.readers import Item, Reject
from kefuqa.io.writers import reject_record
from kefuqa.text.pii import PiiMasker

T = TypeVar("T")


def customer_pseudonym(customer_id: str, masker: PiiMasker) -> str:
    """What a record carries for a customer: a keyed digest of the whole id
    (``KEFUQA_PII_ID_KEY``), ``[客户#…]``. A customer id names a person, so, unlike a
    conversation id, none of it is kept, whether PII masking is on or off; the same
    id and key always give the same pseudonym, so grading can still count repeats."""
    key = (masker.id_key or "kefuqa-pii-id").encode("utf-8")
    # "customer" in the message keeps these digests apart from the ones ``mask_id`` makes.
    message = b"customer\x1f" + customer_id.encode("utf-8", "surrogatepass")
    return f"[客户#{hmac.new(key, message, hashlib.sha256).hexdigest()[:16]}]"


def mask_conversation(conv: Conversation, masker: PiiMasker) -> Conversation:
    """A copy with every turn's text masked, PII inside the ids pseudonymised
    (``PiiMasker.mask_id``) and the customer id replaced by its pseudonym; the
    original is not kept."""
    if conv.customer_id is not None:
        conv = conv.model_copy(update={"customer_id": customer_pseudonym(conv.customer_id, masker)})
    if not masker.enabled:
        return conv
    turns = [t.model_copy(update={"text": masker.mask(t.text)}) for t in conv.turns]
    return conv.model_copy(update={"turns": turns, "id": masker.mask_id(conv.id),
                                   "agent_id": masker.mask_id(conv.agent_id)})


def with_customer(record: ScoreRecord, conv: Conversation) -> ScoreRecord:
    """The record with the (pseudonymised) customer of the conversation it scores. Engines
    build records from what they score; the customer is the pipeline's to carry, and a
    record without one is left exactly as the engine built it."""
    if conv.customer_id is None:
        return record
    return record.model_copy(update={"customer_id": conv.customer_id})


class BatchEngine(Protocol):
    """What the pipeline needs of an engine (``kefuqa.models.engine.Engine`` is one):
    a batch of masked conversations in, one score record (a dict) each out."""

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]: ...


@runtime_checkable
class Submitter(Protocol):
    """Scores chunks away from the caller: ``submit`` starts a chunk and returns a
    handle, ``result`` waits for that chunk's records. Up to ``window`` chunks are in
    flight; results are taken in the order the chunks were submitted."""

    window: int

    def submit(self, conversations: list[Conversation]) -> Any: ...

    def result(self, handle: Any) -> list[dict[str, Any]]: ...


class InProcess:
    """An engine in this process as a submitter: one chunk at a time, scored in
    ``result``, where a failure surfaces as a worker's would."""

    window = 1

    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine

    def submit(self, conversations: list[Conversation]) -> list[Conversation]:
        return conversations

    def result(self, handle: list[Conversation]) -> list[dict[str, Any]]:
        return self.engine.score_batch(handle)


@dataclass(frozen=True)
class Chunk:
    """Up to ``batch_size`` input items, read, rejected and masked: ready to score."""

    last_line: int  # the chunk's last input line: where a resumed run goes on
    items: int  # input items it covers, rejects included
    lined: list[tuple[int, Conversation]]  # the masked conversations, each with its line
    rejects: list[dict[str, Any]]  # rejects-file lines (``reject_record``), PII masked

    @property
    def conversations(self) -> list[Conversation]:
        return [conv for _, conv in self.lined]


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk after scoring. ``records[i]`` scores ``conversations[i]``; ``rejects`` are
    the reader's and those of the conversations the engine failed on, in line order."""

    last_line: int
    items: int
    conversations: list[Conversation]
    records: list[ScoreRecord]
    rejects: list[dict[str, Any]]


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prepare(items: Iterable[Item], masker: PiiMasker, *, batch_size: int, after_line: int = 0) -> Iterator[Chunk]:
    """read → reject → mask, in chunks of ``batch_size`` input items. Lines up to
    ``after_line`` (handled before an interrupted run stopped) are left out."""
    for chunk in chunks(items, batch_size):
        chunk = [(line, item) for line, item in chunk if line > after_line]
        if not chunk:
            continue
        lined = [(line, mask_conversation(item, masker)) for line, item in chunk if not isinstance(item, Reject)]
        rejects = [reject_record(item, masker) for _, item in chunk if isinstance(item, Reject)]
        yield Chunk(chunk[-1][0], len(chunk), lined, rejects)


def to_records(raw: Iterable[dict[str, Any]]) -> list[ScoreRecord]:
    """An engine's records as typed score records; one that breaks scores.md raises."""
    return [ScoreRecord.model_validate(record) for record in raw]


def score_stream(
    items: Iterable[Item],
    engine: BatchEngine | Submitter,
    masker: PiiMasker,
    *,
    batch_size: int,
    after_line: int = 0,
    isolate_failures: bool = True,
) -> Iterator[ScoredChunk]:
    """read → reject → mask → score → record, one ``ScoredChunk`` per chunk of input,
    in input order. With ``isolate_failures`` a chunk the engine fails on is scored
    again one conversation at a time, and the ones that still fail become rejects
    ("could not score: …"); without it the engine's error propagates."""
    scorer = engine if isinstance(engine, Submitter) else InProcess(engine)
    pending: deque[tuple[Chunk, Any]] = deque()
    for chunk in prepare(items, masker, batch_size=batch_size, after_line=after_line):
        pending.append((chunk, scorer.submit(chunk.conversations) if chunk.lined else None))
        while len(pending) >= scorer.window:
            yield _collect(scorer, *pending.popleft(), masker, isolate_failures)
    while pending:
        yield _collect(scorer, *pending.popleft(), masker, isolate_failures)


def _collect(scorer: Submitter, chunk: Chunk, handle: Any, masker: PiiMasker, isolate_failures: bool) -> ScoredChunk:
    if handle is None:  # nothing but rejects
        return ScoredChunk(chunk.last_line, chunk.items, [], [], chunk.rejects)
    try:
        records = to_records(scorer.result(handle))
    except Exception:  # noqa: BLE001 - one failing conversation must not stop the run
        if not isolate_failures:
            raise
        return _one_by_one(scorer, chunk, masker)
    convs = chunk.conversations
    records = [with_customer(r, c) for r, c in zip(records, convs)]
    return ScoredChunk(chunk.last_line, chunk.items, convs, records, chunk.rejects)


def _one_by_one(scorer: Submitter, chunk: Chunk, masker: PiiMasker) -> ScoredChunk:
    """A chunk's engine call failed: score its conversations one at a time; the ones
    that still fail become reject lines with the error, the rest are scored as usual."""
    convs: list[Conversation] = []
    records: list[ScoreRecord] = []
    failed: list[dict[str, Any]] = []
    for line, conv in chunk.lined:
        try:
            records.extend(with_customer(r, conv) for r in to_records(scorer.result(scorer.submit([conv]))))
        except Exception as exc:  # noqa: BLE001 - reported on that conversation's reject line
            reason = masker.mask(f"could not score: {type(exc).__name__}: {exc}")[:500]
            failed.append({"line": line, "id": conv.id, "reason": reason, "raw": None})
            continue
        convs.append(conv)
    rejects = sorted(chunk.rejects + failed, key=lambda r: r["line"])
    return ScoredChunk(chunk.last_line, chunk.items, convs, records, rejects)

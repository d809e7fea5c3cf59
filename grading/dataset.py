"""Joining the inputs into one dataset of per-conversation observations.

Reviewed labels are applied here (reviews file over the record's own
``reviewed_labels`` over the model's labels), times are moved to the rubric's
time zone, and everything that could not be used is counted in ``notes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kefuqa.contract import ScoreRecord

from .inputs import (
    Outcome,
    RosterEntry,
    TrainingEvent,
    load_events,
    load_outcomes,
    load_reviews,
    load_roster,
    load_scores,
)
from .periods import to_local
from .repeats import Contact, repeat_contacts
from .rubric import Rubric
from .texts import DEFAULT_LANG, Lang, join, tr

UNASSIGNED = "未分配"  # team of an agent who has scores but is not on the roster
_LIST = 5


@dataclass(frozen=True, slots=True)
class Observation:
    """One scored conversation, as grading sees it."""

    id: str
    agent_id: str
    local_time: datetime
    labels: Mapping[str, str]
    metrics: Mapping[str, float | None]
    outcome: Outcome | None
    customer_id: str | None = None  # the scorer's pseudonym, when the transcript named a customer
    channel: str = "chat"  # chat or voice: the call indicators count calls only

    @property
    def day(self) -> date:
        return self.local_time.date()


@dataclass(frozen=True)
class AgentInfo:
    agent_id: str
    team: str
    hire_date: date | None
    in_roster: bool


@dataclass(frozen=True)
class Dataset:
    observations: tuple[Observation, ...]
    agents: Mapping[str, AgentInfo]
    events: Mapping[str, TrainingEvent]
    has_outcomes: bool
    undated: tuple[str, ...]  # ids of records without started_at: in no period
    notes: tuple[str, ...]
    timezone: str
    # Outcome columns found in the records themselves (repeat contacts by customer_id).
    derived_outcomes: frozenset[str] = frozenset()

    def has_outcome(self, name: str) -> bool:
        """Whether any conversation can have a value for this outcome column."""
        return self.has_outcomes or name in self.derived_outcomes


def _some(ids: Iterable[str], lang: Lang) -> str:
    ids = sorted(ids)
    return join(lang, ids[:_LIST]) + (" …" if len(ids) > _LIST else "")


def effective_labels(rec: ScoreRecord, review: Mapping[str, str] | None) -> dict[str, str]:
    """The contract's override rule, with a reviews-file entry on top of the record's own."""
    if review:
        merged = {**(rec.reviewed_labels or {}), **review}
        rec = rec.model_copy(update={"reviewed_labels": merged})
    return rec.effective_labels()


@dataclass
class _Joined:
    """The score records joined with the roster, reviews and outcomes, before sorting."""

    agents: dict[str, AgentInfo]
    observations: list[Observation] = field(default_factory=list)
    undated: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)

    def add(
        self,
        rec: ScoreRecord,
        tz: ZoneInfo,
        reviews: Mapping[str, Mapping[str, str]],
        outcomes: Mapping[str, Outcome] | None,
    ) -> None:
        self.seen_ids.add(rec.id)
        if rec.agent_id not in self.agents:
            self.agents[rec.agent_id] = AgentInfo(rec.agent_id, UNASSIGNED, None, False)
        if rec.started_at is None:
            self.undated.append(rec.id)
            return
        self.observations.append(
            Observation(
                id=rec.id,
                agent_id=rec.agent_id,
                local_time=to_local(rec.started_at, tz),
                labels=effective_labels(rec, reviews.get(rec.id)),
                metrics=rec.metrics.model_dump(),
                outcome=(outcomes or {}).get(rec.id),
                customer_id=rec.customer_id,
                channel=rec.channel,
            )
        )


def _notes(
    joined: _Joined,
    reviews: Mapping[str, Mapping[str, str]],
    outcomes: Mapping[str, Outcome] | None,
    event_map: Mapping[str, TrainingEvent],
    lang: Lang,
) -> list[str]:
    """What could not be used, one line per kind, with a few of the ids."""
    notes: list[str] = []
    if joined.undated:
        notes.append(tr(lang, "data.undated", k=len(joined.undated), ids=_some(joined.undated, lang)))
    off_roster = [a.agent_id for a in joined.agents.values() if not a.in_roster]
    if off_roster:
        notes.append(tr(lang, "data.off_roster", k=len(off_roster), team=UNASSIGNED, ids=_some(off_roster, lang)))
    stray_reviews = set(reviews) - joined.seen_ids
    if stray_reviews:
        notes.append(tr(lang, "data.stray_reviews", k=len(stray_reviews), ids=_some(stray_reviews, lang)))
    if outcomes is not None:
        stray = set(outcomes) - joined.seen_ids
        if stray:
            notes.append(tr(lang, "data.stray_outcomes", k=len(stray), ids=_some(stray, lang)))
    unknown = {a for e in event_map.values() for a in e.agents} - set(joined.agents)
    if unknown:
        notes.append(tr(lang, "data.unknown_trainees", k=len(unknown), ids=_some(unknown, lang)))
    return notes


def with_repeat_contacts(
    observations: Sequence[Observation], window: timedelta, lang: Lang = DEFAULT_LANG
) -> tuple[list[Observation], list[str]]:
    """Each observation with a customer gets its repeat-contact outcome from the archive
    (``repeats.py``), unless the outcome file already gives one for it: that value stands.
    Returns the observations and a note on how many could be told."""
    contacts = [Contact(o.id, o.customer_id, o.local_time.astimezone(UTC)) for o in observations if o.customer_id]
    if not contacts:
        return list(observations), []
    horizon = max(o.local_time.astimezone(UTC) for o in observations)
    derived = repeat_contacts(contacts, window, horizon)
    out: list[Observation] = []
    for o in observations:
        value = derived.get(o.id)
        given = o.outcome is not None and o.outcome.repeat_contact is not None
        if value is None or given:
            out.append(o)
            continue
        base = o.outcome or Outcome(csat=None, complaint=None, repeat_contact=None)
        out.append(replace(o, outcome=replace(base, repeat_contact=value)))
    recent = sum(1 for v in derived.values() if v is None)
    note = tr(lang, "data.repeats", k=len(contacts))
    if recent:
        note += tr(lang, "data.repeats_recent", k=recent, hours=window.total_seconds() / 3600)
    return out, [note]


def build_dataset(
    records: Iterable[ScoreRecord],
    roster: Iterable[RosterEntry],
    *,
    tz: ZoneInfo,
    reviews: Mapping[str, Mapping[str, str]] | None = None,
    events: Iterable[TrainingEvent] = (),
    outcomes: Mapping[str, Outcome] | None = None,
    repeat_window: timedelta | None = None,
    lang: Lang = DEFAULT_LANG,
) -> Dataset:
    """``repeat_window``: find repeat contacts by ``customer_id`` within this window
    (the rubric's ``repeat_contact_window_hours``); None leaves them to the outcome file."""
    reviews = reviews or {}
    joined = _Joined({e.agent_id: AgentInfo(e.agent_id, e.team, e.hire_date, True) for e in roster})
    for rec in records:
        joined.add(rec, tz, reviews, outcomes)
    event_map = {e.event_id: e for e in events}
    notes = _notes(joined, reviews, outcomes, event_map, lang)
    observations, derived = joined.observations, frozenset[str]()
    if repeat_window is not None:
        observations, repeat_note = with_repeat_contacts(observations, repeat_window, lang)
        notes += repeat_note
        derived = frozenset({"repeat_contact"} if repeat_note else ())
    observations.sort(key=lambda o: (o.local_time, o.id))
    return Dataset(
        observations=tuple(observations),
        agents=joined.agents,
        events=event_map,
        has_outcomes=outcomes is not None,
        undated=tuple(joined.undated),
        notes=tuple(notes),
        timezone=tz.key,
        derived_outcomes=derived,
    )


def load_dataset(
    scores: str | Path,
    roster: str | Path,
    rubric: Rubric,
    *,
    reviews: str | Path | None = None,
    events: str | Path | None = None,
    outcomes: str | Path | None = None,
    pseudonym: Callable[[str], str] | None = None,
    lang: Lang = DEFAULT_LANG,
) -> Dataset:
    """Read every input file and join them; raises ``InputError`` on bad input.
    Repeat contacts are found by ``customer_id`` within the rubric's window.

    ``pseudonym`` maps every agent and conversation id read (``PiiMasker.mask_id``), so
    a roster or outcome file that names an agent by raw phone number or e-mail joins the
    scores, whose ids the scorer already pseudonymised."""
    ids = pseudonym or (lambda v: v)
    records = [r.model_copy(update={"id": ids(r.id), "agent_id": ids(r.agent_id)}) for r in load_scores(scores)]
    return build_dataset(
        records,
        [replace(e, agent_id=ids(e.agent_id)) for e in load_roster(roster)],
        tz=rubric.tz,
        reviews={ids(k): v for k, v in load_reviews(reviews).items()} if reviews else None,
        events=[replace(e, agents=tuple(ids(a) for a in e.agents)) for e in load_events(events)] if events else (),
        outcomes={ids(k): v for k, v in load_outcomes(outcomes).items()} if outcomes else None,
        repeat_window=timedelta(hours=rubric.repeat_contact_window_hours),
        lang=lang,
    )

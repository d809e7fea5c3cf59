"""Who may see what, and the errors every action can raise.

Reviewers, leads and admins review; agents see and dispute only their own
conversations. A lead may restrict their team: its conversations are then
visible only to that team's members (and admins).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kefuqa.contract import LABELS, check_safe_text
from kefuqa.text.pii import PiiMasker

from . import audit
from .auth import Principal
from .models import StoredConversation, Team
from .workdays import utcnow


class ReviewError(Exception):
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


class NotFound(ReviewError):
    status = 404


class Forbidden(ReviewError):
    status = 403


class Conflict(ReviewError):
    status = 409


class Invalid(ReviewError):
    status = 422


def insert_once(s: Session, row: object, conflict: str) -> None:
    """Add ``row`` in a savepoint; when a parallel request inserted the same row first (a unique
    constraint says so), the request fails with 409 and ``conflict`` instead of losing the session."""
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def restricted_teams(s: Session) -> set[str]:
    return set(s.scalars(select(Team.name).where(Team.restricted == true())))


def visible(s: Session, user: Principal) -> ColumnElement[bool]:
    """A WHERE clause on ``StoredConversation`` for what ``user`` may see."""
    if user.role == "agent":
        return StoredConversation.agent_id == user.agent_id if user.agent_id else false()
    if user.role == "admin":
        return true()
    hidden = restricted_teams(s) - ({user.team} if user.team else set())
    if not hidden:
        return true()
    return or_(StoredConversation.team.is_(None), StoredConversation.team.not_in(sorted(hidden)))


def get_conversation(s: Session, user: Principal, conversation_id: str) -> StoredConversation:
    conv = s.scalar(select(StoredConversation).where(StoredConversation.id == conversation_id, visible(s, user)))
    if conv is None:  # not there, or not the user's to see: the same answer either way
        raise NotFound(f"no conversation {conversation_id!r} for you")
    return conv


def require_reviewer(user: Principal) -> None:
    if not user.reviews:
        raise Forbidden(f"{user.role}s cannot review; reviewers, leads and admins can")


def require_lead(user: Principal) -> None:
    if not user.leads:
        raise Forbidden("leads and admins only")


def check_labels(labels: Any, partial: bool = False) -> dict[str, str]:
    """All four labels with allowed values (or a subset when ``partial``)."""
    if not isinstance(labels, dict):
        raise Invalid("labels must be an object like {\"politeness\": \"good\", …}")
    out: dict[str, str] = {}
    for name, value in labels.items():
        if name not in LABELS:
            raise Invalid(f"unknown label {name!r}; known: {', '.join(LABELS)}")
        if value not in LABELS[name]:
            raise Invalid(f"{name} must be one of {', '.join(LABELS[name])}, not {value!r}")
        out[name] = value
    missing = [n for n in LABELS if n not in out]
    if missing and not partial:
        raise Invalid(f"missing labels: {', '.join(missing)}")
    return {n: out[n] for n in LABELS if n in out}


def set_team_restriction(s: Session, user: Principal, team: str, restricted: bool) -> dict[str, Any]:
    require_lead(user)
    if not team.strip() or len(team) > 100:
        raise Invalid("a team name has 1 to 100 characters")
    try:
        check_safe_text(team)
    except ValueError as exc:
        raise Invalid(f"team name: {exc}") from None
    if user.role == "lead" and user.team != team:
        raise Forbidden(f"a lead restricts only their own team ({user.team or 'none'})")
    row = s.get(Team, team)
    before = {"restricted": row.restricted} if row else {"restricted": False}
    if row is None:
        try:
            with s.begin_nested():  # two leads creating the same team at once: the second updates it
                s.add(Team(name=team, restricted=restricted, updated_at=utcnow(), updated_by=user.name))
                s.flush()
        except IntegrityError:
            row = s.get(Team, team)
    if row is not None:
        row.restricted, row.updated_at, row.updated_by = restricted, utcnow(), user.name
    audit.record(s, user.name, "team.restricted" if restricted else "team.opened", "team", team,
                 before=before, after={"restricted": restricted})
    return {"team": team, "restricted": restricted}


def list_teams(s: Session) -> list[dict[str, Any]]:
    names = {t for t in s.scalars(select(StoredConversation.team).distinct()).all() if t is not None}
    rows = {t.name: t for t in s.scalars(select(Team))}
    return [{"team": n, "restricted": bool(rows[n].restricted) if n in rows else False}
            for n in sorted(names | set(rows))]


_FREE_TEXT_MASK = PiiMasker()  # always on: the store keeps no phone, ID or card number typed into a note


def masked_note(text: str | None) -> str:
    """A reviewer's comment, a dispute reason or an answer as the store keeps it (and the
    audit log and every export after it): stripped, with PII masked like transcripts."""
    return _FREE_TEXT_MASK.mask((text or "").strip())

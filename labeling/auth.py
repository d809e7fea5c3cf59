"""Users, roles, passwords and login sessions of the review app.

Passwords are hashed with scrypt (``hashlib.scrypt``, memory-hard, in the
standard library) with a random salt per user; only the hash is stored.
A login gives a random token; only its SHA-256 is stored, with an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .models import ROLES, LoginSession, User
from .workdays import utcnow

_N, _R, _P = 2**14, 8, 1
REVIEWERS = ("reviewer", "lead", "admin")
LEADS = ("lead", "admin")


class AuthError(Exception):
    pass


class UnknownUser(AuthError):
    """The named user does not exist (the API answers 404)."""


@dataclass(frozen=True)
class Principal:
    """The logged-in user as the API sees it."""

    id: int
    name: str
    role: str
    team: str | None
    agent_id: str | None

    @property
    def reviews(self) -> bool:
        return self.role in REVIEWERS

    @property
    def leads(self) -> bool:
        return self.role in LEADS

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "team": self.team, "agent_id": self.agent_id}


def principal(u: User) -> Principal:
    return Principal(u.id, u.name, u.role, u.team, u.agent_id)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against for unknown users, so a login takes as long either way."""
    return hash_password(secrets.token_hex(8))


def check_new_password(password: str) -> None:
    if len(password) < 8:
        raise AuthError("password too short: at least 8 characters")


def add_user(s: Session, name: str, role: str, password: str, *, team: str | None = None,
             agent_id: str | None = None, actor: str) -> User:
    name = name.strip()
    if not name or len(name) > 100:
        raise AuthError("user name must be 1–100 characters")
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    check_new_password(password)
    if role == "agent" and not agent_id:
        agent_id = name  # an agent user is the agent_id of their conversations unless told otherwise
    if s.scalar(select(User).where(User.name == name)) is not None:
        raise AuthError(f"user {name!r} already exists")
    user = User(name=name, role=role, team=team or None, agent_id=agent_id, password_hash=hash_password(password),
                active=True, created_at=utcnow())
    s.add(user)
    try:
        s.flush()
    except IntegrityError as exc:
        raise AuthError(f"user {name!r} already exists") from exc
    audit.record(s, actor, "user.created", "user", name,
                 after={"name": name, "role": role, "team": user.team, "agent_id": agent_id})
    return user


def set_password(s: Session, name: str, password: str, *, actor: str) -> None:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUser(f"no user {name!r}")
    check_new_password(password)
    user.password_hash = hash_password(password)
    s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    audit.record(s, actor, "user.password_changed", "user", name)


def set_active(s: Session, name: str, active: bool, *, actor: str) -> None:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUser(f"no user {name!r}")
    before = user.active
    user.active = active
    if not active:
        s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    audit.record(s, actor, "user.activated" if active else "user.deactivated", "user", name,
                 before={"active": before}, after={"active": active})


def login(s: Session, name: str, password: str, hours: float) -> tuple[str, Principal]:
    user = s.scalar(select(User).where(User.name == name))
    if user is None or not user.active:
        verify_password(password, _dummy_hash())
        raise AuthError("wrong user name or password")
    if not verify_password(password, user.password_hash):
        raise AuthError("wrong user name or password")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    s.add(LoginSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                       expires_at=now + timedelta(hours=hours)))
    audit.record(s, user.name, "user.login", "user", user.name)
    return token, principal(user)


def logout(s: Session, token: str) -> None:
    s.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))


def resolve(s: Session, token: str | None) -> Principal | None:
    if not token:
        return None
    row = s.execute(
        select(User, LoginSession.expires_at).join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == _token_hash(token))
    ).first()
    if row is None or row[1] < utcnow() or not row[0].active:
        return None
    return principal(row[0])


def list_users(s: Session) -> list[dict[str, object]]:
    return [{**principal(u).as_dict(), "active": u.active, "created_at": u.created_at.isoformat()}
            for u in s.scalars(select(User).order_by(User.name))]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

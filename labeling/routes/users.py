"""Teams (leads restrict a team's items to its members) and logins (admins add,
list, disable and enable them)."""

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from sqlalchemy.orm import Session

from .. import access, auth
from ..deps import CurrentUser, TxDep, admin_only, lead_only

router = APIRouter()


class TeamBody(BaseModel):
    restricted: bool


class ActiveBody(BaseModel):
    active: bool


class UserBody(BaseModel):
    name: str
    role: Literal["reviewer", "lead", "admin", "agent"]
    password: str
    team: str | None = None
    agent_id: str | None = None


@router.get("/api/review/teams", tags=["leads"])
def teams(user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    lead_only(user)
    return tx.run(lambda s: {"teams": access.list_teams(s)})


@router.post("/api/review/teams/{team}", tags=["leads"], summary="Restrict a team's items to its members")
def set_team(team: str, body: TeamBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: access.set_team_restriction(s, user, team, body.restricted), write=True)


@router.get("/api/review/users", tags=["admin"])
def users(user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    admin_only(user)
    return tx.run(lambda s: {"users": auth.list_users(s)})


@router.post("/api/review/users", tags=["admin"], status_code=201)
def add_user(body: UserBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    admin_only(user)
    return tx.run(lambda s: auth.principal(auth.add_user(
        s, body.name, body.role, body.password, team=body.team, agent_id=body.agent_id, actor=user.name)
    ).as_dict(), write=True)


@router.post("/api/review/users/{name}/active", tags=["admin"], summary="Enable or disable a login")
def set_user_active(name: str, body: ActiveBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    admin_only(user)
    if name == user.name and not body.active:
        raise HTTPException(409, {"message": "an admin cannot disable their own login"})

    def go(s: Session) -> dict[str, Any]:
        auth.set_active(s, name, body.active, actor=user.name)
        return {"name": name, "active": body.active}
    return tx.run(go, write=True)

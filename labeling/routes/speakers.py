"""Reviewers' answers on who said a turn of a call. Registered before ``items``: its
catch-all GET of an item would otherwise take ``…/speakers`` as part of the conversation id."""

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from .. import speaker_fixes
from ..deps import CurrentUser, TxDep

router = APIRouter(tags=["speakers"])


class SpeakerBody(BaseModel):
    turn: int = Field(ge=0)
    speaker: Literal["agent", "customer"] | None = Field(
        description="who said the turn as you hear it (the transcript's speaker keeps it); null withdraws your answer")


@router.get("/api/review/items/{conversation_id:path}/speakers",
            summary="Your answers on who said a call's turns (others' once your review is in)")
def get_speakers(conversation_id: str, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: speaker_fixes.item_speakers(s, user, conversation_id))


@router.post("/api/review/items/{conversation_id:path}/speakers",
             summary="Confirm or fix who said one turn of a call")
def set_speaker(conversation_id: str, body: SpeakerBody, user: CurrentUser, tx: TxDep) -> dict[str, Any]:
    return tx.run(lambda s: speaker_fixes.set_speaker(s, user, conversation_id, turn=body.turn,
                                                      speaker=body.speaker), write=True)

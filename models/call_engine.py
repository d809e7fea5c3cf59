"""Phone calls around any engine: for each ``voice`` conversation, the speaker-role
check first (turns that read like the other role are scored as said by it, so a
customer's line the diariser gave to the agent does not count against the agent, in the
rules or in the model), then the engine, then the call metrics and their evidence, and
``role_flags`` in the record (docs/phone-calls.md). Chat conversations pass through
untouched. ``create_engine`` wraps every engine it makes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kefuqa.contract import Conversation, ModelInfo
from kefuqa.models.call_cues import CallCues, load_call_cues
from kefuqa.models.call_metrics import call_report
from kefuqa.models.interface import Engine
from kefuqa.models.speaker_roles import RoleChecker, role_model_for, with_speakers


class CallEngine:
    def __init__(self, inner: Engine, checker: RoleChecker, cues: CallCues) -> None:
        self.inner = inner
        self.info: ModelInfo = inner.info
        self.checker = checker
        self.cues = cues

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        flags = self.checker.flags_batch(conversations)
        scored = [with_speakers(c, f) for c, f in zip(conversations, flags)]
        records = self.inner.score_batch(scored)
        return [self._with_call(r, c, f) if c.channel == "voice" else r for r, c, f in zip(records, scored, flags)]

    def _with_call(self, record: dict[str, Any], conv: Conversation, flags: list[dict[str, Any]]) -> dict[str, Any]:
        """The engine's record of a call with its call metrics, their evidence and the role flags."""
        report = call_report(conv, self.cues)
        return {**record, "metrics": {**record["metrics"], **report.metrics},
                "evidence": [*record["evidence"], *report.evidence], "role_flags": flags}


def with_calls(engine: Engine, home: Path | None = None, model_dir: Path | None = None,
               cues: CallCues | None = None) -> CallEngine:
    """``engine`` with the phone-call steps. A neural engine (one with ``embed``) checks
    speaker roles on its own turn embeddings with the role model fitted for it; any other
    engine on the rule cues alone."""
    cues = cues or load_call_cues()
    embed = getattr(engine, "embed", None)
    if embed is None:
        return CallEngine(engine, RoleChecker(cues, role_model_for(None, None)), cues)
    if model_dir is None and home is not None:
        model_dir = home / "registry" / engine.info.version
    model = role_model_for(engine.info, model_dir)
    return CallEngine(engine, RoleChecker(cues, model, embed if model.uses_embedding else None), cues)

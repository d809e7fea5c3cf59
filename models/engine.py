"""Engines by name (``create_engine``); the interface they share is in
``models/interface.py`` and re-exported here for the doors that build one."""

from __future__ import annotations

import logging
from typing import Any

from kefuqa.models.interface import Engine, EngineError

__all__ = ["Engine", "EngineError", "chosen_engine", "create_engine"]

log = logging.getLogger("kefuqa.engine")


def create_engine(name: str, **options: Any) -> Engine:
    """Engines by name: ``rules`` (the baseline) or ``neural``; ``auto`` picks
    the neural model when one is installed and falls back to rules. Each comes with the
    phone-call steps (speaker-role check, call metrics: ``models/call_engine.py``)."""
    from kefuqa.models.call_cues import CallCuesError
    from kefuqa.models.call_engine import with_calls
    from kefuqa.models.speaker_roles import RoleFileError

    engine = _by_name(name, **options)
    try:
        return with_calls(engine, home=options.get("home"), model_dir=options.get("model_dir"))
    except (CallCuesError, RoleFileError) as exc:
        raise EngineError(f"the phone-call steps cannot start: {exc}") from exc


def chosen_engine(engine: Engine) -> str:
    """``rules`` or ``neural``: which engine ``create_engine`` made (what ``auto`` chose), so
    that worker processes build the same one."""
    from kefuqa.models.baseline import RulesEngine
    from kefuqa.models.call_engine import CallEngine

    inner = engine.inner if isinstance(engine, CallEngine) else engine
    return "rules" if isinstance(inner, RulesEngine) else "neural"


def _by_name(name: str, **options: Any) -> Engine:
    if name in ("rules", "auto"):
        from kefuqa.models.baseline import RulesEngine

        if name == "auto":
            try:
                return _neural(**options)
            except EngineError as exc:
                # One line, not a traceback: the rules engine is a complete scorer.
                log.warning("kefuqa: --engine auto uses the rules engine: %s", exc)
        return RulesEngine(rules_file=options.get("rules_file"))
    if name == "neural":
        return _neural(**options)
    if name in ("teacher", "student"):  # the registry's model of that role, whichever is the champion
        return _neural(**options, role=name)
    raise EngineError(f"unknown engine {name!r}: choose auto, rules, neural, teacher or student "
                      "(--engine / KEFUQA_ENGINE)")


def _neural(**options: Any) -> Engine:
    try:
        from kefuqa.models.neural import load_default_engine
        from kefuqa.models.neural.engine import NeuralEngine  # noqa: F401 - onnxruntime, tokenizers
    except ImportError as exc:  # the `neural` extra is not installed
        raise EngineError(f"the neural engine is not installed ({exc.name or exc} missing: "
                          "pip install 'kefu-qa[neural]'); use --engine rules") from exc
    return load_default_engine(**options)

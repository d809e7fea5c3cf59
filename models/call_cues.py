"""The cues for phone calls (``models/rules/call_cues.yaml``): role phrases for the
speaker-role check, hold, thanks and cut-off cues and the timing defaults of the call
metrics. Validated with pydantic at the file edge, compiled once into regexes that run
on normalised text (same length as the text, so spans index the turn as shown)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kefuqa.text.normalize import normalize

from .rules.schema import compiled_patterns

ROLES = ("agent", "customer")


class CallCuesError(Exception):
    """The cues file is unreadable or invalid; the message names the file and the field."""


class _Phrases(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrases: list[str] = []
    patterns: list[str] = []

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return compiled_patterns(v)


class _Hold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_silence_s: float = Field(gt=0)
    markers: list[str] = Field(min_length=1)
    announce: list[str] = Field(min_length=1)
    thanks: list[str] = Field(min_length=1)


class _Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_gap_s: float = Field(ge=0)
    chars_per_s: float = Field(gt=0)


class _Overlap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_overlap_s: float = Field(ge=0)
    cut_off: list[str] = []


class CallCuesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    roles: dict[str, _Phrases]
    hold: _Hold
    silence: _Silence
    overlap: _Overlap

    @field_validator("roles")
    @classmethod
    def _both_roles(cls, v: dict[str, _Phrases]) -> dict[str, _Phrases]:
        if set(v) != set(ROLES):
            raise ValueError(f"roles must name exactly {list(ROLES)}")
        return v


def _regex(phrases: list[str], patterns: list[str] | None = None) -> re.Pattern[str]:
    parts = [re.escape(normalize(p)) for p in sorted(phrases, key=len, reverse=True)] + list(patterns or [])
    return re.compile("|".join(f"(?:{p})" for p in parts) if parts else r"(?!)")  # (?!) matches nothing


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class CallCues:
    """The compiled cues; every method takes the turn text as written (it normalises)."""

    role: dict[str, re.Pattern[str]]
    announce_re: re.Pattern[str]
    thanks_re: re.Pattern[str]
    marker_re: re.Pattern[str]
    cut_off_re: re.Pattern[str]
    hold_min_s: float
    min_gap_s: float
    chars_per_s: float
    min_overlap_s: float

    def role_spans(self, text: str, role: str) -> list[Span]:
        return [Span(m.start(), m.end()) for m in self.role[role].finditer(normalize(text))]

    def announce(self, text: str) -> Span | None:
        return _first(self.announce_re, text)

    def thanks(self, text: str) -> Span | None:
        return _first(self.thanks_re, text)

    def cut_off(self, text: str) -> bool:
        return self.cut_off_re.search(normalize(text)) is not None

    def marker_seconds(self, text: str) -> float | None:
        """The silence a system turn marks ("[静音 48秒]" → 48.0; "[等待音乐]" → 0.0), else None."""
        m = self.marker_re.fullmatch(normalize(text).strip())
        if m is None:
            return None
        return float(int(m.group("min") or 0) * 60 + int(m.group("sec") or 0))

    def speech_s(self, text: str) -> float:
        """How long saying ``text`` takes at the configured rate (spaces and marks not counted)."""
        return len(re.sub(r"[\s\W]", "", text)) / self.chars_per_s


def _first(regex: re.Pattern[str], text: str) -> Span | None:
    m = regex.search(normalize(text))
    return Span(m.start(), m.end()) if m else None


def compile_cues(data: CallCuesFile) -> CallCues:
    words = "|".join(re.escape(w) for w in sorted(data.hold.markers, key=len, reverse=True))
    marker = rf"\[[^\]]*?(?:{words})\s*(?:(?P<min>\d+)\s*分(?:钟)?)?\s*(?:(?P<sec>\d+)\s*秒)?\s*\]"
    return CallCues(
        role={r: _regex(data.roles[r].phrases, data.roles[r].patterns) for r in ROLES},
        announce_re=_regex(data.hold.announce),
        thanks_re=_regex(data.hold.thanks),
        marker_re=re.compile(marker),
        cut_off_re=_regex([], data.overlap.cut_off),
        hold_min_s=data.hold.min_silence_s,
        min_gap_s=data.silence.min_gap_s,
        chars_per_s=data.silence.chars_per_s,
        min_overlap_s=data.overlap.min_overlap_s,
    )


def default_cues_text() -> str:
    return resources.files("kefuqa.models.rules").joinpath("call_cues.yaml").read_text(encoding="utf-8")


def load_call_cues(path: Path | None = None) -> CallCues:
    """The shipped cues, or those of ``path`` (a whole file in the same format)."""
    where = str(path) if path else "<default call cues>"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8") if path else default_cues_text())
        return compile_cues(CallCuesFile.model_validate(data or {}))
    except OSError as exc:
        raise CallCuesError(f"{where}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CallCuesError(f"{where}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CallCuesError(f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from exc

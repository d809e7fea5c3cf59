"""The grading rubric: indicators grouped as the handbooks group them, their
0–100 mapping, weights, grade rules and the impact-analysis defaults.

The handbooks name indicators, groups, periods and the five grades but give no
numbers, so every number lives in a YAML file (``default_rubric.yaml`` ships the
project's defaults) and is validated here, at the file edge.
"""

from __future__ import annotations

from dataclasses import field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from kefuqa.contract import LABELS, Metrics

from .errors import InputError

GRADES: tuple[str, ...] = ("优秀", "良好", "中等", "合格", "不合格")
INSUFFICIENT = "数据不足"  # shown instead of a grade below the minimum sample
# Outcome CSV columns and the statistic each one feeds.
OUTCOME_FIELDS: dict[str, Literal["proportion", "mean"]] = {
    "csat": "mean",
    "complaint": "proportion",
    "repeat_contact": "proportion",
}
METRIC_FIELDS: tuple[str, ...] = tuple(Metrics.model_fields)

_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_STRICT)
class Source:
    """Where an indicator's per-conversation value comes from (exactly one of three)."""

    label: str | None = None
    values: tuple[str, ...] = ()
    metric: str | None = None
    above: float | None = None  # metric > above counts as 1 (a rate), else the metric's mean
    outcome: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        given = [k for k in ("label", "metric", "outcome") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of label / metric / outcome")
        if self.label is not None:
            if self.label not in LABELS:
                raise ValueError(f"unknown label {self.label!r}; known: {list(LABELS)}")
            bad = [v for v in self.values if v not in LABELS[self.label]]
            if not self.values or bad:
                raise ValueError(f"values must be a non-empty subset of {list(LABELS[self.label])}")
        if self.metric is not None and self.metric not in METRIC_FIELDS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {list(METRIC_FIELDS)}")
        if self.outcome is not None and self.outcome not in OUTCOME_FIELDS:
            raise ValueError(f"unknown outcome {self.outcome!r}; known: {list(OUTCOME_FIELDS)}")
        return self

    @property
    def stat(self) -> Literal["proportion", "mean"]:
        if self.label is not None or self.above is not None:
            return "proportion"
        if self.outcome is not None:
            return OUTCOME_FIELDS[self.outcome]
        return "mean"


@dataclass(frozen=True, config=_STRICT)
class Scale:
    """Linear map to 0–100: ``zero`` scores 0, ``full`` scores 100, clipped.

    ``full < zero`` means lower is better (response times, taboo rate).
    """

    zero: float
    full: float

    @model_validator(mode="after")
    def _distinct(self) -> Scale:
        if self.zero == self.full:
            raise ValueError("zero and full must differ")
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.full > self.zero

    def score(self, value: float) -> float:
        frac = (value - self.zero) / (self.full - self.zero)
        return 100.0 * min(1.0, max(0.0, frac))


@dataclass(frozen=True, config=_STRICT)
class Indicator:
    key: str
    name: str
    source: Source
    scale: Scale
    weight: float = 1.0
    level: Literal[3, 4] = 3  # Kirkpatrick level: 3 behaviour, 4 results
    unit: str = ""
    name_en: str = ""  # shown with --lang en; the key when empty
    # The channels whose conversations the indicator counts (the call indicators: [voice]);
    # None counts every conversation.
    channels: tuple[Literal["chat", "voice"], ...] | None = None

    def label(self, lang: str) -> str:
        return (self.name_en or self.key) if lang == "en" else self.name

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("weight must be > 0")
        return v

    @field_validator("channels")
    @classmethod
    def _some_channel(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("channels must name chat, voice or both (leave it out for every channel)")
        return v

    @property
    def stat(self) -> Literal["proportion", "mean"]:
        return self.source.stat


@dataclass(frozen=True, config=_STRICT)
class Group:
    key: str
    name: str
    weight: float
    indicators: tuple[Indicator, ...]
    name_en: str = ""

    def label(self, lang: str) -> str:
        return (self.name_en or self.key) if lang == "en" else self.name

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("weight must be > 0")
        return v


@dataclass(frozen=True, config=_STRICT)
class RepeatedLow:
    """末位: an agent flagged after this many calendar periods in a row with a low result.

    A low result is a grade in ``grades`` (default: the scheme's lowest level) or,
    with ``last_in_team``, the last rank in a team with at least two graded agents.
    A period without a grade (数据不足, or no row) ends the run.
    """

    periods: int = 3
    grades: tuple[str, ...] | None = None
    last_in_team: bool = False

    @field_validator("periods")
    @classmethod
    def _at_least_two(cls, v: int) -> int:
        if v < 2:
            raise ValueError("periods must be >= 2 (one low period is not a repetition)")
        return v


@dataclass(frozen=True, config=_STRICT)
class GradeRule:
    method: Literal["absolute", "forced"] = "absolute"
    # The scheme, best first: 3 to 5 levels (one handbook uses three).
    levels: tuple[str, ...] = GRADES
    # Minimum score for each level but the last; below the last threshold is the last level.
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"优秀": 90.0, "良好": 80.0, "中等": 70.0, "合格": 60.0}
    )
    # Needed for method `forced`; the default scheme has defaults, a custom one must give them.
    forced_shares: dict[str, float] | None = None
    forced_scope: Literal["all", "team"] = "all"
    repeated_low: RepeatedLow = field(default_factory=RepeatedLow)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not 3 <= len(v) <= 5:
            raise ValueError(f"levels must name 3 to 5 grades, best first; got {len(v)}")
        if len(set(v)) != len(v) or any(not g.strip() for g in v):
            raise ValueError("levels must be distinct, non-empty names")
        if INSUFFICIENT in v:
            raise ValueError(f"{INSUFFICIENT} is reserved for agents below the minimum sample")
        return v

    # Checked per field (levels is declared first) so that an error names the field.
    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        _check_thresholds(info.data.get("levels", GRADES), v)
        return v

    @field_validator("forced_shares")
    @classmethod
    def _shares(cls, v: dict[str, float] | None, info: ValidationInfo) -> dict[str, float] | None:
        if v is not None:
            _check_shares(info.data.get("levels", GRADES), v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> GradeRule:
        if self.forced_shares is None and self.method == "forced" and self.levels != GRADES:
            raise ValueError(f"forced_shares must give a share for each of {list(self.levels)}")
        low = self.repeated_low.grades
        if low is not None and (not low or set(low) - set(self.levels)):
            raise ValueError(f"repeated_low.grades must be a non-empty subset of {list(self.levels)}")
        return self

    @property
    def pass_cut(self) -> float:
        """The lowest passing threshold: below it an agent gets the lowest level."""
        return self.thresholds[self.levels[-2]]

    @property
    def low_grades(self) -> tuple[str, ...]:
        return self.repeated_low.grades or self.levels[-1:]

    def shares(self) -> dict[str, float]:
        """Forced-distribution shares in level order (validated to exist for `forced`)."""
        shares = self.forced_shares or (_DEFAULT_SHARES if self.levels == GRADES else {})
        return {g: shares.get(g, 0.0) for g in self.levels}


_DEFAULT_SHARES = {"优秀": 0.1, "良好": 0.2, "中等": 0.4, "合格": 0.2, "不合格": 0.1}


def _check_thresholds(levels: tuple[str, ...], thresholds: dict[str, float]) -> None:
    if set(thresholds) != set(levels[:-1]):
        raise ValueError(f"thresholds must give exactly {list(levels[:-1])} (all levels but the last)")
    cuts = [thresholds[g] for g in levels[:-1]]
    if any(a <= b for a, b in pairwise(cuts)):
        raise ValueError(f"thresholds must strictly decrease from {levels[0]} to {levels[-2]}")
    if not all(0 < c <= 100 for c in cuts):
        raise ValueError("thresholds must lie in (0, 100]")


def _check_shares(levels: tuple[str, ...], shares: dict[str, float]) -> None:
    if set(shares) != set(levels):
        raise ValueError(f"forced_shares must give exactly {list(levels)}")
    if any(s < 0 for s in shares.values()):
        raise ValueError("forced_shares must be >= 0")
    if abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ValueError("forced_shares must sum to 1")


@dataclass(frozen=True, config=_STRICT)
class ReactionSettings:
    """Level 1: the after-course questionnaire's rating scale."""

    scale_min: float = 1
    scale_max: float = 5
    # A positive reaction is one whose interval lies above this point (the scale's midpoint).
    neutral: float = 3

    @model_validator(mode="after")
    def _ordered(self) -> ReactionSettings:
        if not self.scale_min < self.neutral < self.scale_max:
            raise ValueError("need scale_min < neutral < scale_max")
        return self


@dataclass(frozen=True, config=_STRICT)
class LearningSettings:
    """Level 2: exam and role-play scores."""

    max_score: float = 100
    pass_mark: float = 60  # below it after training, an agent is a re-training candidate

    @model_validator(mode="after")
    def _ordered(self) -> LearningSettings:
        if not 0 < self.pass_mark <= self.max_score:
            raise ValueError("need 0 < pass_mark <= max_score")
        return self


@dataclass(frozen=True, config=_STRICT)
class ImpactSettings:
    before_days: int = 60
    after_days: int = 60
    min_conversations: int = 10  # per agent per window
    min_agents: int = 5  # trained agents with data in both windows
    min_control_agents: int = 5  # below this, no difference-in-differences
    alpha: float = 0.05

    @model_validator(mode="after")
    def _ranges(self) -> ImpactSettings:
        if self.before_days < 1 or self.after_days < 1:
            raise ValueError("before_days and after_days must be >= 1")
        if self.min_conversations < 1 or self.min_agents < 2 or self.min_control_agents < 2:
            raise ValueError("min_conversations >= 1, min_agents >= 2, min_control_agents >= 2")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be in (0, 0.5)")
        return self


@dataclass(frozen=True, config=_STRICT)
class Rubric:
    groups: tuple[Group, ...]
    grades: GradeRule = field(default_factory=GradeRule)
    impact: ImpactSettings = field(default_factory=ImpactSettings)
    reaction: ReactionSettings = field(default_factory=ReactionSettings)
    learning: LearningSettings = field(default_factory=LearningSettings)
    timezone: str = "Asia/Shanghai"
    min_conversations: int = 30  # per agent per period, below → 数据不足
    confidence_level: float = 0.95
    bootstrap_resamples: int = 2000
    seed: int = 20260301  # bootstrap seed, so a report is reproducible
    # A customer who starts another conversation this soon after one started made a
    # repeat contact (客户重复咨询), counted for the first conversation's agent and period.
    repeat_contact_window_hours: float = 72.0
    # One grade per agent over every channel, or one per channel (chats and calls apart):
    # channels.py.
    grade_channels: Literal["combined", "per_channel"] = "combined"

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        keys = [i.key for i in self.indicators]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"duplicate indicator keys: {dup}")
        if not self.groups:
            raise ValueError("at least one group is needed")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if self.min_conversations < 1:
            raise ValueError("min_conversations must be >= 1")
        if not 0.5 < self.confidence_level < 1:
            raise ValueError("confidence_level must be in (0.5, 1)")
        if self.bootstrap_resamples < 200:
            raise ValueError("bootstrap_resamples must be >= 200")
        if self.repeat_contact_window_hours <= 0:
            raise ValueError("repeat_contact_window_hours must be > 0")
        return self

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return tuple(i for g in self.groups for i in g.indicators)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def indicator(self, key: str) -> Indicator:
        return next(i for i in self.indicators if i.key == key)

    def group_of(self, key: str) -> Group:
        return next(g for g in self.groups if any(i.key == key for i in g.indicators))


def parse_rubric(data: object, origin: str = "<rubric>") -> Rubric:
    try:
        return TypeAdapter(Rubric).validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(origin, err["msg"], field=where) from None


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read a rubric YAML file; ``None`` gives the shipped defaults."""
    if path is None:
        text = resources.files("kefuqa.grading").joinpath("default_rubric.yaml").read_text("utf-8")
        origin = "default_rubric.yaml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise InputError(str(path), f"cannot read rubric: {exc.strerror}") from None
        origin = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = None if line is None else line + 1
        raise InputError(origin, f"not valid YAML: {exc}", line=where) from None
    return parse_rubric(data, origin)

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
from pydantic import ConfigDict, TypeAdapter, ValidationError, field_validator, model_validator
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

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("weight must be > 0")
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

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("weight must be > 0")
        return v


@dataclass(frozen=True, config=_STRICT)
class GradeRule:
    method: Literal["absolute", "forced"] = "absolute"
    # Minimum score for each grade but the last; below the last threshold is 不合格.
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"优秀": 90.0, "良好": 80.0, "中等": 70.0, "合格": 60.0}
    )
    forced_shares: dict[str, float] = field(
        default_factory=lambda: {"优秀": 0.1, "良好": 0.2, "中等": 0.4, "合格": 0.2, "不合格": 0.1}
    )
    forced_scope: Literal["all", "team"] = "all"

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(GRADES[:-1]):
            raise ValueError(f"thresholds must give exactly {list(GRADES[:-1])}")
        ordered = {g: v[g] for g in GRADES[:-1]}  # keep the grade order whatever the file's order
        cuts = list(ordered.values())
        if any(a <= b for a, b in pairwise(cuts)):
            raise ValueError("thresholds must strictly decrease from 优秀 to 合格")
        return ordered

    @field_validator("forced_shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(GRADES):
            raise ValueError(f"forced_shares must give exactly {list(GRADES)}")
        return {g: v[g] for g in GRADES}

    @model_validator(mode="after")
    def _consistent(self) -> GradeRule:
        if any(s < 0 for s in self.forced_shares.values()):
            raise ValueError("forced_shares must be >= 0")
        if abs(sum(self.forced_shares.values()) - 1.0) > 1e-6:
            raise ValueError("forced_shares must sum to 1")
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
    timezone: str = "Asia/Shanghai"
    min_conversations: int = 30  # per agent per period, below → 数据不足
    confidence_level: float = 0.95
    bootstrap_resamples: int = 2000
    seed: int = 20260301  # bootstrap seed, so a report is reproducible

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
        return self

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return tuple(i for g in self.groups for i in g.indicators)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

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

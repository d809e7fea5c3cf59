"""The rules file format (pydantic at the file edge) and merging of user rules."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Category = Literal[
    "polite", "empathy", "taboo", "resolved", "escalated", "unresolved",
    "customer_pos", "customer_neg", "customer_neutral",
]
POLITE_KINDS = ("greeting", "address", "please", "thanks", "apology", "closing")


def compiled_patterns(v: list[str]) -> list[str]:
    """``v`` unchanged when every regular expression compiles; else a ValueError naming the bad one."""
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"pattern {p!r} does not compile: {exc}") from exc
    return v


class RulesFileError(Exception):
    """A rules file is unreadable or invalid; the message names file and rule."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    category: Category
    kind: str = Field(min_length=1)
    speakers: list[Literal["agent", "customer", "system"]] = ["agent"]
    phrases: list[str] = []
    patterns: list[str] = []
    exceptions: list[str] = []
    ignore_quoted: bool = True
    weight: float = Field(1.0, ge=0)
    enabled: bool = True

    @field_validator("phrases", "exceptions", mode="before")
    @classmethod
    def _no_blank(cls, v: object) -> list[str]:
        if not isinstance(v, list):
            raise ValueError("must be a list of phrases")
        # YAML reads 12315 as a number; a phrase is always text.
        out = [str(p) for p in v if isinstance(p, (str, int, float))]
        if len(out) != len(v) or any(not p.strip() for p in out):
            raise ValueError("phrases must be non-blank strings")
        return out

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        return compiled_patterns(v)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    rules: list[dict] = []  # validated rule by rule so errors name the rule


def _load_yaml(path: Path | None, text: str | None = None) -> RulesFile:
    where = str(path) if path else "<default rules>"
    try:
        data = yaml.safe_load(text if text is not None else path.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    except OSError as exc:
        raise RulesFileError(f"{where}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{where}: not valid YAML: {exc}") from exc
    try:
        return RulesFile.model_validate(data or {})
    except ValidationError as exc:
        raise RulesFileError(f"{where}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc


def _validate_rules(raw: list[dict], where: str, base: dict[str, Rule]) -> dict[str, Rule]:
    out = dict(base)
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "id" not in item:
            raise RulesFileError(f"{where}: rules[{i}]: each rule needs an 'id'")
        merged = {**out[item["id"]].model_dump(), **item} if item["id"] in out else item
        try:
            out[item["id"]] = Rule.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise RulesFileError(f"{where}: rule {item['id']!r}: {loc}: {err['msg']}") from exc
    return out


def default_rules_text() -> str:
    return resources.files("kefuqa.models.rules").joinpath("default_rules.yaml").read_text(encoding="utf-8")


def load_rules(user_file: Path | None = None) -> list[Rule]:
    """Default rules with the user's file merged on top; disabled rules dropped."""
    rules = _validate_rules(_load_yaml(None, default_rules_text()).rules, "<default rules>", {})
    if user_file is not None:
        rules = _validate_rules(_load_yaml(user_file).rules, str(user_file), rules)
    return [r for r in rules.values() if r.enabled]


def check_rules_file(path: Path) -> list[Rule]:
    """Validate a user rules file; returns the merged rule set or raises RulesFileError."""
    return load_rules(path)

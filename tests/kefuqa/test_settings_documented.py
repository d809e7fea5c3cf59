"""Every setting a user can set is documented in docs/settings.md under its environment name."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from kefuqa.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "settings.md"


def _env_names(cls: type[BaseSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = []
    for name, field in cls.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseSettings):
            names += _env_names(sub)
        elif field.validation_alias is not None:
            names.append(str(getattr(field.validation_alias, "choices", [field.validation_alias])[0]))
        else:
            names.append(f"{prefix}{name}".upper())
    return names


def test_every_setting_is_in_docs_settings():
    doc = DOC.read_text(encoding="utf-8")
    # Rows may group variables of one prefix as `KEFUQA_X` / `_Y`; the full name or its tail must appear.
    missing = [n for n in _env_names(Settings) if n not in doc and f"`_{n.split('_', 2)[-1]}`" not in doc]
    assert not missing, f"settings missing from docs/settings.md: {missing}"

"""Every sentence grading writes, in Chinese (the default) and English.

Reports are read by Chinese customer-service managers, so zh-CN is the
default; ``--lang en`` gives English. A sentence is a ``str.format`` template
looked up by key; ``tests/grading/test_texts.py`` checks that both languages
have every key with the same placeholders.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from .text_catalog import SENTENCES
from .text_labels import LABELS

Lang = Literal["zh-CN", "en"]
LANGS: tuple[str, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "zh-CN"


def tr(lang: Lang, key: str, /, **values: object) -> str:
    """The sentence or label ``key`` in ``lang``, filled with ``values``."""
    zh, en = SENTENCES[key] if key in SENTENCES else LABELS[key]
    return (en if lang == "en" else zh).format(**values)


def join(lang: Lang, items: Iterable[str]) -> str:
    """A list in running text: 甲、乙、丙 or a, b, c."""
    return ("、" if lang != "en" else ", ").join(items)


def sentences(lang: Lang, parts: Iterable[str]) -> str:
    """Sentences run together: Chinese needs no space after 。, English does."""
    return ("" if lang != "en" else " ").join(p for p in parts if p)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"

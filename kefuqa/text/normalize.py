"""Normalisation for rules and models: traditional → simplified, width folding.

The output has the same length as the input, character for character, so an
offset found in the normalised copy is the same offset in the text the
reviewer sees (the masked original). Emoji and other symbols pass through.
"""

from __future__ import annotations

from functools import lru_cache

import opencc


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold_width(text: str) -> str:
    """Full-width ASCII (Ａ１！) → half-width; ideographic space → space."""
    return text.translate(_WIDTH)


def to_simplified(text: str) -> str:
    conv = _converter()
    simplified = conv.convert(text)
    if len(simplified) == len(text):
        return simplified
    # A phrase mapping changed the length: fall back to character by
    # character so offsets stay aligned.
    out = []
    for ch in text:
        c = conv.convert(ch)
        out.append(c if len(c) == 1 else ch)
    return "".join(out)


def normalize(text: str) -> str:
    """Length-preserving normal form used for matching and model input."""
    return fold_width(to_simplified(text)).lower()

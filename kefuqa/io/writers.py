"""JSON Lines output for score records and rejects (UTF-8, Chinese kept readable)."""

from __future__ import annotations

import json
import re
from typing import Any

from kefuqa.io.readers import Reject
from kefuqa.text.pii import PiiMasker


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _mask_value(value: Any, masker: PiiMasker) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list):
        return [_mask_value(v, masker) for v in value]
    if isinstance(value, dict):
        return {masker.mask(k): _mask_value(v, masker) for k, v in value.items()}
    return value


def _unescape(match: re.Match[str]) -> str:
    ch = chr(int(match.group(1), 16))
    return match.group() if "\ud800" <= ch <= "\udfff" else ch


def mask_raw(raw: str, masker: PiiMasker) -> str:
    """A rejected input line with PII masked in what it *says*: JSON is decoded, its
    strings masked and written back (so ``\\u0031\\u0033\\u0038…`` cannot hide a phone
    number); a line that does not parse has its \\u escapes decoded before masking."""
    if not masker.enabled:
        return raw
    try:
        masked = _mask_value(json.loads(raw), masker)
    except (ValueError, RecursionError):
        return masker.mask(_ESCAPE.sub(_unescape, raw))
    text = dumps(masked)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as its \\u escape
        text = json.dumps(masked, separators=(",", ":"))
    return text


def reject_record(reject: Reject, masker: PiiMasker) -> dict[str, Any]:
    """The rejects-file line: where, why, and the (masked) input to fix and re-run."""
    return {
        "line": reject.line,
        "id": reject.id,
        "reason": reject.reason,
        "raw": mask_raw(reject.raw, masker) if reject.raw is not None else None,
    }

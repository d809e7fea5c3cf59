"""JSON Lines output for score records and rejects (UTF-8, Chinese kept readable)."""

from __future__ import annotations

import json
from typing import Any

from kefuqa.io.readers import Reject
from kefuqa.text.pii import PiiMasker


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def reject_record(reject: Reject, masker: PiiMasker) -> dict[str, Any]:
    """The rejects-file line: where, why, and the (masked) input to fix and re-run."""
    return {
        "line": reject.line,
        "id": reject.id,
        "reason": reject.reason,
        "raw": masker.mask(reject.raw) if reject.raw is not None else None,
    }

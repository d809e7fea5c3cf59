"""Results to JSON-ready values (for grades.json, impact.json and the API)."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Dataclasses → dicts, dates → ISO strings, NaN/inf → null, tuples → lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return to_jsonable(obj.item())
    return obj

"""House style: no function longer than 60 lines in the product code.

A function's length is ``end_lineno - lineno + 1`` of its ``def`` (decorators not
counted); a nested function is measured on its own as well as inside its parent.
Read from the source with ``ast``; tests/ and bench/ are not product code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("kefuqa", "models", "service", "training", "labeling", "grading")
MAX_LINES = 60


def _long_functions() -> list[tuple[str, int, str, int]]:
    """(path, line, name, length) of every function over MAX_LINES, in path and line order."""
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_LINES:
                        found.append((rel, node.lineno, node.name, length))
    return sorted(found)


LONG = _long_functions()


def test_no_function_is_longer_than_60_lines():
    over = [f"{path}:{line} {name} {length}" for path, line, name, length in LONG]
    assert not over, (f"{len(over)} function(s) over {MAX_LINES} lines; split each into named helpers:\n"
                      + "\n".join(over))

"""The module graph: no import cycles, and the directions of
../shared/reference/architecture.md (who may import whom) hold. Read from the
source with ``ast``, every import a module makes, at the top or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = {"models": "kefuqa.models", "service": "kefuqa.service", "training": "kefuqa.training",
         "labeling": "kefuqa.labeling", "grading": "kefuqa.grading"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in {"kefuqa": "kefuqa", **ROOMS}.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # alembic scripts are loaded by alembic, not imported
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """kefuqa modules ``name`` imports (resolved to the longest known module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            # A module's own package is initialised before it: that is not an edge of the design.
            if t and t != name and not name.startswith(t + "."):
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    for package in ROOMS.values():
        if module == package or module.startswith(package + "."):
            return package.split(".")[1]
    return "core"  # kefuqa itself: contract, settings, io, text, pipeline, cli


def test_no_import_cycles():
    seen: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if seen.get(n) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(n):] + [n]))
            if n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(GRAPH):
        if m not in seen:
            visit(m)


# Room → rooms it may import (every room may import the core). kefuqa.cli is the
# switchboard that registers every room's commands, so it is the one exception.
ALLOWED = {
    "models": set(),
    "grading": set(),
    "labeling": set(),
    # `kefuqa train --from-reviews` reads reviewers' corrections from the review store.
    "training": {"models", "labeling"},
    "service": {"models", "labeling", "grading"},
    "core": set(),
}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_import_directions(room):
    wrong = sorted(f"{m} → {n}" for m, deps in GRAPH.items() if _room(m) == room and m != "kefuqa.cli"
                   for n in deps if _room(n) not in ALLOWED[room] | {room, "core"})
    assert wrong == []

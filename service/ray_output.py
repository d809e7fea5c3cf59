"""The output directory of a Ray run: its layout, its manifest, and what
``--resume`` keeps of an interrupted run.

``manifest.json`` names the inputs (with their fingerprints), the record format and
the unit size, and says whether the run finished. Each unit's parts are committed by
a marker under ``_units/`` (``kefuqa.service.ray_io``); a resumed run keeps the units
whose markers account for all their rows, deletes every other part and temporary
file, and scores the rest. The same inputs and unit size give the same units, so
nothing is scored twice and nothing is left out.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kefuqa.io.readers import InputError
from kefuqa.service.batch import input_fingerprint
from kefuqa.service.ray_io import RECORDS, REJECTS, UNITS

MANIFEST = "manifest.json"
INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


@dataclass(frozen=True)
class RunPlan:
    out_dir: Path
    fmt: str  # "jsonl" or "parquet": the records' files
    inputs: list[Path]
    unit_items: int
    done: frozenset[str]  # units an interrupted run finished
    manifest: dict[str, Any]
    finished: bool = False  # resuming a run that had finished: nothing left to do
    scored_before: int = 0  # in the units kept from the interrupted run
    rejected_before: int = 0

    @property
    def rejects_dir(self) -> Path:
        return self.out_dir / REJECTS


def input_files(path: Path, out_dir: Path) -> list[Path]:
    """One archive, or every archive in a directory (sorted: that order numbers them)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_file():
        return [path.resolve()]
    if out_dir.resolve().is_relative_to(path.resolve()):
        raise InputError(f"{out_dir}: the output directory must not be inside the input directory {path}")
    files = sorted(p.resolve() for p in path.iterdir()
                   if p.is_file() and p.name.endswith(INPUT_SUFFIXES) and not p.name.startswith((".", "_")))
    if not files:
        raise InputError(f"{path}: no archives in this directory (.jsonl, .jsonl.gz, .json, .parquet)")
    return files


def output_format(out_dir: Path) -> str:
    if out_dir.suffix == ".gz":
        raise InputError(f"{out_dir}: write JSONL or Parquet (a directory named OUT or OUT.parquet); "
                         "compress afterwards")
    if out_dir.is_file():
        raise InputError(f"{out_dir}: is a file; with Ray, -o names a directory of part files")
    return "parquet" if out_dir.suffix == ".parquet" else "jsonl"


def plan_run(inputs: list[Path], out_dir: Path, unit_items: int, resume: bool) -> RunPlan:
    """A fresh run (an earlier kefuqa output in ``out_dir`` is replaced), or with
    ``resume`` the interrupted one its manifest describes."""
    fmt = output_format(out_dir)
    manifest = {"kefuqa": "ray-scores", "format": fmt, "unit_items": unit_items, "state": "running",
                "inputs": [{"path": str(p), "fingerprint": input_fingerprint(p)} for p in inputs]}
    old = _read_manifest(out_dir)
    if resume and old is not None:
        _check_same_run(old, manifest, out_dir)
        kept = _keep_finished_units(out_dir)
        done = frozenset(m["unit"] for m in kept)
        before = sum(m["scored"] for m in kept), sum(m["rejected"] for m in kept)
        if old.get("state") == "finished":
            return RunPlan(out_dir, fmt, inputs, unit_items, done, manifest, True, *before)
        _write_manifest(out_dir, manifest)
        return RunPlan(out_dir, fmt, inputs, unit_items, done, manifest, False, *before)
    if old is not None:
        for sub in (RECORDS, REJECTS, UNITS):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"{out_dir}: exists and is not a kefuqa output directory; give a new or empty one")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(out_dir, manifest)
    return RunPlan(out_dir, fmt, inputs, unit_items, frozenset(), manifest)


def finish(plan: RunPlan) -> tuple[int, int]:
    """Mark the run finished; the records and rejects it wrote, resumed parts included."""
    scored = rejected = 0
    for marker in _markers(plan.out_dir):
        scored += marker["scored"]
        rejected += marker["rejected"]
    _write_manifest(plan.out_dir, {**plan.manifest, "state": "finished", "scored": scored, "rejected": rejected})
    return scored, rejected


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a kefuqa manifest ({exc}); remove the directory or pick another") from exc
    if not isinstance(data, dict) or data.get("kefuqa") != "ray-scores":
        raise InputError(f"{path}: not a kefuqa manifest; remove the directory or pick another")
    return data


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    tmp = out_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)


def _check_same_run(old: dict[str, Any], new: dict[str, Any], out_dir: Path) -> None:
    for key, what in (("format", "the record format"), ("unit_items", "the unit size")):
        if old.get(key) != new[key]:
            raise InputError(f"{out_dir}: the interrupted run had {what} {old.get(key)!r}, not {new[key]!r}")
    old_paths = [i.get("path") for i in old.get("inputs", [])]
    if old_paths != [i["path"] for i in new["inputs"]]:
        raise InputError(f"{out_dir}: that run scored {', '.join(map(str, old_paths))}, not these inputs")
    for was, now in zip(old["inputs"], new["inputs"]):
        if was.get("fingerprint") != now["fingerprint"]:
            raise InputError(f"{now['path']} changed since the interrupted run ({out_dir / MANIFEST}); resuming "
                             "would mix records of two inputs: score it again without --resume")


def _markers(out_dir: Path) -> list[dict[str, Any]]:
    units = out_dir / UNITS
    if not units.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(units.glob("part-*.json"))]


def _keep_finished_units(out_dir: Path) -> list[dict[str, Any]]:
    """The markers of the units whose markers account for every row; every other
    file is removed."""
    markers = _markers(out_dir)
    rows: dict[str, int] = defaultdict(int)
    for marker in markers:
        rows[marker["unit"]] += marker["rows"]
    done = frozenset(m["unit"] for m in markers if rows[m["unit"]] == m["unit_rows"])
    keep = {m["part"] for m in markers if m["unit"] in done}
    for sub in (RECORDS, REJECTS, UNITS):
        folder = out_dir / sub
        for path in folder.iterdir() if folder.is_dir() else ():
            if path.name.split(".")[0] not in keep:  # unfinished parts and hidden temporary files
                path.unlink()
    return [m for m in markers if m["unit"] in done]

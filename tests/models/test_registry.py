from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kefuqa.models.registry import Registry, RegistryError, compare

LABELS4 = ("politeness", "emotional_control", "resolution", "sentiment")


def meta(version: str, f1: tuple[float, ...], split: str = "s1") -> dict:
    return {"name": "m", "version": version, "created": f"2026-11-0{len(version)}T00:00:00",
            "data_hash": "d", "split_hash": split, "metrics": {"macro_f1": dict(zip(LABELS4, f1))}}


def add(reg: Registry, tmp: Path, m: dict) -> str:
    d = tmp / ("src-" + m["version"])
    d.mkdir()
    (d / "head.onnx").write_bytes(b"x")
    return reg.add(d, m)


def test_gate_refuses_a_worse_model_and_prints_the_comparison(tmp_path):
    reg = Registry(tmp_path / "registry")
    add(reg, tmp_path, meta("v1", (0.90, 0.86, 0.87, 0.95)))
    assert reg.promote("v1").better_or_equal and reg.current() == "v1"
    add(reg, tmp_path, meta("v2", (0.91, 0.80, 0.87, 0.95)))  # mean lower
    result = reg.promote("v2")
    assert not result.better_or_equal and reg.current() == "v1"
    assert "emotional_control" in result.table() and "-0.0600" in result.table()
    add(reg, tmp_path, meta("v3", (0.99, 0.83, 0.90, 0.97)))  # mean higher, one label −0.03
    r3 = reg.promote("v3")
    assert not r3.better_or_equal and "worse on emotional_control" in r3.reason
    add(reg, tmp_path, meta("v4", (0.92, 0.87, 0.88, 0.95)))
    assert reg.promote("v4").better_or_equal and reg.current() == "v4"
    assert reg.rollback() == "v1" and reg.current() == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_different_splits_are_not_comparable():
    r = compare(meta("a", (0.5,) * 4, "s1"), meta("b", (0.9,) * 4, "s2"))
    assert not r.better_or_equal and "different evaluation sets" in r.reason


def test_cli_promote_refuses_with_exit_1(tmp_path):
    reg = Registry(tmp_path / "registry")
    add(reg, tmp_path, meta("v1", (0.9,) * 4))
    reg.promote("v1")
    add(reg, tmp_path, meta("v2", (0.8,) * 4) | {"encoder": {"role": "student", "layers": 4}})
    env = {"KEFUQA_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    res = subprocess.run([sys.executable, "-m", "kefuqa.cli", "models", "promote", "v2"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 1 and "refused" in res.stderr and "current" in res.stdout
    listing = subprocess.run([sys.executable, "-m", "kefuqa.cli", "models", "list"], capture_output=True, text=True,
                             env=env, timeout=120).stdout
    assert "* v1" in listing and "  v2" in listing
    # Which encoder each version reads: a model without the record is a 12-layer teacher.
    lines = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in listing.splitlines()}
    assert lines["v1"].endswith("teacher 12 layers") and lines["v2"].endswith("student 4 layers")
    assert json.loads((tmp_path / "registry" / "champion.json").read_text())["current"] == "v1"


def test_challenger_follows_training_promotion_and_rollback(tmp_path):
    reg = Registry(tmp_path / "registry")
    add(reg, tmp_path, meta("v1", (0.9,) * 4))
    reg.promote("v1")
    assert reg.resolve("champion") == "v1" and reg.challenger() is None
    with pytest.raises(RegistryError, match="no challenger"):
        reg.resolve("challenger")
    add(reg, tmp_path, meta("v2", (0.95,) * 4))
    reg.set_challenger("v2")
    assert reg.resolve("challenger") == "v2" and reg.resolve("v1") == "v1"
    with pytest.raises(RegistryError, match="no model version 'v9'"):
        reg.resolve("v9")
    reg.promote("v2")  # the challenger wins: it is the champion now, and no longer the challenger
    assert reg.current() == "v2" and reg.challenger() is None
    assert reg.rollback() == "v1" and reg.challenger() == "v2"  # demoted, still at hand


def test_resolve_without_a_champion_says_how_to_get_one(tmp_path):
    with pytest.raises(RegistryError, match="build-default"):
        Registry(tmp_path / "registry").resolve("champion")


def test_a_role_names_the_champion_when_it_has_that_role_else_the_newest_of_that_role(tmp_path):
    reg = Registry(tmp_path / "registry")
    student = {"encoder": {"role": "student", "layers": 4}}
    add(reg, tmp_path, meta("t1", (0.9,) * 4))  # no encoder entry: a teacher
    with pytest.raises(RegistryError, match="no student model .* build-default"):
        reg.resolve("student")
    add(reg, tmp_path, meta("s1", (0.9,) * 4) | student)
    add(reg, tmp_path, meta("s22", (0.9,) * 4) | student)  # added last
    reg.promote("t1")
    assert reg.resolve("teacher") == "t1" and reg.resolve("student") == "s22"
    reg.promote("s1")
    assert reg.resolve("student") == "s1" and reg.by_role("teacher") == "t1"
    with pytest.raises(RegistryError, match="unknown model role 'pupil'"):
        reg.by_role("pupil")


def test_engines_by_role_say_what_is_missing(tmp_path):
    from kefuqa.models.engine import EngineError, create_engine

    with pytest.raises(EngineError, match="no neural model installed .* build-default"):
        create_engine("teacher", home=tmp_path)
    reg = Registry(tmp_path / "registry")
    add(reg, tmp_path, meta("t1", (0.9,) * 4))
    reg.promote("t1")
    with pytest.raises(EngineError, match="no student model"):
        create_engine("student", home=tmp_path)

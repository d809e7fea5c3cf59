"""The bundled examples/ run through the grading commands as the README shows them."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def _kefuqa(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEFUQA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "kefuqa.cli", *args],
        capture_output=True, text=True, timeout=300, env=env, check=False, cwd=cwd,
    )


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    out = home / "scores.jsonl"
    proc = _kefuqa("score", str(EX / "conversations.jsonl"), "-o", str(out), "--engine", "rules", home=home)
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_examples_hold_every_grading_input():
    for name in ("roster.csv", "events.csv", "outcomes.csv", "reviews.jsonl", "survey.csv", "exam.csv"):
        assert (EX / name).is_file(), name


def test_grade_runs_on_the_examples(scores, tmp_path):
    out = tmp_path / "2026Q1"
    proc = _kefuqa(
        "grade", str(scores), "--roster", str(EX / "roster.csv"), "--outcomes", str(EX / "outcomes.csv"),
        "--reviews", str(EX / "reviews.jsonl"), "--period", "quarter", "--out", str(out), home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "按季度评定" in proc.stdout and not proc.stderr.strip()
    forced = _kefuqa(
        "grade", str(scores), "--roster", str(EX / "roster.csv"), "--method", "forced", "--min-conversations", "2",
        "--out", str(tmp_path / "forced"), home=tmp_path,
    )
    assert forced.returncode == 0, forced.stderr
    with (tmp_path / "forced" / "grades.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["team"] for r in rows} == {"售前组", "售后组"}
    assert sum(r["grade"] != "数据不足" for r in rows) >= 8


def test_impact_runs_on_the_examples_with_all_four_levels(scores, tmp_path):
    out = tmp_path / "ev-1"
    proc = _kefuqa(
        "impact", str(scores), "--roster", str(EX / "roster.csv"), "--events", str(EX / "events.csv"),
        "--event", "ev-1", "--survey", str(EX / "survey.csv"), "--exam", str(EX / "exam.csv"),
        "--before-days", "60", "--after-days", "60", "--outcomes", str(EX / "outcomes.csv"), "--out", str(out),
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "第1级 反应：正面" in proc.stdout and "第2级 学习：笔试：改善" in proc.stdout
    assert "再培训：a-904：笔试后测 57 分" in proc.stdout
    data = json.loads((out / "impact.json").read_text(encoding="utf-8"))[0]
    assert data["evaluation"]["purpose"].startswith("减少客户投诉")
    assert [c["agent_id"] for c in data["retraining"]["candidates"]] == ["a-904"]


def _commands(text: str, heading: str) -> list[list[str]]:
    """The ``kefuqa grade`` and ``kefuqa impact`` lines of the bash blocks under ``heading``
    (up to the next heading of the same level), continuation lines joined."""
    level = heading.split(" ")[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"^{level} ", section, flags=re.M)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line)[1:] for line in lines if re.match(r"kefuqa (grade|impact) ", line.strip())]


DOCUMENTED = [
    *(("README.md", cmd) for cmd in _commands((ROOT / "README.md").read_text("utf-8"), "## Grading")),
    *(("docs/grading.md", cmd) for cmd in _commands((ROOT / "docs/grading.md").read_text("utf-8"), "## Commands")),
]


def test_the_documents_show_grading_commands():
    assert {doc for doc, _ in DOCUMENTED} == {"README.md", "docs/grading.md"}
    assert {cmd[0] for _, cmd in DOCUMENTED} == {"grade", "impact"}


@pytest.mark.parametrize(("doc", "command"), DOCUMENTED, ids=[f"{d}:{c[0]}-{i}" for i, (d, c) in enumerate(DOCUMENTED)])
def test_documented_commands_run_on_the_example_files_as_they_are(doc, command, scores, tmp_path):
    # The commands name scores.jsonl, roster.csv, … in the current folder: the example files
    # under those names, and the scored example conversations as scores.jsonl.
    for name in ("roster.csv", "events.csv", "outcomes.csv", "reviews.jsonl", "survey.csv", "exam.csv"):
        shutil.copy(EX / name, tmp_path / name)
    shutil.copy(scores, tmp_path / "scores.jsonl")
    proc = _kefuqa(*command, home=tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, f"{doc}: kefuqa {shlex.join(command)}\n{proc.stderr}"
    assert not proc.stderr.strip(), proc.stderr
    assert "已写入" in proc.stdout or "wrote" in proc.stdout

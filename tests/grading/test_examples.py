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
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kefuqa.grading.dataset import UNASSIGNED
from kefuqa.grading.rubric import GRADES, INSUFFICIENT

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
INPUTS = ("roster.csv", "events.csv", "outcomes.csv", "reviews.jsonl", "survey.csv", "exam.csv")


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
    for name in INPUTS:
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
    """The ``kefuqa grade``, ``impact`` and ``topics`` lines of the bash blocks under ``heading``
    (up to the next heading of the same level), continuation lines joined, comments dropped."""
    level = heading.split(" ")[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"^{level} ", section, flags=re.M)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines
            if re.match(r"kefuqa (grade|impact|topics) ", line.strip())]


DOCS = (ROOT / "docs/grading.md").read_text("utf-8")
DOCUMENTED = [
    *(("README.md", cmd) for cmd in _commands((ROOT / "README.md").read_text("utf-8"), "## Grading")),
    *(("docs/grading.md", cmd) for cmd in _commands(DOCS, "## Commands")),
    *(("docs/grading.md", cmd) for cmd in _commands(DOCS, "## Recurring customer problems (高频问题追踪)")),
]


def test_the_documents_show_grading_commands():
    assert {doc for doc, _ in DOCUMENTED} == {"README.md", "docs/grading.md"}
    assert {cmd[0] for _, cmd in DOCUMENTED} == {"grade", "impact", "topics"}


@pytest.mark.parametrize(("doc", "command"), DOCUMENTED, ids=[f"{d}:{c[0]}-{i}" for i, (d, c) in enumerate(DOCUMENTED)])
def test_documented_commands_run_on_the_example_files_as_they_are(doc, command, scores, tmp_path):
    # The folder is laid out as the repository is after the README's first step: examples/ and
    # the scored sample in out/scores.jsonl. The README names its files generically
    # (scores.jsonl, roster.csv, …): they are there under those names as well.
    shutil.copytree(EX, tmp_path / "examples")
    (tmp_path / "out").mkdir()
    shutil.copy(scores, tmp_path / "out" / "scores.jsonl")
    if doc == "README.md":
        for name in INPUTS:
            shutil.copy(EX / name, tmp_path / name)
        shutil.copy(scores, tmp_path / "scores.jsonl")
    proc = _kefuqa(*command, home=tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, f"{doc}: kefuqa {shlex.join(command)}\n{proc.stderr}"
    assert not proc.stderr.strip(), proc.stderr
    assert "已写入" in proc.stdout or "wrote" in proc.stdout
    if "--min-conversations" in command and doc == "docs/grading.md":
        assert any(g in proc.stdout for g in GRADES), proc.stdout  # the sample shows grades, as the page says


# ------------------------------------------------------------------ one language per report
class _Text(HTMLParser):
    """What a reader sees in a report: text nodes and images' alt text, not styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = self._style or tag in ("style", "script")
        self.parts += [v for k, v in attrs if k in ("alt", "title") and v]

    def handle_endtag(self, tag: str) -> None:
        self._style = self._style and tag not in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._style and data.strip():
            self.parts.append(data.strip())


def _seen(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _cells(name: str, *columns: str) -> set[str]:
    with (EX / name).open(encoding="utf-8") as fh:
        return {row[c] for row in csv.DictReader(fh) for c in columns if row.get(c)}


def _topic_data(out: Path) -> set[str]:
    """What customers wrote and the words found in it: data in either language."""
    report = json.loads((out / "topics.json").read_text(encoding="utf-8"))
    return {s for t in report["topics"] for s in (t["name"], *(x["term"] for x in t["terms"]),
                                                  *(e["text"] for e in t["examples"]))}


# Names a Chinese report keeps as they are: the product, methods, options, fields, files, ids.
_ZH_KEEPS = re.compile(r"kefu-qa|Asia/Shanghai|Holm|jieba|TF-IDF|k-means|--[a-z-]+|"
                       r"[\w.-]+\.(?:csv|json|jsonl|yaml|html)|[a-z]+_[a-z_]+|\b[a-z]{1,2}-\d+\b")


def _leftovers(text: str, lang: str, data: set[str]) -> list[str]:
    for s in sorted(data, key=len, reverse=True):  # longest first: a topic name holds its terms
        text = text.replace(s, " ")
    if lang == "zh-CN":
        zone = datetime.now().astimezone().strftime("%Z")  # the generated-at stamp's zone
        text = _ZH_KEEPS.sub(" ", text.replace(zone, " ") if zone else text)
        return re.findall(r"[A-Za-z]{3,}", text)
    return re.findall(r"[\u4e00-\u9fff]+", text)


@pytest.fixture(scope="module")
def reports(scores, tmp_path_factory) -> dict[str, dict[str, Path | str]]:
    """Every grading report of the examples in both languages: its folder and stdout."""
    out: dict[str, dict[str, Path | str]] = {}
    for lang in ("zh-CN", "en"):
        folder = tmp_path_factory.mktemp(lang)
        runs = {
            "grade": ["grade", str(scores), "--roster", str(EX / "roster.csv"), "--outcomes", str(EX / "outcomes.csv"),
                      "--min-conversations", "2"],
            "impact": ["impact", str(scores), "--roster", str(EX / "roster.csv"), "--events", str(EX / "events.csv"),
                       "--survey", str(EX / "survey.csv"), "--exam", str(EX / "exam.csv"),
                       "--outcomes", str(EX / "outcomes.csv")],
            "topics": ["topics", str(EX / "conversations.jsonl"), "--roster", str(EX / "roster.csv")],
        }
        for name, argv in runs.items():
            proc = _kefuqa(*argv, "--lang", lang, "--out", str(folder / name), home=folder)
            assert proc.returncode == 0, proc.stderr
            out[f"{name}:{lang}"] = {"folder": folder / name, "stdout": proc.stdout}
    return out


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("command", ["grade", "impact", "topics"])
def test_every_sentence_and_label_of_a_report_is_in_its_language(reports, command, lang):
    run = reports[f"{command}:{lang}"]
    folder = Path(run["folder"])
    # Data stays as it was written: teams, courses, purposes, questions, tests, grade names,
    # the 末位 term beside its English, and what customers wrote.
    data = (_cells("roster.csv", "team") | _cells("events.csv", "course", "purpose")
            | _cells("survey.csv", "question") | _cells("exam.csv", "test")
            | {*GRADES, INSUFFICIENT, UNASSIGNED, "末位"} | _topic_data(reports[f"topics:{lang}"]["folder"])
            | {str(folder)})  # the files written, named on stdout
    html = _seen((folder / "report.html").read_text(encoding="utf-8"))
    assert html.count("\n") > 20
    for where, text in (("report.html", html), ("stdout", str(run["stdout"]))):
        assert _leftovers(text, lang, data) == [], f"{command} {lang} {where}"
        if lang == "en":  # English sentences run together need a space ("…: 不合格. An agent …")
            assert not re.search(r"[.;][A-Z][a-z]", text), f"{command} {where}"

"""`kefuqa grade` and `kefuqa impact`: outputs, summaries and exit code 2 on bad input."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys

import pytest
from gradingsim import TRUE_EFFECTS, simulate, simulate_feedback, write_feedback, write_files

from kefuqa.grading.cli import register
from kefuqa.grading.rubric import GRADES


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kefuqa")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    sim = simulate(5, effects=TRUE_EFFECTS, n_treated=6, n_control=6, per_window=70)
    folder = tmp_path_factory.mktemp("sim")
    feedback = simulate_feedback(5, sim.events[0].agents, reaction=1.5, gain=15.0)
    return {**write_files(sim, folder), **write_feedback(feedback, folder)}


def _rows(path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_grade_writes_tables_json_and_report(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _main(
        [
            "grade",
            str(files["scores"]),
            "--roster",
            str(files["roster"]),
            "--outcomes",
            str(files["outcomes"]),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = _rows(out / "grades.csv")
    periods = sorted({r["period"] for r in rows})
    assert periods == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    assert len(rows) == 12 * len(periods)
    graded = [r for r in rows if r["grade"] in GRADES]
    assert graded and all(0 <= float(r["score"]) <= 100 for r in graded)
    assert {"polite_rate", "polite_rate_ci_low", "csat_n"} <= set(rows[0])
    assert len(_rows(out / "teams.csv")) == 2 * len(periods)
    data = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert data["kind"] == "month" and len(data["agents"]) == len(rows)
    assert "<img" in (out / "report.html").read_text(encoding="utf-8")
    text = capsys.readouterr().out
    assert "按月评定" in text and "grades.csv" in text
    assert "周期 2026-04" in text  # May is cut short (no one graded): the summary shows April
    assert all(r["reason"].startswith("综合 ") for r in graded)
    assert {"low_streak", "repeated_low"} <= set(rows[0])


def test_grade_by_quarter_with_forced_distribution(files, tmp_path):
    out = tmp_path / "q"
    rc = _main(
        [
            "grade",
            str(files["scores"]),
            "--roster",
            str(files["roster"]),
            "--period",
            "quarter",
            "--method",
            "forced",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    q1 = [r for r in _rows(out / "grades.csv") if r["period"] == "2026-Q1"]
    assert len(q1) == 12
    # 12 graded agents, shares 10/20/40/20/10 % → 1, 3, 5, 2, 1 by largest remainder (ties aside)
    counts = {g: sum(r["grade"] == g for r in q1) for g in GRADES}
    assert sum(counts.values()) == 12 and counts["不合格"] >= 1 and counts["优秀"] >= 1


def test_impact_writes_results(files, tmp_path, capsys):
    out = tmp_path / "imp"
    rc = _main(
        [
            "impact",
            str(files["scores"]),
            "--roster",
            str(files["roster"]),
            "--events",
            str(files["events"]),
            "--outcomes",
            str(files["outcomes"]),
            "--before-days",
            "50",
            "--after-days",
            "50",
            "--lang",
            "en",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = _rows(out / "impact.csv")
    assert len(rows) == 11 and {r["event_id"] for r in rows} == {"ev-1"}
    polite = next(r for r in rows if r["indicator"] == "polite_rate")
    assert polite["method"] == "did" and polite["verdict"] == "improved"
    assert float(polite["ci_low"]) <= TRUE_EFFECTS["polite_rate"] <= float(polite["ci_high"])
    taboo = next(r for r in rows if r["indicator"] == "taboo_rate")
    assert taboo["verdict"] == "cannot_tell" and "includes 0" in taboo["reason"]
    agents = _rows(out / "impact_agents.csv")
    assert {r["agent_id"] for r in agents} == {f"a-{i:03d}" for i in range(6)}
    data = json.loads((out / "impact.json").read_text(encoding="utf-8"))
    assert data[0]["windows"]["before_start"] == "2026-01-18"
    text = capsys.readouterr().out
    assert "Training ev-1" in text and "Level 3 (behaviour)" in text
    assert "Level 1 (reaction): not measured: no after-course survey given (--survey)" in text
    # only data stays Chinese: the course name and the rubric's grade names
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("情绪管理", "").replace("合格", ""))


def test_unknown_event_exits_2(files, tmp_path, capsys):
    rc = _main(
        [
            "impact",
            str(files["scores"]),
            "--roster",
            str(files["roster"]),
            "--events",
            str(files["events"]),
            "--event",
            "nope",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2
    assert "unknown training event 'nope'" in capsys.readouterr().err


def test_bad_score_line_exits_2_naming_file_and_line(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    lines = files["scores"].read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(lines[1])
    del broken["agent_id"]
    bad.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n", encoding="utf-8")
    rc = _main(["grade", str(bad), "--roster", str(files["roster"]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{bad}, line 2, field agent_id" in err


def test_missing_roster_exits_2(files, tmp_path, capsys):
    rc = _main(["grade", str(files["scores"]), "--roster", str(tmp_path / "none.csv")])
    assert rc == 2 and "none.csv" in capsys.readouterr().err


def test_real_entry_point_has_no_traceback(files, tmp_path):
    bad_rubric = tmp_path / "r.yaml"
    bad_rubric.write_text("groups: []\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kefuqa.cli",
            "grade",
            str(files["scores"]),
            "--roster",
            str(files["roster"]),
            "--rubric",
            str(bad_rubric),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "r.yaml" in proc.stderr


def test_impact_with_survey_and_exam_covers_all_four_levels(files, tmp_path, capsys):
    out = tmp_path / "four"
    args = ["impact", str(files["scores"]), "--roster", str(files["roster"]), "--events", str(files["events"])]
    args += ["--outcomes", str(files["outcomes"]), "--survey", str(files["survey"]), "--exam", str(files["exam"])]
    assert _main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for words in ("第1级 反应：正面", "第2级 学习：", "第3级 行为：", "第4级 结果：", "目的：", "问题：", "建议："):
        assert words in text
    levels = _rows(out / "reaction_learning.csv")
    assert [(r["level"], r["test"]) for r in levels] == [("1", ""), ("2", "笔试"), ("2", "角色扮演")]
    assert levels[0]["verdict"] == "positive" and levels[1]["verdict"] == "improved"
    data = json.loads((out / "impact.json").read_text(encoding="utf-8"))
    sections = data[0]["evaluation"]
    assert [x["name"] for x in sections["levels"]] == ["反应", "学习", "行为", "结果"]
    assert sections["purpose"] and sections["method"] and sections["problems"] and sections["suggestions"]
    html = (out / "report.html").read_text(encoding="utf-8")
    for heading in ("一、目的", "二、方法", "三、结果", "四、问题", "五、建议", "再培训名单"):
        assert heading in html


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("survey", "event_id,agent_id,question,rating\nev-1,a-000,讲师,4\nev-1,a-001,讲师,7\n", "line 3, field rating"),
        ("survey", "event_id,agent_id,rating\nev-9,a-000,4\n", "line 2, field event_id: unknown training event"),
        ("survey", "event_id,agent_id,question,rating\nev-1,a-0,讲师,4\nev-1,a-0,讲师,5\n", "line 3, field question"),
        ("survey", "event_id,agent_id,question\nev-1,a-000,讲师\n", "line 1: missing column(s) ['rating']"),
        ("exam", "event_id,agent_id,test,before,after\nev-1,a-000,笔试,60,abc\n", "line 2, field after"),
        ("exam", "event_id,agent_id,test,before,after\nev-1,a-000,笔试,,\n", "line 2, field (row)"),
        ("exam", "event_id,agent_id,test,before,after\nev-1,a-0,笔试,60,101\n", "line 2, field after: 101 is outside"),
    ],
)
def test_bad_survey_or_exam_exits_2_naming_file_line_and_column(files, tmp_path, capsys, name, content, where):
    bad = tmp_path / f"{name}.csv"
    bad.write_text(content, encoding="utf-8")
    args = ["impact", str(files["scores"]), "--roster", str(files["roster"]), "--events", str(files["events"])]
    rc = _main([*args, f"--{name}", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"{bad}, {where}" in err, err


def test_forced_method_on_a_custom_scheme_without_shares_exits_2(files, tmp_path, capsys):
    from importlib import resources

    import yaml

    data = yaml.safe_load(resources.files("kefuqa.grading").joinpath("default_rubric.yaml").read_text("utf-8"))
    data["grades"].update(levels=["优秀", "合格", "不合格"], thresholds={"优秀": 85, "合格": 60})
    del data["grades"]["forced_shares"]
    rubric = tmp_path / "three.yaml"
    rubric.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    args = ["grade", str(files["scores"]), "--roster", str(files["roster"]), "--rubric", str(rubric)]
    assert _main([*args, "--out", str(tmp_path / "ok")]) == 0
    assert "优秀" in capsys.readouterr().out
    assert _main([*args, "--method", "forced", "--out", str(tmp_path / "no")]) == 2
    assert "--method: " in capsys.readouterr().err

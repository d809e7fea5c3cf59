"""`kefuqa review …`: the whole flow from the command line, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from kefuqa.cli import main

from .helpers import conversation, record


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def files(tmp_path):
    scores = tmp_path / "scores.jsonl"
    convs = tmp_path / "convs.jsonl"
    ids = [f"c{i}" for i in range(6)]
    scores.write_text("".join(record(c, "a-1" if i % 2 else "a-2", top=0.5 + 0.05 * i).model_dump_json() + "\n"
                              for i, c in enumerate(ids)) + "{not json\n", encoding="utf-8")
    convs.write_text("".join(conversation(c, "a-1" if i % 2 else "a-2").model_dump_json() + "\n"
                             for i, c in enumerate(ids)), encoding="utf-8")
    roster = tmp_path / "roster.csv"
    roster.write_text("agent_id,team\na-1,north\na-2,south\n", encoding="utf-8")
    return {"scores": scores, "convs": convs, "roster": roster, "dir": tmp_path}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KEFUQA_REVIEW_DB_URL", raising=False)


def test_review_commands_end_to_end(capsys, files, db_url, monkeypatch):
    db = ["--db", db_url]
    rc, out, _ = run(capsys, "review", "init-db", *db)
    assert rc == 0 and "→ 0006" in out
    monkeypatch.setenv("KEFUQA_REVIEW_PASSWORD", "s3cret-pass")
    rc, out, _ = run(capsys, "review", "users", "add", "wang", "--role", "lead", "--team", "north", *db)
    assert rc == 0 and "user wang (lead, team north) created" in out
    rc, out, _ = run(capsys, "review", "users", "add", "a-1", "--role", "agent", *db)
    assert "agent a-1" in out
    rc, out, _ = run(capsys, "review", "users", "list", *db)
    assert out.splitlines() == ["a-1\tagent\t-\ta-1\tactive", "wang\tlead\tnorth\t-\tactive"]

    rc, out, err = run(capsys, "review", "import", str(files["scores"]), "--conversations", str(files["convs"]),
                       "--roster", str(files["roster"]), "--uncertain-share", "0.5", "--sample-share", "0.2",
                       "--double-share", "0.5", "--seed", "3", *db)
    assert rc == 0, err
    assert out.strip() == ("6 new conversations, 6 predictions (0 replaced), review tasks: 3 uncertain + "
                           "1 calibration sample (2 for two reviewers)")
    assert "scores.jsonl:7: bad JSON" in err

    rc, out, _ = run(capsys, "review", "teams", "north", "--restrict", *db)
    assert "restricted" in out
    out_file = files["dir"] / "ls.json"
    rc, out, _ = run(capsys, "review", "export", "--format", "label-studio", "-o", str(out_file),
                     "--label-config", str(files["dir"] / "config.xml"), *db)
    tasks = json.loads(out_file.read_text(encoding="utf-8"))
    assert rc == 0 and len(tasks) == 4 and (files["dir"] / "config.xml").read_text().startswith("<View>")
    tasks[0]["annotations"] = [{"id": 1, "result": [{"from_name": "sentiment", "to_name": "dialogue",
                                                     "type": "choices", "value": {"choices": ["negative"]}}],
                                "was_cancelled": False, "ground_truth": False, "lead_time": 2.0, "completed_by": 1,
                                "created_at": "2026-03-03T00:00:00Z", "updated_at": "2026-03-03T00:00:00Z"}]
    out_file.write_text(json.dumps(tasks), encoding="utf-8")
    rc, out, _ = run(capsys, "review", "import-label-studio", str(out_file), "--reviewer", "wang", *db)
    assert rc == 0 and out.startswith("1 annotations imported")

    rc, out, _ = run(capsys, "review", "export", "--format", "training", "-o", str(files["dir"] / "t.jsonl"), *db)
    [row] = [json.loads(x) for x in (files["dir"] / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rc == 0 and row["id"] == tasks[0]["data"]["conversation_id"] and row["labels"]["sentiment"] == "negative"
    rc, out, _ = run(capsys, "review", "export", "--format", "scores", "-o", str(files["dir"] / "s.jsonl"), *db)
    recs = [json.loads(x) for x in (files["dir"] / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rc == 0 and len(recs) == 6 and sum(r["reviewed_labels"] is not None for r in recs) == 1
    rc, out, _ = run(capsys, "review", "disputes", "--overdue", *db)
    assert rc == 0 and out == ""


@pytest.mark.parametrize("argv, message", [
    (["review", "import", "missing.jsonl", "--conversations", "missing.jsonl"], "missing.jsonl: no such file"),
    (["review", "export", "--format", "training", "-o", "x.jsonl", "--since", "yesterday"], "--since: not an ISO"),
    (["review", "users", "add", "bob", "--role", "reviewer", "--password", "short"], "password too short"),
    (["review", "import-label-studio", "missing.json"], "missing.json: no such file"),
    (["review", "users", "passwd", "nobody", "--password", "long-enough-1"], "no user 'nobody'"),
    (["review", "users", "list", "--db", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"],
     "cannot open review store"),
    (["review", "init-db", "--db", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"], "cannot migrate"),
    (["review", "users", "list", "--db", "mysql+nodriver://x/y"], "no driver"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_import_with_nothing_valid_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    rc, _, err = run(capsys, "review", "import", str(bad), "--conversations", str(bad))
    assert rc == 2 and "no valid score records" in err and "missing model" in err

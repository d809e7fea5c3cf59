"""`kefuqa topics` (高频问题追踪) on a small hand-written archive: four clearly different
customer problems over two months and two teams, grouped, named, counted and masked."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from kefuqa.cli import main as kefuqa_main
from kefuqa.grading.topics import NO_TEAM, UNDATED, ReadStats, TopicDoc, collect, find_topics
from kefuqa.grading.topics_output import write_topic_outputs
from kefuqa.io.readers import read_conversations
from kefuqa.text.pii import PiiMasker

PHONE = "13812345678"
AGENT_PHONE = "13700001111"  # an agent known by a phone number, on the roster too
ID_PHONE = "13900002222"  # a conversation id that holds a phone number
JAN, FEB = "2026-01-1{}T10:00:00+08:00", "2026-02-1{}T10:00:00+08:00"
TEAMS = {"a-1": "北区", "a-2": "北区", AGENT_PHONE: "北区", "a-3": "南区", "a-4": "南区"}

# kind → (customer turns, agent, started_at); the agent answers after the first customer turn.
ARCHIVE: dict[str, list[tuple[list[str], str, str | None]]] = {
    "refund": [
        (["在吗", "我的退款怎么还没到账啊，商家说已经同意退款了"], "a-1", JAN.format(1)),
        (["退款申请三天了钱还没到账，说好的原路退回呢"], "a-3", JAN.format(2)),
        (["你好，退款显示成功了但是银行卡里没到账"], "a-2", JAN.format(3)),
        (["退款什么时候能到账？已经等了一个星期了", "好的谢谢"], "a-4", JAN.format(4)),
        (["退款一直没到账，原路退回到微信要多久"], "a-1", FEB.format(1)),
        (["商家同意退款了，退款到账要多久"], "a-9", FEB.format(2)),
        (["亲，退款还没到账，能帮我催一下吗"], "a-3", None),
    ],
    "parcel": [
        (["我的快递一直显示运输中，物流五天没更新了，包裹是不是丢件了"], "a-2", JAN.format(5)),
        (
            ["包裹显示签收了但是我没收到", f"快递员说打我电话{PHONE}没人接，包裹放哪了我也不知道"],
            "a-3",
            JAN.format(6),
        ),
        (["物流信息停在中转站不动了，包裹是不是丢了"], "a-1", FEB.format(3)),
        (["在吗", "快递丢件了怎么办，物流说找不到我的包裹"], AGENT_PHONE, FEB.format(4)),
        (["我的包裹显示已签收，我根本没收到快递"], "a-4", FEB.format(5)),
        (["物流一直不更新，快递包裹是不是丢了，能补发吗"], "a-2", FEB.format(6)),
    ],
    "size": [
        (["衣服尺码偏小穿不上，能换大一码的尺码吗"], "a-4", JAN.format(7)),
        (["鞋子尺码不对，想换货，换小一码的尺码"], "a-1", JAN.format(8)),
        (["裤子尺码买小了，太紧了，可以换货换大一码吗"], "a-2", JAN.format(9)),
        # 2026-01-31T17:00Z is 1 February in Shanghai: counted in February.
        (["你好，我买的外套尺码偏大，能不能换货换个小一码的"], "a-3", "2026-01-31T17:00:00Z"),
        (["尺码表不准，穿着太大了，申请换货换小一码"], AGENT_PHONE, FEB.format(7)),
        (["换货怎么弄？尺码选错了要换大一码"], "a-9", FEB.format(8)),
    ],
    "invoice": [
        (["请问可以开发票吗？公司报销需要电子发票"], "a-3", JAN.format(0)),
        (["发票抬头写错了，能帮我重开一张发票吗"], "a-2", JAN.format(1)),
        (["我要开增值税专票，发票抬头和税号发给你"], "a-4", FEB.format(9)),
        (["在吗", "上个月买的还没给开发票，电子发票什么时候发"], "a-1", JAN.format(2)),
        (["发票开了吗？报销要用，抬头是公司名称"], "a-3", FEB.format(0)),
        (["能开普票吗，发票抬头填个人就行"], "a-9", FEB.format(1)),
    ],
}
KEY_TERMS = {"refund": {"退款", "到账"}, "parcel": {"包裹", "快递", "物流"}, "size": {"尺码", "换货"},
             "invoice": {"发票", "抬头"}}


def _conversation(cid: str, said: list[str], agent: str, started: str | None) -> dict:
    turns = [{"speaker": "customer", "text": said[0]}, {"speaker": "agent", "text": "亲，您好，这边帮您看一下哦"}]
    turns += [{"speaker": "customer", "text": t} for t in said[1:]]
    conv: dict = {"id": cid, "agent_id": agent, "turns": turns}
    if started:
        conv["started_at"] = started
    return conv


def _ids() -> list[tuple[str, str]]:
    """(conversation id as written, kind), in archive order."""
    return [(f"c-{kind}-{n}" if (kind, n) != ("invoice", 5) else f"c-{ID_PHONE}", kind)
            for kind, rows in ARCHIVE.items() for n in range(len(rows))]


def _kinds() -> dict[str, str]:
    """conversation id as the outputs name it (PII pseudonymised) → kind."""
    return {PiiMasker().mask_id(cid): kind for cid, kind in _ids()}


def _write_archive(folder: Path) -> tuple[Path, Path]:
    ids = iter(cid for cid, _ in _ids())
    lines = [
        json.dumps(_conversation(next(ids), *row), ensure_ascii=False) for rows in ARCHIVE.values() for row in rows
    ]
    lines += [
        json.dumps(_conversation("c-hello", ["在吗", "你好"], "a-1", JAN.format(3)), ensure_ascii=False),
        json.dumps({"id": "c-silent", "agent_id": "a-1", "turns": [{"speaker": "agent", "text": "您好"}]}),
        "{not json",
    ]
    archive = folder / "conversations.jsonl"
    archive.write_text("\n".join(lines) + "\n", encoding="utf-8")
    roster = folder / "roster.csv"
    roster.write_text("agent_id,team,hire_date\n" + "".join(f"{a},{t},\n" for a, t in TEAMS.items()),
                      encoding="utf-8")
    return archive, roster


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        kefuqa_main(["topics", *argv])
    return int(exit_info.value.code or 0)


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch):
    for name in ("KEFUQA_PII_ENABLED", "KEFUQA_PII_ID_KEY", "KEFUQA_GRADING_RUBRIC"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One `kefuqa topics` run, topic count chosen automatically: its files and stdout."""
    folder = tmp_path_factory.mktemp("topics")
    archive, roster = _write_archive(folder)
    out = folder / "out"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KEFUQA_PII_ENABLED", "KEFUQA_PII_ID_KEY", "KEFUQA_GRADING_RUBRIC"):
            mp.delenv(name, raising=False)
        with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()) as printed:
            kefuqa_main(["topics", str(archive), "--roster", str(roster), "--out", str(out)])
    return {"rc": exit_info.value.code, "stdout": printed.getvalue(), "out": out, "archive": archive,
            "roster": roster, "report": json.loads((out / "topics.json").read_text(encoding="utf-8"))}


def _by_kind(report: dict) -> dict[str, dict]:
    """kind → its topic, asserting that every topic holds one kind only (purity)."""
    members: dict[str, set[str]] = {}
    for cid, topic in report["assignments"].items():
        members.setdefault(topic, set()).add(_kinds()[cid])
    assert all(len(kinds) == 1 for kinds in members.values()), members
    topics = {t["id"]: t for t in report["topics"]}
    return {next(iter(kinds)): topics[tid] for tid, kinds in members.items()}


def test_four_problem_kinds_become_four_pure_named_topics(run):
    assert run["rc"] == 0
    report = run["report"]
    assert report["k"] == 4 and report["k_chosen_by"] == "silhouette"
    assert set(report["assignments"]) == set(_kinds())
    by_kind = _by_kind(report)
    assert set(by_kind) == set(ARCHIVE)
    for kind, topic in by_kind.items():
        assert topic["count"] == len(ARCHIVE[kind])
        assert KEY_TERMS[kind] & set(topic["name"].split(" · ")), (kind, topic["name"])
        assert len(topic["examples"]) == 3
        assert {e["id"] for e in topic["examples"]} <= {c for c, k in _kinds().items() if k == kind}
    assert [t["id"] for t in report["topics"]] == ["T1", "T2", "T3", "T4"]
    assert report["topics"][0]["name"] == by_kind["refund"]["name"]  # the biggest first


def test_counts_per_period_team_and_trend(run):
    report = run["report"]
    assert report["periods"] == ["2026-01", "2026-02"] and report["undated"] == 1
    assert report["read"] == {"conversations": 27, "rejected": 1, "without_customer": 1}
    assert report["no_words"] == 1 and report["grouped"] == 25
    by_kind = _by_kind(report)
    for kind, rows in ARCHIVE.items():
        topic = by_kind[kind]
        months = Counter("2026-01" if s and s.startswith("2026-01-1") else "2026-02" if s else UNDATED
                         for _, _, s in rows)
        assert topic["by_period"] == {"2026-01": months["2026-01"], "2026-02": months["2026-02"],
                                      UNDATED: months[UNDATED]}
        assert topic["by_team"] == dict(Counter(TEAMS.get(agent, NO_TEAM) for _, agent, _ in rows))
    assert by_kind["size"]["by_period"] == {"2026-01": 3, "2026-02": 3, UNDATED: 0}
    assert by_kind["parcel"]["by_team"] == {"北区": 4, "南区": 2}
    # January: 4 refund of 12 dated; February: 2 of 12.
    assert by_kind["refund"]["share_by_period"]["2026-01"] == pytest.approx(4 / 12, abs=1e-4)
    assert by_kind["refund"]["trend_pp"] == pytest.approx(-16.7)
    assert by_kind["parcel"]["trend_pp"] == pytest.approx(100 * (4 / 12 - 2 / 12), abs=0.05)
    assert report["trend"] == ["2026-01", "2026-02"]


def test_csv_and_summary(run):
    with (run["out"] / "topics.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["topic_id"] for r in rows] == ["T1", "T2", "T3", "T4"]
    assert list(rows[0]) == ["topic_id", "name", "count", "share", "2026-01", "2026-02", UNDATED, "trend_pp"]
    refund = rows[0]
    assert (refund["count"], refund["2026-01"], refund["2026-02"], refund[UNDATED]) == ("7", "4", "2", "1")
    text = run["stdout"]
    assert "高频问题追踪（按月，2026-01 至 2026-02" in text and "分为 4 类" in text
    assert "-16.7 个百分点" in text and "跳过 1 行无效输入" in text
    assert "1 个会话没有客户发言" in text and "只有寒暄或语气词" in text


def test_phone_numbers_never_reach_any_output(run):
    outputs = [run["stdout"], *(p.read_text(encoding="utf-8-sig") for p in run["out"].iterdir())]
    for number in (PHONE, AGENT_PHONE, ID_PHONE):
        assert all(number not in text for text in outputs), number
    assert any(cid.startswith("c-[手机号#") for cid in run["report"]["assignments"])
    assert _by_kind(run["report"])["parcel"]["by_team"]["北区"] == 4  # the agent joined the roster by pseudonym
    docs, _ = collect(read_conversations(run["archive"]), PiiMasker())
    [said] = [d.text for d in docs if "快递员说打我电话" in d.text]
    assert "[手机号]" in said and PHONE not in said


def test_same_archive_same_topics(run, tmp_path):
    out = tmp_path / "again"
    assert _run([str(run["archive"]), "--roster", str(run["roster"]), "--topics", "4", "--out", str(out)]) == 0
    again = json.loads((out / "topics.json").read_text(encoding="utf-8"))
    assert again["assignments"] == run["report"]["assignments"]
    assert again["k_chosen_by"] == "--topics" and again["silhouette"] == {}


def test_without_roster_every_agent_is_ungrouped_and_quarters(run, tmp_path):
    out = tmp_path / "q"
    assert _run([str(run["archive"]), "--period", "quarter", "--topics", "4", "--out", str(out)]) == 0
    report = json.loads((out / "topics.json").read_text(encoding="utf-8"))
    assert report["periods"] == ["2026-Q1"] and report["trend"] is None
    assert all(set(t["by_team"]) == {NO_TEAM} and t["trend_pp"] is None for t in report["topics"])


def test_csv_cells_that_look_like_formulas_are_quoted(tmp_path):
    docs = [TopicDoc(f"c-{i}", "a-1", None, text, tuple(words)) for i, (text, words) in enumerate(
        [("退款没到账", ["退款", "到账"]), ("退款到账", ["退款", "到账"]), ("开发票", ["发票"]), ("发票", ["发票"])])]
    report = find_topics(docs, ReadStats(4), k=2)
    topic = dataclasses.replace(report.topics[0], name="=HYPERLINK(\"http://x\")", id="@T1")
    write_topic_outputs(dataclasses.replace(report, topics=(topic, *report.topics[1:])), tmp_path)
    with (tmp_path / "topics.csv").open(encoding="utf-8-sig", newline="") as fh:
        first = list(csv.DictReader(fh))[0]
    assert first["name"] == "'=HYPERLINK(\"http://x\")" and first["topic_id"] == "'@T1"
    assert first[UNDATED] == "2"


def _error(capsys, argv: list[str]) -> str:
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_missing_file_exits_2_with_one_line(tmp_path, capsys):
    err = _error(capsys, [str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")])
    assert err.startswith("kefuqa topics: ") and "nope.jsonl: no such file" in err
    assert not (tmp_path / "o").exists()


def test_no_customer_turns_exits_2(tmp_path, capsys):
    archive = tmp_path / "agents_only.jsonl"
    archive.write_text(json.dumps({"id": "c-1", "agent_id": "a-1", "turns": [{"speaker": "agent", "text": "您好"}]})
                       + "\n{broken\n", encoding="utf-8")
    err = _error(capsys, [str(archive), "--out", str(tmp_path / "o")])
    assert "no customer turns in 1 valid conversations (1 invalid lines skipped)" in err


def test_greetings_only_exit_2(tmp_path, capsys):
    archive = tmp_path / "hello.jsonl"
    rows = [_conversation(f"c-{i}", ["在吗", "你好"], "a-1", None) for i in range(3)]
    archive.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert "only greetings and fillers" in _error(capsys, [str(archive), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("value", ["1", "0", "-3"])
def test_fewer_than_two_topics_exits_2(run, tmp_path, capsys, value):
    err = _error(capsys, [str(run["archive"]), "--topics", value, "--out", str(tmp_path / "o")])
    assert f"--topics: must be at least 2, not {value}" in err


def test_more_topics_than_different_problems_exits_2(run, tmp_path, capsys):
    err = _error(capsys, [str(run["archive"]), "--topics", "40", "--out", str(tmp_path / "o")])
    assert "--topics 40 is more than the 25 different customer problems found" in err


def test_bad_roster_exits_2(run, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("agent,team\na-1,北区\n", encoding="utf-8")
    err = _error(capsys, [str(run["archive"]), "--roster", str(roster), "--out", str(tmp_path / "o")])
    assert "missing column(s) ['agent_id']" in err


def test_counts_per_team_as_csv(run):
    with (run["out"] / "topics_teams.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["topic_id", "name", "team", "count", "share_of_topic"]
    parcel = _by_kind(run["report"])["parcel"]
    mine = {r["team"]: (int(r["count"]), float(r["share_of_topic"])) for r in rows if r["topic_id"] == parcel["id"]}
    assert mine == {"北区": (4, pytest.approx(4 / 6, abs=1e-4)), "南区": (2, pytest.approx(2 / 6, abs=1e-4))}
    assert sum(int(r["count"]) for r in rows) == run["report"]["grouped"]


def test_the_report_shows_topics_per_period_and_team_with_masked_examples(run):
    html = (run["out"] / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
    assert "<script" not in html and "http" not in html  # one file that opens offline
    assert "高频问题追踪" in html and "各周期会话数" in html and "各团队会话数" in html
    assert "较上期（2026-01→2026-02）" in html and "-16.7 个百分点" in html and "无日期" in html
    by_kind = _by_kind(run["report"])
    for topic in by_kind.values():
        assert f'id="topic-{topic["id"]}"' in html and topic["name"] in html
        assert all(e["text"] in html for e in topic["examples"])
    teams = html.split('id="by-team"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<th>([^<]+)</th>", teams) == ["北区", "南区", NO_TEAM]  # the biggest team first
    [parcel_row] = [r for r in teams.split("<tr>") if f'>{by_kind["parcel"]["id"]}</td>' in r]
    assert [int(n) for n in re.findall(r"<td>(\d+)</td>", parcel_row)] == [4, 2, 0]


def test_english_report_and_summary(run, tmp_path, capsys):
    out = tmp_path / "en"
    argv = [str(run["archive"]), "--roster", str(run["roster"]), "--topics", "4", "--lang", "en", "--out", str(out)]
    assert _run(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("Recurring customer problems (by month, 2026-01 to 2026-02, Asia/Shanghai): 25 conver")
    assert "into 4 topics (set by --topics)" in text and "-16.7 pp" in text
    assert "1 invalid input line(s) skipped" in text and text.rstrip().endswith("report.html")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Conversations per team" in html and "vs previous (2026-01→2026-02)" in html
    assert "高频问题追踪" not in html and "各团队会话数" not in html
    # the same topics in either language
    assert json.loads((out / "topics.json").read_text(encoding="utf-8"))["assignments"] == run["report"]["assignments"]

"""Appeals on a period grade (绩效申诉): the HR timeline with working-day deadlines across a
调休 weekend, roles, overdue steps, the closed re-appeal window, the audit trail, the
statistics per period, the JSON API on a real server and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from kefuqa.cli import main
from kefuqa.grading.rubric import GRADES, INSUFFICIENT
from kefuqa.labeling import appeals, audit
from kefuqa.labeling.access import Conflict, Forbidden, Invalid, NotFound
from kefuqa.labeling.app import create_app
from kefuqa.labeling.appeal_stats import period_stats
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session

from .helpers import PASSWORD, Server, users

SH = ZoneInfo("Asia/Shanghai")
# National Day 2026: Thu 1 Oct – Wed 7 Oct off; Sunday 27 Sep and Saturday 10 Oct are worked (调休).
NATIONAL_DAY = ReviewConfig(
    holidays=[date(2026, 10, d) for d in (1, 2, 5, 6, 7)],
    extra_workdays=[date(2026, 9, 27), date(2026, 10, 10)],
)
TEAMS = (("a-1", "agent", "north"), ("a-2", "agent", "north"), ("a-9", "agent", "south"),
         ("lead", "lead", "north"), ("slead", "lead", "south"), ("rev", "reviewer", "north"),
         ("boss", "admin", None), ("boss2", "admin", None))


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def end_of(y: int, m: int, d: int) -> datetime:
    return sh(y, m, d, 23, 59, 59)


def test_the_grades_are_the_rubrics():
    assert appeals.GRADES == GRADES and appeals.NOT_GRADED == INSUFFICIENT


def test_a_three_level_rubric_names_its_own_grades(engine, monkeypatch):
    monkeypatch.setenv("KEFUQA_REVIEW_APPEAL_GRADES", "优秀, 合格, 不合格")
    cfg = ReviewConfig()
    assert cfg.appeal_grades == ["优秀", "合格", "不合格"]
    u = users(engine, *TEAMS)
    with session(engine, write=True) as s:
        with pytest.raises(Invalid, match="one of 优秀, 合格, 不合格, 数据不足, not '良好'"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "良好", 81, "x", now=sh(2026, 12, 1, 10))
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "不合格", 55, "投诉不是我的", now=sh(2026, 12, 1, 10))
        a = appeals.acknowledge(s, u["lead"], cfg, a["id"], version=a["version"], now=sh(2026, 12, 1, 11))
        with pytest.raises(Invalid, match="one of 优秀, 合格, 不合格"):
            appeals.decide(s, u["lead"], cfg, a["id"], "overturned", "x", "中等", version=a["version"],
                           now=sh(2026, 12, 2, 9))
        a = appeals.decide(s, u["lead"], cfg, a["id"], "overturned", "核实后改判", "合格", version=a["version"],
                           now=sh(2026, 12, 2, 9))
    assert a["final_grade"] == "合格"
    for bad in ("优秀,合格", "优秀,优秀,合格", "优秀,,合格"):
        monkeypatch.setenv("KEFUQA_REVIEW_APPEAL_GRADES", bad)
        with pytest.raises(ValueError, match="3 to 5 distinct grade names"):
            ReviewConfig()


def test_appeal_deadlines_read_in_the_review_time_zone(engine):
    cfg = ReviewConfig(timezone="America/New_York")
    u = users(engine, *TEAMS)
    ny = ZoneInfo("America/New_York")
    with session(engine, write=True) as s:  # Friday 6 March, 21:00 in New York: Saturday morning in Shanghai
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-02", "合格", None, "二月的评分有误",
                                now=datetime(2026, 3, 6, 21, tzinfo=ny))
    # five working days after Friday in New York: Friday 13 March, after the switch to summer time
    assert (a["due_at"], a["timezone"]) == ("2026-03-13T23:59:59-04:00", "America/New_York")
    with session(engine) as s:
        [listed] = appeals.list_appeals(s, u["lead"], tz=cfg.timezone, now=datetime(2026, 3, 7, tzinfo=ny))
        shown = appeals.get_appeal(s, u["a-1"], a["id"], tz=cfg.timezone)
    assert listed["due_at"] == shown["due_at"] == a["due_at"]


@pytest.mark.parametrize(("period", "start"), [("2026-11", date(2026, 11, 1)), ("2026-Q4", date(2026, 10, 1)),
                                               ("2026", date(2026, 1, 1)), (" 2026-02 ", date(2026, 2, 1))])
def test_period_ids(period, start):
    assert appeals.period_start(period) == start


@pytest.mark.parametrize("period", ["2026-13", "2026-Q5", "26-11", "2026/11", "", "2026-11-01"])
def test_bad_period_ids_say_what_is_expected(period):
    with pytest.raises(Invalid, match=r"a month \(2026-11\), a quarter \(2026-Q4\) or a year \(2026\)"):
        appeals.period_start(period)


def test_timeline_with_deadlines_across_a_makeup_weekend(engine):
    cfg = NATIONAL_DAY
    u = users(engine, *TEAMS)
    with session(engine, write=True) as s:
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-09", "合格", 64.5, "九月投诉率按错了会话计算",
                                now=sh(2026, 9, 25, 18))
    # Sun 27 Sep (worked), Mon–Wed, then the holiday week: the 5th working day is Thu 8 Oct
    assert (a["status"], a["level"], a["next_step"], a["waiting_for"]) == ("filed", 1, "acknowledge", "lead")
    assert datetime.fromisoformat(a["due_at"]) == end_of(2026, 10, 8)
    # shown as counted: in the review time zone, named
    assert (a["due_at"], a["timezone"]) == ("2026-10-08T23:59:59+08:00", "Asia/Shanghai")
    with session(engine, write=True) as s:
        a = appeals.acknowledge(s, u["lead"], cfg, a["id"], "已收到，十个工作日内复核", version=1,
                                now=sh(2026, 9, 30, 10))
        # 10 working days after Wed 30 Sep: 8, 9, Sat 10 (调休), 12–16, 19, 20 Oct
        assert datetime.fromisoformat(a["due_at"]) == end_of(2026, 10, 20)
        a = appeals.decide(s, u["lead"], cfg, a["id"], "overturned", "三条投诉属于其他客服", "中等",
                           version=a["version"], now=sh(2026, 10, 10, 15))  # decided on the worked Saturday
        assert (a["status"], a["final_grade"], a["outcome"]) == ("decided", "中等", "overturned")
        assert datetime.fromisoformat(a["due_at"]) == end_of(2026, 10, 16)
        a = appeals.notify(s, u["lead"], cfg, a["id"], "面谈告知", version=a["version"], now=sh(2026, 10, 12, 9))
    assert a["status"] == "notified" and a["due_at"] is None and a["waiting_for"] == "agent"
    assert a["reappeal_until"] == "2026-10-19T23:59:59+08:00"
    with session(engine, write=True) as s:
        with pytest.raises(Conflict, match="changed since you loaded"):
            appeals.reappeal(s, u["a-1"], cfg, a["id"], "stale", version=1, now=sh(2026, 10, 19, 20))
        a = appeals.reappeal(s, u["a-1"], cfg, a["id"], "应为良好", version=a["version"], now=sh(2026, 10, 19, 20))
    assert (a["status"], a["level"], a["waiting_for"]) == ("reappealed", 2, "admin")
    assert datetime.fromisoformat(a["due_at"]) == end_of(2026, 11, 2)
    with session(engine, write=True) as s:
        with pytest.raises(Forbidden, match="decided by an admin"):
            appeals.decide(s, u["lead"], cfg, a["id"], "upheld", "x", version=a["version"], now=sh(2026, 10, 20, 9))
        a = appeals.decide(s, u["boss"], cfg, a["id"], "upheld", "维持中等", version=a["version"],
                           now=sh(2026, 10, 21, 9))
        a = appeals.notify(s, u["boss"], cfg, a["id"], version=a["version"], now=sh(2026, 10, 21, 10))
        with pytest.raises(Conflict, match="re-appealed once"):
            appeals.reappeal(s, u["a-1"], cfg, a["id"], "again", version=a["version"], now=sh(2026, 10, 21, 11))
    assert (a["status"], a["final_grade"], a["outcome"], a["overdue"]) == ("final", "中等", "upheld", False)
    assert a["closed_at"] is not None
    timeline = [(t["level"], t["step"], t["by"], t["late"]) for t in a["timeline"]]
    assert timeline == [(1, "filed", "a-1", False), (1, "acknowledged", "lead", False),
                        (1, "decided", "lead", False), (1, "notified", "lead", False),
                        (2, "reappealed", "a-1", False), (2, "decided", "boss", False), (2, "notified", "boss", False)]
    assert [t["due_at"] for t in a["timeline"]][:4] == [None, "2026-10-08T23:59:59+08:00",
                                                        "2026-10-20T23:59:59+08:00", "2026-10-16T23:59:59+08:00"]
    assert [t["due_at"] is not None for t in a["timeline"]] == [False, True, True, True, True, True, True]
    with session(engine) as s:
        trail = list(reversed(audit.entries(s, entity="grade_appeal", entity_id=str(a["id"]))))
        assert audit.verify(s).intact
    assert [(e["actor"], e["action"]) for e in trail] == [
        ("a-1", "appeal.filed"), ("lead", "appeal.acknowledged"), ("lead", "appeal.decided"),
        ("lead", "appeal.notified"), ("a-1", "appeal.reappealed"), ("boss", "appeal.decided"),
        ("boss", "appeal.notified")]
    assert trail[2]["before"] == {"status": "acknowledged", "grade": "合格"}
    assert trail[2]["after"]["grade"] == "中等" and trail[2]["after"]["outcome"] == "overturned"


def test_roles(engine):
    cfg = ReviewConfig()
    u = users(engine, *TEAMS)
    now = sh(2026, 12, 1, 10)
    with session(engine, write=True) as s:
        for who in ("rev", "lead", "boss"):
            with pytest.raises(Forbidden, match="only an agent"):
                appeals.file_appeal(s, u[who], cfg, "2026-11", "合格", 61, "x", now=now)
        with pytest.raises(Forbidden, match="only their own grade"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "合格", 61, "x", agent_id="a-2", now=now)
        with pytest.raises(Invalid, match="has not started"):
            appeals.file_appeal(s, u["a-1"], cfg, "2027-01", "合格", 61, "x", now=now)
        with pytest.raises(Invalid, match="grade must be one of"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "C", 61, "x", now=now)
        with pytest.raises(Invalid, match="score must be"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "合格", 140, "x", now=now)
        with pytest.raises(Invalid, match="reason"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "合格", 61, "  ", now=now)
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "合格", 61, "客户电话13812345678的会话不是我接的", now=now)
        assert "13812345678" not in a["reason"] and "[手机号]" in a["reason"]
        with pytest.raises(Conflict, match="already appealed"):
            appeals.file_appeal(s, u["a-1"], cfg, "2026-11", "合格", 61, "again", now=now)
        appeals.file_appeal(s, u["a-1"], cfg, "2026-Q4", "中等", None, "another period is another appeal", now=now)
    aid = a["id"]
    with session(engine, write=True) as s:
        with pytest.raises(Forbidden, match="lead of team north"):
            appeals.acknowledge(s, u["a-1"], cfg, aid, version=1, now=now)
        with pytest.raises(NotFound):  # another agent, or another team's lead, does not see it at all
            appeals.get_appeal(s, u["a-2"], aid)
        with pytest.raises(NotFound):
            appeals.acknowledge(s, u["slead"], cfg, aid, version=1, now=now)
        with pytest.raises(Forbidden, match="handled by the lead"):
            appeals.acknowledge(s, u["rev"], cfg, aid, version=1, now=now)
        with pytest.raises(Conflict, match="acknowledge it first"):
            appeals.decide(s, u["lead"], cfg, aid, "upheld", "x", version=1, now=now)
        a = appeals.acknowledge(s, u["boss"], cfg, aid, version=1, now=now)  # admins may act for a lead
        with pytest.raises(Invalid, match="needs new_grade"):
            appeals.decide(s, u["lead"], cfg, aid, "overturned", "x", version=a["version"], now=now)
        with pytest.raises(Invalid, match="uphold it instead"):
            appeals.decide(s, u["lead"], cfg, aid, "overturned", "x", "合格", version=a["version"], now=now)
        a = appeals.decide(s, u["boss"], cfg, aid, "upheld", "数据无误", version=a["version"], now=now)
        a = appeals.notify(s, u["lead"], cfg, aid, version=a["version"], now=now)
        with pytest.raises(Forbidden, match="only the agent who filed"):
            appeals.reappeal(s, u["lead"], cfg, aid, "x", version=a["version"], now=now)
        a = appeals.reappeal(s, u["a-1"], cfg, aid, "请公司复核", version=a["version"], now=now)
        with pytest.raises(Forbidden, match="someone other than the first decision"):
            appeals.decide(s, u["boss"], cfg, aid, "upheld", "x", version=a["version"], now=now)
        appeals.decide(s, u["boss2"], cfg, aid, "overturned", "改为中等", "中等", version=a["version"], now=now)
        assert [x["period"] for x in appeals.list_appeals(s, u["a-1"], now=now)] == ["2026-11", "2026-Q4"]
        assert appeals.list_appeals(s, u["a-2"], now=now) == []
        assert appeals.list_appeals(s, u["slead"], now=now) == []
        assert len(appeals.list_appeals(s, u["lead"], now=now)) == 2
        with pytest.raises(Forbidden):
            appeals.list_appeals(s, u["rev"], now=now)


def test_overdue_steps_and_the_closed_reappeal_window(engine):
    cfg = NATIONAL_DAY
    u = users(engine, *TEAMS)
    with session(engine, write=True) as s:
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-Q3", "不合格", 48, "季度评级有误", now=sh(2026, 9, 25, 18))
    with session(engine) as s:  # acknowledgement due Thu 8 Oct: on time until its last second
        assert appeals.list_appeals(s, u["lead"], overdue=True, now=sh(2026, 10, 8, 23, 59)) == []
        [late] = appeals.list_appeals(s, u["lead"], overdue=True, now=sh(2026, 10, 9, 0, 1))
        assert late["id"] == a["id"] and late["overdue"] and late["next_step"] == "acknowledge"
    with session(engine, write=True) as s:
        a = appeals.acknowledge(s, u["lead"], cfg, a["id"], version=1, now=sh(2026, 10, 9, 9))
        assert not a["overdue"] and a["timeline"][-1]["late"] is True
        a = appeals.decide(s, u["lead"], cfg, a["id"], "upheld", "复核无误", version=a["version"],
                           now=sh(2026, 10, 12, 9))
        a = appeals.notify(s, u["lead"], cfg, a["id"], version=a["version"], now=sh(2026, 10, 12, 10))
        trail = audit.entries(s, entity="grade_appeal", entity_id=str(a["id"]))
    assert [e["after"].get("late") for e in reversed(trail)] == [None, True, False, False]
    # re-appeal within 5 working days of Mon 12 Oct: until Mon 19 Oct 23:59:59
    with session(engine) as s:
        assert appeals.get_appeal(s, u["a-1"], a["id"], now=sh(2026, 10, 19, 23))["status"] == "notified"
        assert appeals.get_appeal(s, u["a-1"], a["id"], now=sh(2026, 10, 20, 0, 1))["status"] == "final"
    with pytest.raises(Invalid, match=r"too late.*2026-10-19 23:59 Asia/Shanghai.*5 working days"), \
            session(engine, write=True) as s:
        appeals.reappeal(s, u["a-1"], cfg, a["id"], "late", version=a["version"], now=sh(2026, 10, 20, 9))


def test_statistics_per_period(engine):
    cfg = ReviewConfig()
    u = users(engine, *TEAMS)
    day = sh(2026, 11, 2, 9)  # a Monday
    with session(engine, write=True) as s:
        up = appeals.file_appeal(s, u["a-1"], cfg, "2026-10", "合格", 62, "a", now=day)
        over = appeals.file_appeal(s, u["a-2"], cfg, "2026-10", "中等", 75, "b", now=day)
        appeals.file_appeal(s, u["a-9"], cfg, "2026-10", "良好", 85, "c", now=day)  # south: never acknowledged
        appeals.file_appeal(s, u["a-1"], cfg, "2026-Q3", "合格", 60, "d", now=day)
        up = appeals.acknowledge(s, u["lead"], cfg, up["id"], version=1, now=sh(2026, 11, 3, 9))
        up = appeals.decide(s, u["lead"], cfg, up["id"], "upheld", "ok", version=up["version"],
                            now=sh(2026, 11, 5, 9))  # 3 working days after filing
        over = appeals.acknowledge(s, u["lead"], cfg, over["id"], version=1, now=sh(2026, 11, 3, 9))
        appeals.decide(s, u["lead"], cfg, over["id"], "overturned", "改判", "良好", version=over["version"],
                       now=sh(2026, 11, 9, 9))  # 5 working days after filing
    later = sh(2026, 11, 10, 9)  # the south appeal's acknowledgement (due Mon 9 Nov) is overdue now
    with session(engine) as s:
        rows = {r["period"]: r for r in period_stats(s, u["boss"], cfg, now=later)}
        north = period_stats(s, u["lead"], cfg, "2026-10", now=later)
        with pytest.raises(Forbidden):
            period_stats(s, u["a-1"], cfg, now=later)
        with pytest.raises(Invalid):
            period_stats(s, u["boss"], cfg, "October", now=later)
    assert list(rows) == ["2026-Q3", "2026-10"]
    assert rows["2026-10"] == {"period": "2026-10", "filed": 3, "open": 3, "decided": 2, "upheld": 1,
                               "overturned": 1, "reappealed": 0, "overdue": 1, "median_days_to_decision": 4.0}
    assert rows["2026-Q3"]["filed"] == 1 and rows["2026-Q3"]["median_days_to_decision"] is None
    assert north == [{"period": "2026-10", "filed": 2, "open": 2, "decided": 2, "upheld": 1, "overturned": 1,
                      "reappealed": 0, "overdue": 0, "median_days_to_decision": 4.0}]


# ------------------------------------------------------------------ the JSON API and the CLI
@pytest.fixture
def server(engine, settings):
    users(engine, *TEAMS)
    with Server(create_app(settings, ReviewConfig())) as srv:
        yield srv


@contextmanager
def client(server: Server, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/api/review/login", json={"name": name, "password": PASSWORD}).status_code == 200
        yield c


def message(r: httpx.Response) -> str:
    return r.json()["detail"]["message"]


def test_api_flow(server):
    base = "/api/review/appeals"
    with client(server, "a-1") as agent, client(server, "lead") as lead, client(server, "boss") as admin, \
            client(server, "slead") as other, client(server, "rev") as rev:
        assert agent.get(base).json()["grades"] == ["优秀", "良好", "中等", "合格", "不合格"]  # for the page's choices
        r = agent.post(base, json={"period": "2026-1", "grade": "合格", "reason": "x"})
        assert r.status_code == 422 and "a month (2026-11)" in message(r)
        r = rev.post(base, json={"period": "2026-11", "grade": "合格", "reason": "x"})
        assert r.status_code == 403 and "only an agent" in message(r)
        r = agent.post(base, json={"period": "2026-11", "grade": "合格", "score": 63.5, "reason": "投诉算错",
                                   "agent_id": "a-1"})
        assert r.status_code == 201, r.text
        a = r.json()
        assert (a["agent"], a["team"], a["status"], a["score"]) == ("a-1", "north", "filed", 63.5)
        assert agent.post(base, json={"period": "2026-11", "grade": "合格", "reason": "y"}).status_code == 409
        url = f"{base}/{a['id']}"
        assert other.get(url).status_code == 404 and rev.get(url).status_code == 403
        r = agent.post(url + "/acknowledge", json={"version": 1})
        assert r.status_code == 403 and "lead of team north" in message(r)
        a = lead.post(url + "/acknowledge", json={"version": 1, "note": "已收到"}).json()
        r = lead.post(url + "/acknowledge", json={"version": a["version"]})
        assert r.status_code == 409
        r = lead.post(url + "/decide", json={"version": 1, "outcome": "upheld", "reason": "x"})
        assert r.status_code == 409 and r.json()["detail"]["current_version"] == a["version"]
        r = lead.post(url + "/decide", json={"version": a["version"], "outcome": "maybe", "reason": "x"})
        assert r.status_code == 422 and isinstance(r.json()["detail"], list)
        a = lead.post(url + "/decide", json={"version": a["version"], "outcome": "overturned", "reason": "核实后改判",
                                             "new_grade": "中等"}).json()
        a = lead.post(url + "/notify", json={"version": a["version"]}).json()
        assert a["status"] == "notified" and agent.get(url).json()["final_grade"] == "中等"
        a = agent.post(url + "/reappeal", json={"version": a["version"], "reason": "应为良好"}).json()
        r = lead.post(url + "/decide", json={"version": a["version"], "outcome": "upheld", "reason": "x"})
        assert r.status_code == 403 and "admin" in message(r)
        a = admin.post(url + "/decide", json={"version": a["version"], "outcome": "upheld", "reason": "维持"}).json()
        a = admin.post(url + "/notify", json={"version": a["version"]}).json()
        assert a["status"] == "final" and len(a["timeline"]) == 7
        assert [x["id"] for x in agent.get(base).json()["appeals"]] == [a["id"]]
        assert other.get(base).json()["appeals"] == []
        stats = lead.get(base + "/stats", params={"period": "2026-11"}).json()["periods"]
        assert [(p["period"], p["filed"], p["overturned"], p["reappealed"]) for p in stats] == [("2026-11", 1, 1, 1)]
        assert agent.get(base + "/stats").status_code == 403
        assert lead.get(base + "/stats", params={"period": "Nov"}).status_code == 422
        audit_rows = admin.get("/api/review/audit", params={"entity": "grade_appeal"}).json()["entries"]
        assert len(audit_rows) == 7


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_cli_statistics(capsys, engine, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFUQA_HOME", str(tmp_path / "home"))
    cfg = ReviewConfig()
    u = users(engine, *TEAMS)
    with session(engine, write=True) as s:
        a = appeals.file_appeal(s, u["a-1"], cfg, "2026-10", "合格", 62, "a", now=sh(2026, 11, 2, 9))
        a = appeals.acknowledge(s, u["lead"], cfg, a["id"], version=1, now=sh(2026, 11, 2, 10))
        a = appeals.decide(s, u["lead"], cfg, a["id"], "overturned", "改判", "中等", version=a["version"],
                           now=sh(2026, 11, 4, 10))
        appeals.notify(s, u["lead"], cfg, a["id"], version=a["version"], now=sh(2026, 11, 4, 11))
    # the CLI counts at the real time: the re-appeal window (until 11 Nov) is over, the appeal final
    rc, out, _ = run_cli(capsys, "review", "appeals", "--db", db_url)
    assert rc == 0
    header, row = out.splitlines()
    assert header.split("\t")[:3] == ["period", "filed", "open"]
    assert dict(zip(header.split("\t"), row.split("\t"))) == {
        "period": "2026-10", "filed": "1", "open": "0", "decided": "1", "upheld": "0", "overturned": "1",
        "reappealed": "0", "overdue": "0", "median_days_to_decision": "2.0"}
    rc, out, _ = run_cli(capsys, "review", "appeals", "--period", "2026-10", "--json", "--db", db_url)
    assert rc == 0 and json.loads(out)["overturned"] == 1
    rc, out, _ = run_cli(capsys, "review", "appeals", "--period", "2026-09", "--db", db_url)
    assert rc == 0 and out.strip() == "no appeals on a period grade for 2026-09"
    rc, out, err = run_cli(capsys, "review", "appeals", "--period", "Sept", "--db", db_url)
    assert rc == 2 and err.count("\n") == 1 and "a month (2026-11)" in err

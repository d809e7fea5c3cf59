"""Disputes (申诉): the lifecycle with working-day deadlines, holidays, escalation and the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kefuqa.labeling import audit
from kefuqa.labeling.access import Conflict, Forbidden, Invalid, NotFound
from kefuqa.labeling.config import ReviewConfig
from kefuqa.labeling.db import session
from kefuqa.labeling.disputes import accept, answer_dispute, escalate, file_dispute, list_disputes
from kefuqa.labeling.queue import build_queue
from kefuqa.labeling.views import item
from kefuqa.labeling.workdays import WorkCalendar

from .helpers import T0, load, users

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_working_days_skip_weekends_and_holidays_and_count_makeup_days():
    cal = WorkCalendar.of("Asia/Shanghai", holidays=[date(2026, 10, 1), date(2026, 10, 2)],
                          extra_workdays=[date(2026, 10, 10)])
    assert cal.add_workdays(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Friday → Monday
    assert cal.add_workdays(date(2026, 3, 2), 5) == date(2026, 3, 9)
    assert cal.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 5)  # over the holiday and the weekend
    assert cal.add_workdays(date(2026, 10, 9), 1) == date(2026, 10, 10)  # a worked Saturday (调休)
    # the deadline is the end of the day in the configured zone; Friday 16:30 UTC is Saturday in Shanghai
    assert cal.deadline(sh(2026, 3, 6, 23, 30), 5) == sh(2026, 3, 13, 23, 59, 59)
    assert cal.deadline(datetime(2026, 3, 6, 15, 30, tzinfo=UTC), 1) == sh(2026, 3, 9, 23, 59, 59)
    assert cal.deadline(datetime(2026, 3, 6, 16, 30, tzinfo=UTC), 1) == sh(2026, 3, 9, 23, 59, 59)
    assert cal.deadline(datetime(2026, 3, 6, 16, 30, tzinfo=UTC), 2) == sh(2026, 3, 10, 23, 59, 59)
    assert cal.workdays_between(sh(2026, 3, 6, 9), sh(2026, 3, 13, 9)) == 5


def test_holidays_setting_accepts_a_comma_list(monkeypatch):
    monkeypatch.setenv("KEFUQA_REVIEW_HOLIDAYS", "2026-10-01, 2026-10-02")
    monkeypatch.setenv("KEFUQA_REVIEW_ANSWER_DAYS", "10")
    cfg = ReviewConfig()
    assert cfg.holidays == [date(2026, 10, 1), date(2026, 10, 2)] and cfg.answer_days == 10
    assert (cfg.file_days, cfg.escalate_days, cfg.extra_workdays) == (3, 5, [])


def test_dispute_lifecycle_with_deadlines(engine):
    cfg = ReviewConfig(holidays=[date(2026, 3, 4)])  # a Wednesday off
    load(engine, [("c1", "a-1", 0.9), ("c2", "a-1", 0.9), ("other", "a-2", 0.9)], now=T0)  # scored Mon 2 March
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None), ("lead1", "lead", None),
               ("lead2", "lead", None))
    agent = u["a-1"]

    with session(engine, write=True) as s:
        with pytest.raises(Forbidden, match="only the agent"):
            file_dispute(s, u["rev"], cfg, "c1", "no", now=T0)
        with pytest.raises(NotFound):
            file_dispute(s, agent, cfg, "other", "not mine", now=T0)
        with pytest.raises(Invalid, match="give a reason"):
            file_dispute(s, agent, cfg, "c1", "  ", now=T0)
        # 3 working days to file: Tue, Thu, Fri (Wednesday is a holiday) → until Friday 23:59
        with pytest.raises(Invalid, match=r"too late.*3 working days.*until 2026-03-06 23:59 Asia/Shanghai"):
            file_dispute(s, agent, cfg, "c2", "late", now=sh(2026, 3, 9, 9))
        d = file_dispute(s, agent, cfg, "c1", "客户最后说了谢谢，情绪应为positive", {"sentiment": "positive"},
                         now=sh(2026, 3, 6, 20))
    assert d["status"] == "open" and d["level"] == 1
    assert datetime.fromisoformat(d["due_at"]) == sh(2026, 3, 13, 23, 59, 59)  # 5 working days
    with session(engine, write=True) as s, pytest.raises(Conflict, match="already disputed"):
        file_dispute(s, agent, cfg, "c1", "again", now=sh(2026, 3, 6, 21))

    with session(engine) as s:  # overdue once the deadline passes unanswered
        assert list_disputes(s, u["rev"], overdue=True, now=sh(2026, 3, 13, 23)) == []
        [late] = list_disputes(s, u["rev"], overdue=True, now=sh(2026, 3, 14, 0, 1))
        assert late["id"] == d["id"] and late["overdue"]
        assert build_queue(s, u["rev"], now=sh(2026, 3, 14, 0, 1))["items"][0]["overdue"] is True

    with session(engine, write=True) as s:
        with pytest.raises(Invalid, match="differ"):
            answer_dispute(s, u["rev"], cfg, d["id"], "overturned", "same labels", {}, version=1,
                           now=sh(2026, 3, 10, 10))
        with pytest.raises(Forbidden):
            answer_dispute(s, agent, cfg, d["id"], "upheld", "mine", version=1, now=sh(2026, 3, 10, 10))
        d = answer_dispute(s, u["rev"], cfg, d["id"], "overturned", "客户结尾致谢，改为neutral",
                           {"sentiment": "neutral"}, version=1, now=sh(2026, 3, 10, 10))
    assert d["status"] == "answered" and not d["overdue"]
    assert datetime.fromisoformat(d["escalate_until"]) == sh(2026, 3, 17, 23, 59, 59)
    with session(engine) as s:  # the overturn is the conversation's reviewed label now
        view = item(s, agent, "c1")
        assert view["task"]["final_labels"]["sentiment"] == "neutral"
        assert view["task"]["final_source"] == "dispute" and view["task"]["final_by"] is None

    with session(engine, write=True) as s:
        with pytest.raises(Conflict, match="changed since you loaded"):
            escalate(s, agent, cfg, d["id"], "stale", version=1, now=sh(2026, 3, 16, 9))
        d = escalate(s, agent, cfg, d["id"], "客户明确表示感谢，应为positive", version=d["version"],
                     now=sh(2026, 3, 16, 9))
    assert (d["status"], d["level"]) == ("escalated", 2)
    assert datetime.fromisoformat(d["due_at"]) == sh(2026, 3, 23, 23, 59, 59)
    with session(engine) as s:  # leads see escalated disputes in their queue, reviewers do not
        assert build_queue(s, u["lead1"], now=sh(2026, 3, 16, 10))["items"][0]["dispute_id"] == d["id"]
        assert all(e["kind"] != "dispute" for e in build_queue(s, u["rev"], now=sh(2026, 3, 16, 10))["items"])

    with session(engine, write=True) as s:
        with pytest.raises(Forbidden, match="lead or admin"):
            answer_dispute(s, u["rev"], cfg, d["id"], "upheld", "x", version=d["version"], now=sh(2026, 3, 17, 9))
        d = answer_dispute(s, u["lead2"], cfg, d["id"], "overturned", "同意申诉", {"sentiment": "positive"},
                           version=d["version"], now=sh(2026, 3, 17, 9))
    assert d["status"] == "final" and d["closed_at"] and [a["level"] for a in d["answers"]] == [1, 2]
    with session(engine, write=True) as s:
        with pytest.raises(Conflict, match="once"):
            escalate(s, agent, cfg, d["id"], "again", version=d["version"], now=sh(2026, 3, 17, 10))
        assert item(s, agent, "c1")["task"]["final_labels"]["sentiment"] == "positive"
        trail = [e["action"] for e in reversed(audit.entries(s, conversation_id="c1"))]
    assert trail == ["dispute.filed", "dispute.saved", "dispute.answered", "dispute.escalated", "dispute.saved",
                     "dispute.answered"]


def test_second_level_needs_another_person_and_the_window_closes(engine):
    cfg = ReviewConfig()
    load(engine, [("c1", "a-1", 0.9), ("c2", "a-1", 0.9)], now=T0)
    u = users(engine, ("a-1", "agent", None), ("lead", "lead", None))
    with session(engine, write=True) as s:
        d1 = file_dispute(s, u["a-1"], cfg, "c1", "wrong", now=T0 + timedelta(hours=1))
        d2 = file_dispute(s, u["a-1"], cfg, "c2", "wrong too", now=T0 + timedelta(hours=1))
        d1 = answer_dispute(s, u["lead"], cfg, d1["id"], "upheld", "标签正确", version=1, now=T0 + timedelta(days=1))
        d2 = answer_dispute(s, u["lead"], cfg, d2["id"], "upheld", "标签正确", version=1, now=T0 + timedelta(days=1))
        d1 = escalate(s, u["a-1"], cfg, d1["id"], "please look again", version=d1["version"],
                      now=T0 + timedelta(days=2))
        with pytest.raises(Forbidden, match="someone other"):
            answer_dispute(s, u["lead"], cfg, d1["id"], "upheld", "still right", version=d1["version"],
                           now=T0 + timedelta(days=3))
        # Tue 3 March answer + 5 working days = Tue 10 March; after that the dispute is final
        later = sh(2026, 3, 11, 9)
        [final] = [x for x in list_disputes(s, u["a-1"], now=later) if x["id"] == d2["id"]]
        assert final["status"] == "final"
        with pytest.raises(Invalid, match="too late"):
            escalate(s, u["a-1"], cfg, d2["id"], "late", version=d2["version"], now=later)


def test_agent_accepts_the_answer(engine):
    cfg = ReviewConfig()
    load(engine, [("c1", "a-1", 0.9)], now=T0)
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None))
    with session(engine, write=True) as s:
        d = file_dispute(s, u["a-1"], cfg, "c1", "wrong", now=T0)
        d = answer_dispute(s, u["rev"], cfg, d["id"], "upheld", "ok", version=1, now=T0)
        d = accept(s, u["a-1"], d["id"], version=d["version"], now=T0)
    assert d["status"] == "final"


def test_parallel_filings_make_one_dispute(engine):
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from kefuqa.labeling.models import Dispute

    cfg = ReviewConfig(file_days=None)
    load(engine, [("c1", "a-1", 0.9)], now=T0)
    agent = users(engine, ("a-1", "agent", None))["a-1"]

    def file(i: int) -> str:
        try:
            with session(engine, write=True) as s:
                file_dispute(s, agent, cfg, "c1", f"reason {i}", now=T0)
            return "filed"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(file, range(20)))
    assert outcomes.count("filed") == 1 and outcomes.count("conflict") == 19
    with session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Dispute)) == 1


def test_a_reviewer_cannot_overturn_a_lead_adjudication_through_a_dispute(engine):
    from kefuqa.labeling.reviews import save_review, task_of

    cfg = ReviewConfig(file_days=None)
    load(engine, [("c1", "a-1", 0.9)], now=T0)
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None), ("boss", "lead", None),
              ("boss2", "lead", None))
    labels = {"politeness": "poor", "emotional_control": "fair", "resolution": "resolved", "sentiment": "neutral"}
    with session(engine, write=True) as s:
        task = task_of(s, "c1")
        save_review(s, u["boss"], "c1", labels, version=task.version if task else 0, now=T0)
        task_of(s, "c1").final_source = "adjudication"  # as after a lead settled two reviewers' disagreement
    with session(engine, write=True) as s:
        d = file_dispute(s, u["a-1"], cfg, "c1", "我没有不礼貌", now=T0)
    with pytest.raises(Forbidden, match="only a lead can overturn"), session(engine, write=True) as s:
        answer_dispute(s, u["rev"], cfg, d["id"], "overturned", "同意申诉", labels={"politeness": "good"},
                       version=d["version"], now=T0)
    with session(engine, write=True) as s:  # upholding stays open to the reviewer, and another lead may overturn
        answer_dispute(s, u["boss2"], cfg, d["id"], "overturned", "同意申诉", labels={"politeness": "good"},
                       version=d["version"], now=T0)


def test_notes_are_stored_with_pii_masked_in_the_store_and_the_audit_log(engine):
    from kefuqa.labeling.reviews import save_review, task_of

    cfg = ReviewConfig(file_days=None)
    load(engine, [("c1", "a-1", 0.9)], now=T0)
    u = users(engine, ("a-1", "agent", None), ("rev", "reviewer", None), ("rev2", "reviewer", None))
    labels = {"politeness": "good", "emotional_control": "good", "resolution": "resolved", "sentiment": "neutral"}
    with session(engine, write=True) as s:
        task = task_of(s, "c1")
        save_review(s, u["rev"], "c1", labels, version=task.version if task else 0, comment="客户电话13812345678",
                    now=T0)
        d = file_dispute(s, u["a-1"], cfg, "c1", "我的卡号6222021234567890123 不对", now=T0)
    with session(engine, write=True) as s:
        answer_dispute(s, u["rev2"], cfg, d["id"], "upheld", "身份证110105199003071234已核对", version=d["version"],
                       now=T0)
    with session(engine) as s:
        stored = " ".join(str(e) for e in audit.entries(s, conversation_id="c1"))
        view = item(s, u["rev"], "c1")
    text = stored + str(view)
    for raw in ("13812345678", "6222021234567890123", "110105199003071234"):
        assert raw not in text
    assert "[手机号]" in stored and "[银行卡号]" in stored and "[身份证号]" in stored

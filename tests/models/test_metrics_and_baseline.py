from __future__ import annotations

import pytest

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.metrics import response_times
from tests.conftest import conv


def c(turns, **kw) -> Conversation:
    return Conversation.model_validate(conv("c-1", turns, **kw))


def t(speaker, text, ts=None):
    d = {"speaker": speaker, "text": text}
    if ts:
        d["ts"] = f"2026-03-01T10:{ts}+08:00"
    return d


def test_response_times_from_timestamps():
    times = response_times(c([
        t("customer", "在吗", "00:00"),
        t("customer", "快递怎么还没到", "00:10"),  # still the same wait
        t("system", "[自动回复] 客服马上来", "00:01"),  # robots neither answer nor wait
        t("agent", "亲，在的", "00:30"),
        t("customer", "单号多少", "01:00"),
        t("agent", "您稍等", "03:00"),
        t("agent", "查到了", "03:30"),
    ]))
    assert times.first_response_s == 30.0
    assert times.avg_response_s == 75.0
    assert times.longest_wait_s == 120.0
    assert times.duration_s == 210.0


def test_response_times_without_timestamps_are_none():
    times = response_times(c([t("customer", "在吗"), t("agent", "在的")]))
    assert times == type(times)(None, None, None, None)


def test_partial_timestamps_use_what_is_there():
    times = response_times(c([t("customer", "在吗", "00:00"), t("agent", "在的"),
                              t("customer", "好", "00:05"), t("agent", "嗯", "00:25")]))
    assert times.first_response_s == 20.0 and times.avg_response_s == 20.0


@pytest.fixture(scope="module")
def engine() -> RulesEngine:
    return RulesEngine()


def test_records_follow_the_score_contract(engine):
    record = engine.score(c([
        t("customer", "我电话是[手机号]，东西坏了", "00:00"),
        t("agent", "您好，非常抱歉给您添麻烦了，已为您安排补发", "00:20"),
        t("customer", "好的谢谢", "00:40"),
        t("agent", "不客气，祝您生活愉快", "00:50"),
    ]))
    parsed = ScoreRecord.model_validate(record)
    for name, dist in parsed.probs.items():
        assert abs(sum(dist.values()) - 1) < 1e-3
        assert parsed.labels.model_dump()[name] == max(dist, key=dist.get)
    assert parsed.metrics.agent_turns == 2 and parsed.metrics.first_response_s == 20.0
    assert parsed.metrics.polite_phrase_rate == 1.0 and parsed.metrics.taboo_hits == 0
    assert [tt.index for tt in parsed.turns] == [0, 2]
    assert parsed.labels.politeness == "good" and parsed.labels.sentiment == "positive"


def test_evidence_points_at_the_characters_shown(engine):
    text = "这個我不知道，你自己看"
    record = engine.score(c([t("customer", "怎么用"), t("agent", text)]))
    taboo = [e for e in record["evidence"] if e["rule"].startswith("taboo.")]
    assert {(e["text"], text[e["start"]:e["end"]]) for e in taboo} == {("不知道", "不知道"), ("你自己看", "你自己看")}
    assert record["labels"]["politeness"] == "poor" and record["metrics"]["taboo_hits"] == 2


def test_obvious_cases(engine):
    rude = engine.score(c([t("customer", "怎么还没发货？？？"), t("agent", "爱买不买，跟我说没用"),
                           t("customer", "什么态度，差评！")]))
    assert rude["labels"]["politeness"] == "poor"
    assert rude["labels"]["emotional_control"] == "poor"
    assert rude["labels"]["sentiment"] == "negative"
    esc = engine.score(c([t("customer", "洗衣机坏了"), t("agent", "您好，已经为您提交维修工单，师傅24小时内联系您"),
                          t("customer", "行吧")]))
    assert esc["labels"]["resolution"] == "escalated" and esc["labels"]["sentiment"] == "neutral"

"""Call metrics on written call transcripts: silence, overlaps and interruptions, talk time,
holds and their etiquette, with their evidence (docs/phone-calls.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kefuqa.contract import Conversation, ScoreRecord
from kefuqa.models.call_cues import load_call_cues
from kefuqa.models.call_metrics import call_report

CUES = load_call_cues()


def call(*turns: tuple, cid: str = "call-1") -> Conversation:
    """Turns as (speaker, text) or (speaker, text, ts) or (speaker, text, ts, end_ts); times as
    seconds after 10:00:00 Shanghai time."""
    def at(s: float) -> str:
        minutes, seconds = divmod(s, 60)
        return f"2026-03-02T10:{int(minutes):02d}:{seconds:06.3f}+08:00"
    out = []
    for t in turns:
        turn = {"speaker": t[0], "text": t[1]}
        if len(t) > 2:
            turn["ts"] = at(t[2])
        if len(t) > 3:
            turn["end_ts"] = at(t[3])
        out.append(turn)
    return Conversation.model_validate({"id": cid, "agent_id": "a-1", "channel": "voice", "turns": out})


# A billing call with ASR start and end times: a 29.5 s hold announced and thanked, and the
# agent cutting in 2 s before the customer finished.
TIMED = call(
    ("system", "[IVR] 您好 欢迎致电客服热线 人工服务请按零", 0, 10),
    ("system", "[等待音乐 10秒]"),
    ("agent", "您好 很高兴为您服务 请问有什么可以帮您", 20, 24),
    ("customer", "我上个月的话费多扣了五十块 你们怎么回事", 25, 31),
    ("agent", "好的 我帮您查一下 请您稍等", 31.5, 34),
    ("agent", "感谢您的耐心等待 查到了 是重复扣费 已经给您退回了", 64, 72),
    ("customer", "那这个钱什么时候到账 我是想问", 73, 80),
    ("agent", "三个工作日内到账", 78, 81),
    ("customer", "好的 谢谢你啊", 82, 84),
    ("agent", "不客气 祝您生活愉快 再见", 84.5, 87),
)


def test_timed_call_metrics():
    m = call_report(TIMED, CUES).metrics
    # Silences of 1 s and more from the agent's first turn (20 s) to the end (87 s):
    # 1 (24→25) + 30 (34→64) + 1 (72→73) + 1 (81→82) = 33 s of 67 s.
    assert m["silence_share"] == pytest.approx(33 / 67, abs=1e-4)
    assert m["longest_silence_s"] == 30.0
    assert (m["overlaps"], m["interruptions"]) == (1, 1)
    # Agent 4 + 2.5 + 8 + 3 + 2.5 = 20 s, customer 6 + 7 + 2 = 15 s.
    assert m["talk_ratio"] == pytest.approx(20 / 15, abs=1e-3)
    assert (m["hold_events"], m["holds_unannounced"], m["holds_unthanked"], m["hold_etiquette"]) == (1, 0, 0, 1.0)


def test_timed_call_evidence_points_at_the_words():
    ev = call_report(TIMED, CUES).evidence
    rules = [(e["rule"], e["turn"], e["text"]) for e in ev]
    assert ("call.hold_announced", 4, "我帮您查") in rules
    assert ("call.hold_thanked", 5, "感谢您的耐心") in rules
    assert ("call.interruption", 7, "三个工作日内到账") in rules
    for e in ev:  # offsets index the turn text as the reviewer sees it
        assert TIMED.turns[e["turn"]].text[e["start"] : e["end"]] == e["text"]


def test_unannounced_hold_marked_by_the_system_is_evidence_against_the_agent():
    conv = call(
        ("agent", "您好 请讲"),
        ("customer", "我的快递五天了还没到 单号是幺二三四五"),
        ("agent", "嗯"),
        ("system", "[静音 45秒]"),
        ("agent", "查到了 明天到"),
        ("customer", "哦 好吧"),
    )
    r = call_report(conv, CUES)
    assert (r.metrics["hold_events"], r.metrics["holds_unannounced"], r.metrics["holds_unthanked"]) == (1, 1, 1)
    assert r.metrics["hold_etiquette"] == 0.0
    assert r.metrics["silence_share"] is None  # no timestamps: no call length
    assert r.metrics["longest_silence_s"] == 45.0
    assert [(e["rule"], e["turn"]) for e in r.evidence] == [("call.hold_unannounced", 3), ("call.hold_unthanked", 4)]


def test_long_gap_between_timestamps_is_a_hold_without_a_marker():
    conv = call(
        ("agent", "您好 请问有什么可以帮您", 0),
        ("customer", "我想改一下收货地址", 4),
        ("agent", "好", 8),
        ("agent", "地址改好了", 70),  # "好" takes 1/4.5 s: 61.8 s of silence
        ("customer", "谢谢", 73),
    )
    m = call_report(conv, CUES).metrics
    assert (m["hold_events"], m["holds_unannounced"], m["holds_unthanked"]) == (1, 1, 1)
    assert m["longest_silence_s"] == 61.8


def test_the_queue_before_the_agent_and_the_customers_own_pause_are_no_holds():
    conv = call(
        ("system", "[转人工 等待 40秒]"),
        ("agent", "您好 请问有什么可以帮您"),
        ("customer", "我要查一下订单 你等一下啊 我找一下单号"),
        ("system", "[静音 30秒]"),
        ("customer", "找到了 幺二三四"),
        ("agent", "好的 查到了"),
    )
    m = call_report(conv, CUES).metrics
    assert (m["hold_events"], m["hold_etiquette"]) == (0, None)
    assert m["longest_silence_s"] == 30.0  # still a silence, only not the agent's hold


def test_cut_off_turn_without_end_times_counts_as_an_interruption():
    conv = call(
        ("agent", "您好 请问有什么可以帮您"),
        ("customer", "我想问一下那个退款的……"),
        ("agent", "您是要退款吧 我看一下"),
        ("customer", "对 你先听我说完——"),
        ("customer", "是上周买的"),
    )
    m = call_report(conv, CUES).metrics
    # The second cut-off is followed by the customer themself: no speaker change, no overlap.
    assert (m["overlaps"], m["interruptions"]) == (1, 1)
    assert m["talk_ratio"] is not None and m["silence_share"] is None


def test_customer_cutting_in_is_an_overlap_but_no_interruption():
    conv = call(
        ("agent", "您好 您的退款已经提交了 预计三个工作日", 0, 6),
        ("customer", "三个工作日太久了", 4.5, 7),
    )
    m = call_report(conv, CUES).metrics
    assert (m["overlaps"], m["interruptions"]) == (1, 0)


def test_end_ts_is_a_compatible_extension_of_the_transcript():
    conv = call(("agent", "您好", 0, 1.5), ("customer", "你好"))
    dumped = conv.model_dump(mode="json")
    assert "end_ts" in dumped["turns"][0] and "end_ts" not in dumped["turns"][1]
    assert Conversation.model_validate(dumped) == conv
    with pytest.raises(ValidationError, match="end_ts .* is before ts"):
        call(("agent", "您好", 5, 4))


def test_call_metrics_stay_out_of_chat_records():
    base = {"id": "c", "agent_id": "a", "model": {"name": "m", "version": "1"},
            "labels": {"politeness": "good", "emotional_control": "good", "resolution": "resolved",
                       "sentiment": "positive"},
            "probs": {"politeness": {"good": 1, "fair": 0, "poor": 0},
                      "emotional_control": {"good": 1, "fair": 0, "poor": 0},
                      "resolution": {"resolved": 1, "escalated": 0, "unresolved": 0},
                      "sentiment": {"positive": 1, "neutral": 0, "negative": 0}},
            "turns": [], "evidence": [],
            "metrics": {"agent_turns": 1, "first_response_s": None, "avg_response_s": None,
                        "polite_phrase_rate": 1.0, "taboo_hits": 0}}
    chat = ScoreRecord.model_validate(base).model_dump(mode="json")
    assert "silence_share" not in chat["metrics"] and "role_flags" not in chat
    voice = ScoreRecord.model_validate({**base, "channel": "voice", "role_flags": [],
                                        "metrics": {**base["metrics"], **call_report(TIMED, CUES).metrics}})
    dumped = voice.model_dump(mode="json")
    assert dumped["role_flags"] == [] and dumped["metrics"]["hold_events"] == 1

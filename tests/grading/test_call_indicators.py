"""The call indicators (silence share, interruptions, hold etiquette): counted on calls only,
absent for chat-only agents, and grades per channel or combined as the rubric says; through
the library, the `kefuqa grade` command and the JSON endpoint on a real server."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from importlib import resources

import httpx
import pytest
from fastapi import FastAPI
from gradingsim import GOOD, record
from test_grading_api import _serve

from kefuqa.grading.api import GradingSource, make_router
from kefuqa.grading.channels import channel_datasets, only_channel
from kefuqa.grading.cli import register
from kefuqa.grading.dataset import build_dataset
from kefuqa.grading.errors import InputError
from kefuqa.grading.grades import grade_all
from kefuqa.grading.inputs import RosterEntry
from kefuqa.grading.rubric import INSUFFICIENT, load_rubric, parse_rubric

RUBRIC = load_rubric()
CALL_KEYS = ("silence_share", "interruption_rate", "hold_etiquette")


def call(cid: str, agent: str, day: int, *, silence: float, interruptions: int, etiquette: float | None):
    data = record(cid, agent, f"2026-03-{day:02d}T10:00:00+08:00", GOOD).model_dump(mode="json")
    data["channel"] = "voice"
    data["metrics"].update(silence_share=silence, longest_silence_s=30.0, overlaps=interruptions,
                           interruptions=interruptions, talk_ratio=1.2, hold_events=0 if etiquette is None else 1,
                           holds_unannounced=0, holds_unthanked=0, hold_etiquette=etiquette)
    data["role_flags"] = []
    return type(record("x", "x", None)).model_validate(data)


def records():
    """Agent ``chatty`` has 40 chats; ``caller`` 40 calls; ``mixed`` 20 chats and 20 calls."""
    out = [record(f"ch-{i}", "chatty", f"2026-03-{1 + i % 28:02d}T10:00:00+08:00") for i in range(40)]
    out += [call(f"ca-{i}", "caller", 1 + i % 28, silence=0.10, interruptions=int(i % 4 == 0),
                 etiquette=None if i % 2 else 1.0) for i in range(40)]
    out += [record(f"mc-{i}", "mixed", f"2026-03-{1 + i % 28:02d}T10:00:00+08:00") for i in range(20)]
    out += [call(f"mv-{i}", "mixed", 1 + i % 28, silence=0.30, interruptions=1, etiquette=0.0) for i in range(20)]
    return out


def dataset():
    recs = records()
    roster = [RosterEntry(a, "t1", None) for a in sorted({r.agent_id for r in recs})]
    return build_dataset(recs, roster, tz=RUBRIC.tz)


def row(report, agent):
    return next(r for r in report.agents if r.agent_id == agent and r.period == "2026-03")


def indicator(r, key):
    return next(v for v in r.indicators if v.key == key)


def test_call_indicators_count_calls_only():
    report = grade_all(dataset(), RUBRIC)
    chatty, caller, mixed = row(report, "chatty"), row(report, "caller"), row(report, "mixed")
    assert all(indicator(chatty, k).n == 0 and indicator(chatty, k).value is None for k in CALL_KEYS)
    assert chatty.group_scores["call_handling"] is None
    assert indicator(caller, "silence_share").value == pytest.approx(0.10)
    assert indicator(caller, "interruption_rate").value == pytest.approx(0.25)  # 10 of 40 calls
    assert (indicator(caller, "hold_etiquette").n, indicator(caller, "hold_etiquette").value) == (20, 1.0)
    assert indicator(mixed, "silence_share").n == 20  # the 20 calls, not the 20 chats
    assert indicator(mixed, "polite_rate").n == 40  # chat indicators count every conversation
    assert mixed.group_scores["call_handling"] == pytest.approx(0.0)


def test_a_chat_only_agent_is_graded_as_without_the_call_group():
    without = dataclasses.replace(RUBRIC, groups=tuple(g for g in RUBRIC.groups if g.key != "call_handling"))
    data = dataset()
    assert row(grade_all(data, RUBRIC), "chatty").score == pytest.approx(row(grade_all(data, without), "chatty").score)
    assert row(grade_all(data, RUBRIC), "mixed").score < row(grade_all(data, without), "mixed").score


def test_per_channel_grades_chats_and_calls_apart():
    rubric = dataclasses.replace(RUBRIC, grade_channels="per_channel")
    parts = dict(channel_datasets(dataset(), rubric))
    assert set(parts) == {"chat", "voice"}
    voice, chat = grade_all(parts["voice"], rubric), grade_all(parts["chat"], rubric)
    assert row(voice, "caller").graded and row(voice, "chatty").n_conversations == 0
    assert (row(voice, "mixed").n_conversations, row(voice, "mixed").grade) == (20, INSUFFICIENT)
    assert row(chat, "chatty").graded and indicator(row(chat, "caller"), "polite_rate").n == 0
    assert channel_datasets(dataset(), RUBRIC)[0][0] is None  # combined: one dataset
    with pytest.raises(InputError, match="unknown channel 'fax'"):
        only_channel(dataset(), "fax")


@pytest.mark.parametrize(("change", "words"), [
    ({"channels": []}, "channels must name chat, voice or both"),
    ({"channels": ["fax"]}, "Input should be 'chat' or 'voice'"),
])
def test_bad_channels_in_a_rubric_say_where(change, words):
    data = {"groups": [{"key": "g", "name": "g", "weight": 1, "indicators": [
        {"key": "i", "name": "i", "source": {"metric": "silence_share"}, "scale": {"zero": 0.3, "full": 0.0},
         **change}]}]}
    with pytest.raises(InputError, match=words) as info:
        parse_rubric(data, "mine.yaml")
    assert "groups.0.indicators.0.channels" in str(info.value)


def _files(tmp_path, per_channel: bool):
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n" for r in records()),
                      encoding="utf-8")
    roster = tmp_path / "roster.csv"
    roster.write_text("agent_id,team,hire_date\nchatty,t1,\ncaller,t1,\nmixed,t1,\n", encoding="utf-8")
    rubric = tmp_path / "rubric.yaml"
    default = resources.files("kefuqa.grading").joinpath("default_rubric.yaml").read_text("utf-8")
    mode = "per_channel" if per_channel else "combined"
    rubric.write_text(default.replace("grade_channels: combined", f"grade_channels: {mode}"), encoding="utf-8")
    return scores, roster, rubric


def test_grade_command_writes_a_report_per_channel(tmp_path, capsys):
    scores, roster, rubric = _files(tmp_path, per_channel=True)
    parser = argparse.ArgumentParser(prog="kefuqa")
    register(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["grade", str(scores), "--roster", str(roster), "--rubric", str(rubric),
                              "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "[chat]" in printed and "[voice]" in printed
    with (out / "voice" / "grades.csv").open(encoding="utf-8-sig", newline="") as fh:
        voice = {r["agent_id"]: r for r in csv.DictReader(fh)}
    assert voice["caller"]["grade"] != INSUFFICIENT and voice["mixed"]["grade"] == INSUFFICIENT
    assert (out / "chat" / "grades.csv").exists() and not (out / "grades.csv").exists()


def test_grades_endpoint_takes_a_channel(tmp_path):
    scores, roster, rubric = _files(tmp_path, per_channel=True)
    app = FastAPI()
    app.include_router(make_router(GradingSource(scores=scores, roster=roster, rubric=rubric)))
    for base in _serve(app):
        r = httpx.get(f"{base}/v1/agents/caller/grades", timeout=60)
        assert r.status_code == 422 and "give channel=chat or channel=voice" in r.text
        r = httpx.get(f"{base}/v1/agents/caller/grades", params={"channel": "voice"}, timeout=60)
        assert r.status_code == 200
        period = r.json()["periods"][0]
        assert period["graded"] and {v["key"]: v["n"] for v in period["indicators"]}["silence_share"] == 40
        assert httpx.get(f"{base}/v1/agents/caller/grades", params={"channel": "fax"}, timeout=60).status_code == 422

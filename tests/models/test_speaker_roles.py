"""The speaker-role check on written calls: flags with probabilities, flagged turns scored as
said by the likely speaker (rules and model), the call steps on every engine ``create_engine``
makes, chats untouched, and the role model that fits the engine's encoder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from kefuqa.contract import Conversation, ModelInfo, ScoreRecord
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.call_cues import load_call_cues
from kefuqa.models.call_engine import with_calls
from kefuqa.models.engine import EngineError, create_engine
from kefuqa.models.speaker_roles import (
    ROLE_FILE,
    RoleChecker,
    default_role_file,
    read_role_file,
    role_model_for,
    with_speakers,
)

CUES = load_call_cues()

# The diariser gave the customer's outburst (turn 3) to the agent and the agent's greeting
# (turn 0) to the customer; "好的" (turn 4) could be either.
SWAPPED = [
    ("customer", "您好 这里是通信客服 很高兴为您服务 请问有什么可以帮您"),
    ("customer", "我家宽带从早上就断了 到现在都没修好"),
    ("agent", "好的 我帮您查一下 请您稍等"),
    ("agent", "你们这什么破服务 我要投诉你们 说了多少遍了你听不懂吗"),
    ("customer", "好的"),
    ("agent", "非常抱歉给您添麻烦了 师傅今天下午上门 还有其他可以帮您的吗"),
]


def conv(turns: list[tuple[str, str]], channel: str = "voice", cid: str = "call-1") -> Conversation:
    return Conversation.model_validate({"id": cid, "agent_id": "a-1", "channel": channel,
                                        "turns": [{"speaker": s, "text": t} for s, t in turns]})


def test_rule_cues_flag_the_swapped_turns_with_a_probability():
    checker = RoleChecker(CUES, role_model_for(None, None))
    flags = {f["turn"]: f for f in checker.flags(conv(SWAPPED))}
    assert set(flags) == {0, 3}
    assert flags[0]["likely_speaker"] == "agent" and flags[3]["likely_speaker"] == "customer"
    assert all(checker.model.threshold <= f["p"] <= 1 for f in flags.values())
    p = checker.p_agent(conv(SWAPPED))
    assert 0.3 < p[4] < 0.7  # "好的": no side's cue


def test_flagged_turns_do_not_count_against_the_agent():
    swapped = conv(SWAPPED)
    bare = RulesEngine().score_batch([swapped])[0]
    assert bare["labels"]["politeness"] == "poor"  # the customer's "你听不懂吗" as the agent's taboo
    assert any(e["turn"] == 3 and e["rule"].startswith("taboo.") for e in bare["evidence"])
    record = with_calls(RulesEngine()).score_batch([swapped])[0]
    assert record["labels"]["politeness"] != "poor"
    assert not any(e["turn"] == 3 and e["rule"].startswith("taboo.") for e in record["evidence"])
    assert [(f["turn"], f["likely_speaker"]) for f in record["role_flags"]] == [(0, "agent"), (3, "customer")]
    assert 3 in {t["index"] for t in record["turns"]}  # its anger is the customer's sentiment now
    ScoreRecord.model_validate(record)


def test_chats_pass_through_untouched_and_calls_get_their_metrics():
    chat = conv(SWAPPED, channel="chat", cid="chat-1")
    assert with_calls(RulesEngine()).score_batch([chat]) == RulesEngine().score_batch([chat])
    engine = create_engine("rules")
    call_rec, chat_rec = engine.score_batch([conv(SWAPPED), chat])
    assert "role_flags" not in chat_rec and "hold_events" not in chat_rec["metrics"]
    assert call_rec["role_flags"] and call_rec["metrics"]["hold_events"] == 0
    assert call_rec["metrics"]["talk_ratio"] is not None
    assert engine.info == RulesEngine().info


def test_with_speakers_copies():
    original = conv(SWAPPED)
    fixed = with_speakers(original, [{"turn": 3, "likely_speaker": "customer", "p": 0.99}])
    assert fixed.turns[3].speaker == "customer" and original.turns[3].speaker == "agent"
    assert with_speakers(original, []) is original


def test_role_model_for_a_model_fits_its_encoder(tmp_path, caplog):
    shipped = read_role_file(default_role_file())
    own = role_model_for(shipped.encoder, None)
    assert own.uses_embedding and own.n_features == 384 + 2
    with caplog.at_level(logging.WARNING, "kefuqa.roles"):
        other = role_model_for(ModelInfo(name="kefu-e5-small-zh", version="2099.01.01-retrained"), tmp_path)
    assert not other.uses_embedding and "Run `kefuqa roles train`" in caplog.text
    (tmp_path / ROLE_FILE).write_text(default_role_file().read_text(encoding="utf-8"), encoding="utf-8")
    assert role_model_for(ModelInfo(name="m", version="2099.01.01-retrained"), tmp_path).uses_embedding
    with pytest.raises(ValueError, match="takes 386 features per turn, got 10: it was fitted for another encoder"):
        own.p_agent(np.zeros((1, 10)))


def test_a_broken_role_file_stops_the_engine_with_the_file_named(tmp_path):
    bad = tmp_path / "registry" / "v1"
    bad.mkdir(parents=True)
    (bad / ROLE_FILE).write_text(json.dumps({"format": 1}), encoding="utf-8")

    class Fake:  # an engine with an encoder, as the neural one
        info = ModelInfo(name="m", version="v1")

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts), 384), np.float32)

    with pytest.raises(Exception, match=f"{bad / ROLE_FILE}: not a speaker-role model file"):
        with_calls(Fake(), home=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="unknown engine"):
        create_engine("fancy")


def _home() -> Path | None:
    home = Path(os.environ.get("KEFUQA_HOME", Path.home() / ".kefuqa"))
    return home if (home / "registry" / "champion.json").exists() else None


@pytest.mark.skipif(_home() is None, reason="no neural model installed in KEFUQA_HOME (kefuqa models build-default)")
def test_the_neural_engine_checks_roles_on_its_turn_embeddings():
    pytest.importorskip("onnxruntime")
    engine = create_engine("neural", home=_home())
    assert engine.checker.model.uses_embedding  # type: ignore[attr-defined]
    record = engine.score_batch([conv(SWAPPED)])[0]
    flagged = {f["turn"]: f["likely_speaker"] for f in record["role_flags"]}
    assert flagged.get(3) == "customer" and flagged.get(0) == "agent"
    assert record["labels"]["politeness"] != "poor"
    ScoreRecord.model_validate(record)


def test_call_records_written_as_jsonl_and_parquet(tmp_path):
    import pyarrow.parquet as pq

    from kefuqa.io.writers import ScoreOutputs
    from kefuqa.pipeline import to_records

    records = to_records(create_engine("rules").score_batch([conv(SWAPPED), conv(SWAPPED, "chat", "chat-1")]))
    jsonl, parquet = tmp_path / "scores.jsonl", tmp_path / "scores.parquet"
    for out in (jsonl, parquet):
        with ScoreOutputs(out, tmp_path / "rejects.jsonl") as outputs:
            outputs.write_records(records)
    call_line, chat_line = (json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines())
    assert [f["turn"] for f in call_line["role_flags"]] == [0, 3] and call_line["metrics"]["hold_events"] == 0
    assert "role_flags" not in chat_line and "talk_ratio" not in chat_line["metrics"]
    rows = pq.read_table(parquet).to_pylist()
    assert rows[0]["role_flags"] == call_line["role_flags"] and rows[1]["role_flags"] is None
    assert rows[0]["metrics"]["talk_ratio"] == call_line["metrics"]["talk_ratio"]
    assert rows[1]["metrics"]["talk_ratio"] is None
    assert pq.read_table(parquet).schema.names[-1] == "role_flags"  # after the others, readers by position unmoved


@pytest.mark.skipif(_home() is None, reason="no neural model installed in KEFUQA_HOME (kefuqa models build-default)")
def test_the_scoring_finds_the_role_checks_embeddings_in_the_cache():
    pytest.importorskip("onnxruntime")
    from kefuqa.models.neural.embedding_cache import new_cache

    cache = new_cache(10_000, 16)
    create_engine("neural", home=_home(), embedding_cache=cache).score_batch([conv(SWAPPED)])
    stats = cache.stats()
    assert stats.misses == len({t for _, t in SWAPPED}) and stats.hits == stats.misses  # each text embedded once


@pytest.mark.skipif(_home() is None, reason="no neural model installed in KEFUQA_HOME (kefuqa models build-default)")
def test_the_calls_of_a_batch_are_checked_in_one_encoder_pass_and_flag_as_they_do_alone():
    pytest.importorskip("onnxruntime")
    from tests.models.held_out import held_out_conversations

    held_out = held_out_conversations()
    calls = [c for c in held_out if c.channel == "voice"][:24]
    batch = calls[:12] + [c for c in held_out if c.channel == "chat"][:4] + calls[12:]
    engine = create_engine("neural", home=_home())
    alone = [engine.score_batch([c])[0] for c in batch]
    assert sum(bool(r.get("role_flags")) for r in alone) >= 1  # some call is flagged, so flags are compared
    checker = engine.checker  # type: ignore[attr-defined]
    embedded: list[list[str]] = []
    embed = checker.embed
    checker.embed = lambda texts: embedded.append(texts) or embed(texts)
    assert engine.score_batch(batch) == alone  # same flags, same labels, same probabilities
    turn_texts = {t.text for c in calls for t in c.turns}
    assert len(embedded) == 1 and len(embedded[0]) == len(set(embedded[0])) <= len(turn_texts)

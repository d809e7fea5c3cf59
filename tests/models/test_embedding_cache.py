"""The turn-embedding cache: its two bounds and counts, why a key can be the turn
text, and that scores are the same with it and without it — alone, in a
batch, in an archive (``kefuqa score``'s path), live turn by turn, and over HTTP,
where /metrics reports its hit rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from kefuqa.models.neural.embedding_cache import EmbeddingCache, new_cache
from kefuqa.models.neural.engine import NeuralEngine
from kefuqa.models.neural.features import conversation_texts
from kefuqa.pipeline import mask_conversation
from kefuqa.service.batch import EngineSpec, score_file
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker
from kefuqa.training.build_default import build_version, teacher_artifact
from kefuqa.training.dataset import load_corpus, outside_files
from tests.models.held_out import same_length_texts
from tests.service.conftest import rules_settings, serve

VEC = np.arange(4, dtype=np.float32)  # one turn embedding


def key(text: str) -> tuple[str, str]:
    return ("v1/encoder.int8.onnx", text)


def test_least_recently_used_texts_go_first_when_the_entries_are_full():
    cache = EmbeddingCache(max_entries=2, max_bytes=1 << 20)
    cache.put(key("a"), VEC)
    cache.put(key("b"), VEC)
    assert cache.get(key("a")) is not None  # now the most recently used
    cache.put(key("c"), VEC)
    assert cache.get(key("b")) is None
    assert cache.get(key("a")) is not None and cache.get(key("c")) is not None
    assert cache.stats().entries == 2


def test_the_memory_bound_holds_and_counts_vectors_and_texts():
    one = VEC.nbytes + sys.getsizeof("aa")
    cache = EmbeddingCache(max_entries=1000, max_bytes=2 * one + 10)
    for name in ("aa", "bb", "cc"):
        cache.put(key(name), VEC)
    stats = cache.stats()
    assert stats.bytes == 2 * one and stats.entries == 2
    assert cache.get(key("aa")) is None and cache.get(key("cc")) is not None


def test_a_vector_larger_than_the_memory_bound_is_not_kept():
    cache = EmbeddingCache(max_entries=10, max_bytes=VEC.nbytes)
    cache.put(key("a"), VEC)
    assert cache.get(key("a")) is None and cache.stats().entries == 0


def test_putting_a_text_again_replaces_it_without_growing():
    cache = EmbeddingCache(max_entries=10, max_bytes=1 << 20)
    cache.put(key("a"), VEC)
    cache.put(key("a"), VEC + 1)
    got = cache.get(key("a"))
    assert got is not None and np.array_equal(got, VEC + 1)
    assert cache.stats().entries == 1 and cache.stats().bytes == VEC.nbytes + sys.getsizeof("a")


def test_hits_and_misses_count_texts_and_cached_vectors_cannot_be_changed():
    cache = EmbeddingCache(max_entries=100, max_bytes=1 << 20)
    assert cache.get(key("a")) is None
    cache.put(key("a"), VEC)
    got = cache.get(key("a"))
    assert got is not None and np.array_equal(got, VEC)
    with pytest.raises(ValueError):
        got[0] = 1.0
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.hit_rate) == (1, 1, 0.5)
    cache.clear()
    assert cache.get(key("a")) is None and cache.stats().entries == 0


def test_a_zero_bound_means_no_cache():
    assert new_cache(0, 64) is None and new_cache(1000, 0) is None
    cache = new_cache(1000, 1.5)
    assert cache is not None and cache.max_bytes == int(1.5 * 2**20)
    with pytest.raises(ValueError, match="needs room"):
        EmbeddingCache(0, 100)


# ------------------------------------------------------------ with the shipped model
@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    build_version(home, teacher_artifact(), log=lambda *_: None)
    return home


@pytest.fixture(scope="module")
def model_dir(home) -> Path:
    return next((home / "registry").glob("2*"))


@pytest.fixture(scope="module")
def chats():
    """The held-out writers' conversations, masked as every door masks them."""
    return [mask_conversation(c, PiiMasker()) for c in load_corpus(outside_files())][:40]


def probs(engine: NeuralEngine, convs) -> list[dict]:
    return [r["probs"] | {"turns": r["turns"], "evidence": r["evidence"]} for r in engine.score_batch(convs)]


def test_a_text_vector_is_its_own_whatever_it_is_embedded_with(model_dir, chats):
    """Why a key can be the text. The shipped teacher's int8 takes its activation scale per
    call (``"int8_scales": "per_call"``: its head was trained against those vectors), so
    it embeds one text per call and refuses to share; a text then gets the same bits alone
    and among texts of its own token length. (Models with fixed scales share calls with
    the same guarantee: tests/models/test_distilled_model.py.)"""
    from kefuqa.models.neural.engine import OnnxEmbedder

    embed = OnnxEmbedder(model_dir)
    assert embed.micro_batch == 1
    same = same_length_texts(embed, chats)
    assert len(same) >= 4
    assert all(np.array_equal(embed([t])[0], v) for t, v in zip(same, embed(same)))
    with pytest.raises(ValueError, match="embeds one text per call, not micro_batch=8"):
        OnnxEmbedder(model_dir, micro_batch=8)


def test_scores_are_the_same_cached_and_uncached_alone_in_a_batch_and_in_an_archive(model_dir, chats):
    plain = NeuralEngine(model_dir)
    cache = EmbeddingCache(100_000, 64 << 20)
    cached = NeuralEngine(model_dir, cache=cache)
    alone = [probs(plain, [c])[0] for c in chats]
    assert probs(cached, chats) == alone  # cold: every text a miss
    cold = cache.stats()
    assert cold.misses > 0
    # Warm, in another order and other batches: every text a hit, the same scores.
    assert probs(cached, chats[::-1])[::-1] == alone
    assert [probs(cached, [c])[0] for c in chats] == alone
    warm = cache.stats()
    assert warm.misses == cold.misses and warm.hits >= 2 * cold.misses


def test_a_live_chat_resent_with_one_more_turn_embeds_far_fewer_texts(model_dir, chats):
    """Re-sent after every turn, a chat's earlier turns come from the cache: each distinct
    text is embedded once over the whole chat, where an engine without the cache embeds
    every text at every turn."""
    plain = NeuralEngine(model_dir)
    cache = EmbeddingCache(100_000, 64 << 20)
    cached = NeuralEngine(model_dir, cache=cache)
    chat = max(chats, key=lambda c: len(conversation_texts(c)))
    embedded = without_cache = 0
    seen: set[str] = set()
    for n in range(1, len(chat.turns) + 1):
        now = chat.model_copy(update={"turns": chat.turns[:n]})
        before = cache.stats().misses
        assert probs(cached, [now]) == probs(plain, [now])
        embedded += cache.stats().misses - before
        without_cache += len(conversation_texts(now))
        seen |= set(conversation_texts(now))
    assert embedded == len(seen) < without_cache / 2, (embedded, len(seen), without_cache)


def test_through_create_engine_a_voice_call_is_embedded_once_and_scored_the_same(home, chats):
    """Every door builds its engine with ``create_engine``, which puts the phone-call steps
    around it: the speaker-role check embeds a call's turns before the engine does. With the
    cache the engine finds those texts, so no text is embedded twice, and the records (role
    flags included) are the ones the uncached engine writes."""
    from kefuqa.models.engine import create_engine

    calls = [c for c in chats if c.channel == "voice"][:8]
    assert calls, "the held-out writers have voice calls"
    cache = EmbeddingCache(100_000, 64 << 20)
    cached = create_engine("neural", home=home, embedding_cache=cache)
    assert cached.score_batch(calls) == create_engine("neural", home=home).score_batch(calls)
    assert cache.stats().misses <= sum(len(conversation_texts(c)) for c in calls)


def test_kefuqa_score_writes_the_same_archive_with_and_without_the_cache(home, chats, tmp_path):
    archive = tmp_path / "archive.jsonl"
    again = [c.model_copy(update={"id": c.id + "-again"}) for c in chats[:10]]  # recurring chats
    rows = [c.model_dump(mode="json", exclude_none=True) for c in chats + again]
    archive.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    outputs = []
    for entries in (0, 50_000):
        out = tmp_path / f"scores-{entries}.jsonl"
        spec = EngineSpec("neural", home=home, cache_entries=entries, cache_mb=64.0)
        summary = score_file(archive, spec, Settings(home=home), output=out, progress=False)
        assert summary.scored == len(rows)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_metrics_report_the_embedding_cache_hit_rate(home, chats):
    settings = rules_settings(home=home, batch_max_size=1).model_copy(update={"engine": "neural"})
    chat = chats[0].model_dump(mode="json", exclude_none=True)
    for server in serve(settings):
        with server.client() as c:
            first = c.post("/v1/score", json=chat)
            again = c.post("/v1/score", json=chat)
        assert first.status_code == again.status_code == 200
        assert first.json()["probs"] == again.json()["probs"]
        metrics = httpx.get(server.url + "/metrics").text
        values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
                  if line.startswith("kefuqa_embedding_cache_")}
        assert values["kefuqa_embedding_cache_hits_total"] > 0
        assert values["kefuqa_embedding_cache_misses_total"] > 0
        hits, misses = values["kefuqa_embedding_cache_hits_total"], values["kefuqa_embedding_cache_misses_total"]
        assert values["kefuqa_embedding_cache_hit_ratio"] == pytest.approx(hits / (hits + misses))
        assert values["kefuqa_embedding_cache_entries"] > 0 and values["kefuqa_embedding_cache_bytes"] > 0

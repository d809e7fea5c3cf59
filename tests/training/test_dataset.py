"""The leakage filter's similarity: char 4-gram Jaccard, computed with sparse
products, against the set definition it stands for."""

from __future__ import annotations

from itertools import product

import pytest

from kefuqa.contract import Conversation
from kefuqa.training.dataset import _shingles, max_jaccard, split


def conv(cid: str, *texts: str) -> Conversation:
    turns = [{"speaker": "customer" if i % 2 == 0 else "agent", "text": t} for i, t in enumerate(texts)]
    return Conversation.model_validate({"id": cid, "agent_id": "a1", "channel": "chat", "turns": turns})


def jaccard(a: Conversation, b: Conversation) -> float:
    x, y = set(_shingles(a)), set(_shingles(b))
    return len(x & y) / len(x | y)


CONVS = [
    conv("a", "我的快递三天了还没到", "亲，这边帮您查一下物流"),
    conv("b", "我的快递四天了还没有到", "亲，这边帮您查一下物流哦"),
    conv("c", "退款什么时候到账", "一到三个工作日原路退回"),
    conv("d", "好"),  # shorter than one 4-gram: the whole text is its only shingle
]


def test_max_jaccard_is_the_set_definition():
    got = max_jaccard(CONVS, CONVS[1:3])
    for i, c in enumerate(CONVS):
        assert got[i] == pytest.approx(max(jaccard(c, r) for r in CONVS[1:3]))
    assert got[1] == got[2] == 1.0 and got[3] == 0.0
    assert 0.3 < got[0] < 1.0  # the same complaint reworded
    assert max_jaccard(CONVS, []).tolist() == [0.0] * 4
    assert all(max_jaccard([a], [b])[0] == pytest.approx(jaccard(a, b)) for a, b in product(CONVS, CONVS))


def test_split_drops_training_conversations_too_close_to_test_or_outside():
    outside = [conv("x", "退款什么时候到账啊", "一到三个工作日原路退回")]
    sp = split(CONVS, ["b"], max_similarity=0.5, also_avoid=outside)
    assert [c.id for c in sp.test] == ["b"]
    assert sp.dropped_near_duplicates == [c.id for c in CONVS if c.id != "b" and
                                          max(jaccard(c, r) for r in (CONVS[1], *outside)) > 0.5]
    assert "c" in sp.dropped_near_duplicates and "d" in [c.id for c in sp.train]

"""Augmented variants of a conversation depend on the conversation, the seed and the copy
number only: adding writers or reordering files leaves every other variant (and its cached
embeddings) as it was."""

from __future__ import annotations

from kefuqa.contract import Conversation
from kefuqa.training.augment import augment_corpus


def conv(cid: str, channel: str = "chat") -> Conversation:
    texts = ["我的快递三天了还没到，怎么回事", "亲，这边帮您查一下物流，请稍等", "好的谢谢", "不客气，祝您生活愉快"]
    turns = [{"speaker": "customer" if i % 2 == 0 else "agent", "text": t} for i, t in enumerate(texts)]
    return Conversation.model_validate({"id": cid, "agent_id": "a1", "channel": channel, "turns": turns})


def texts_by_id(convs: list[Conversation]) -> dict[str, list[str]]:
    return {c.id: [t.text for t in c.turns] for c in convs}


def test_variants_do_not_depend_on_the_rest_of_the_corpus() -> None:
    corpus = [conv(f"w1-{i:04d}") for i in range(30)]
    grown = [conv(f"w9-{i:04d}", "voice") for i in range(30)] + list(reversed(corpus))
    alone = texts_by_id(augment_corpus(corpus, copies=2, seed=7))
    together = texts_by_id(augment_corpus(grown, copies=2, seed=7))
    assert all(together[cid] == texts for cid, texts in alone.items())


def test_seed_and_copy_number_change_the_variants() -> None:
    corpus = [conv(f"w1-{i:04d}") for i in range(30)]
    first = texts_by_id(augment_corpus(corpus, copies=2, seed=7))
    other_seed = texts_by_id(augment_corpus(corpus, copies=2, seed=8))
    assert first != other_seed
    copies = [first[f"w1-{i:04d}~aug0"] != first[f"w1-{i:04d}~aug1"] for i in range(30)]
    assert any(copies)

"""What the bundled models' tests share: the held-out writers' conversations (the outside
set, never trained on), scored as every door scores them, and the checks each bundled
model's int8 build must pass against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kefuqa.contract import Conversation
from kefuqa.models.encoder.embed import Encoder
from kefuqa.models.neural.engine import QUERY_PREFIX, NeuralEngine, OnnxEmbedder
from kefuqa.models.neural.features import conversation_texts
from kefuqa.pipeline import mask_conversation
from kefuqa.text.pii import PiiMasker
from kefuqa.training.build_default import artifact_encoder
from kefuqa.training.dataset import load_corpus, outside_files
from kefuqa.training.evaluation import evaluate_predictions

LABEL_NAMES = ("politeness", "emotional_control", "resolution", "sentiment")


def held_out_conversations() -> list[Conversation]:
    """The held-out writers' conversations, masked as every door masks them."""
    return [mask_conversation(c, PiiMasker()) for c in load_corpus(outside_files())]


def score(engine: NeuralEngine, convs: list[Conversation]) -> list[dict]:
    return [r for i in range(0, len(convs), 32) for r in engine.score_batch(convs[i : i + 32])]


def assert_macro_f1_floor(convs: list[Conversation], records: list[dict]) -> None:
    reports = evaluate_predictions([c.labels.model_dump() for c in convs], [r["labels"] for r in records])
    for name, rep in reports.items():
        assert rep.macro_f1 >= 0.85, (name, rep.macro_f1)  # a floor on writers the model never saw


def assert_int8_agrees_with_fp32(model_dir: Path, artifact: Path, convs: list[Conversation],
                                 int8_records: list[dict], workdir: Path) -> None:
    """The int8 labels agree with the same model on its PyTorch fp32 encoder (rebuilt from
    ``artifact`` under ``workdir``) on >= 99% of ``convs``, per label."""
    encoder = Encoder(artifact_encoder(artifact, workdir))
    fp32 = NeuralEngine(model_dir, embedder=lambda texts: encoder.embed(texts, batch_size=64, max_length=128))
    fp32_records = score(fp32, convs)
    for name in LABEL_NAMES:
        agree = np.mean([a["labels"][name] == b["labels"][name] for a, b in zip(int8_records, fp32_records)])
        assert agree >= 0.99, (name, agree)


def same_length_texts(embed: OnnxEmbedder, chats: list[Conversation]) -> list[str]:
    """The largest group of distinct turn texts of the chats with one token length."""
    groups: dict[int, list[str]] = {}
    for text in sorted({t for c in chats for t in conversation_texts(c)}):
        groups.setdefault(len(embed.tokenizer.encode(QUERY_PREFIX + text).ids), []).append(text)
    return max(groups.values(), key=len)


def assert_scores_do_not_depend_on_the_batch(engine: NeuralEngine, convs: list[Conversation]) -> None:
    """Each conversation's probabilities are exactly the same alone, in a batch, and in a
    batch in reverse order."""
    alone = [engine.score_batch([c])[0]["probs"] for c in convs]
    batched = [r["probs"] for r in engine.score_batch(convs)]
    reversed_ = [r["probs"] for r in engine.score_batch(convs[::-1])][::-1]
    assert alone == batched == reversed_

"""The training corpus: hand-written conversations, a fixed test split that
training never sees, and near-duplicate control across the split."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kefuqa.contract import LABELS, Conversation
from kefuqa.io.readers import Reject, read_conversations

DATA_DIR = Path(__file__).resolve().parent / "data"
HAND_DIR = DATA_DIR / "hand"
# Writers whose work never enters training, augmentation or model selection: the
# outside set predicts quality on conversations nobody in the training corpus wrote.
OUTSIDE_DIR = DATA_DIR / "outside"
SPLIT_FILE = DATA_DIR / "split.json"


class CorpusError(Exception):
    pass


def load_corpus(paths: Iterable[Path]) -> list[Conversation]:
    convs: list[Conversation] = []
    for path in paths:
        for line, item in read_conversations(path):
            if isinstance(item, Reject):
                raise CorpusError(f"{path}:{line}: {item.reason}")
            if item.labels is None:
                raise CorpusError(f"{path}:{line}: training data needs 'labels'")
            convs.append(item)
    return convs


def hand_files() -> list[Path]:
    return sorted(HAND_DIR.glob("*.jsonl"))


def outside_files() -> list[Path]:
    return sorted(OUTSIDE_DIR.glob("*.jsonl"))


def is_outside(path: Path) -> bool:
    return path.resolve().parent == OUTSIDE_DIR


def writer_of(conv: Conversation) -> str:
    """The writer's tag: the id prefix before the first '-' (``w3-0042`` → ``w3``)."""
    return conv.id.split("-", 1)[0]


def rationale_of(conv: Conversation) -> dict[str, list[int]]:
    """The deciding turns per label (``rationale`` beside ``labels``), valid indexes only."""
    raw = (conv.model_extra or {}).get("rationale") or {}
    if not isinstance(raw, dict):
        return {}
    return {name: [i for i in turns if isinstance(i, int) and 0 <= i < len(conv.turns)]
            for name, turns in raw.items() if name in LABELS and isinstance(turns, list)}


def _shingles(conv: Conversation, k: int = 4) -> list[str]:
    text = "".join(t.text for t in conv.turns)
    return list({text[i : i + k] for i in range(max(len(text) - k + 1, 1))})


def max_jaccard(convs: Sequence[Conversation], references: Sequence[Conversation]) -> np.ndarray:
    """For each of ``convs``, its highest char 4-gram Jaccard similarity to any of
    ``references`` (0 without references). Sparse products, not pairwise set
    operations: 4,400 × 1,500 pairs took minutes in Python and take a second here."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not convs or not references:
        return np.zeros(len(convs))
    vec = CountVectorizer(analyzer=_shingles, binary=True, dtype=np.int32)
    x = vec.fit_transform([*convs, *references])
    a, b = x[: len(convs)], x[len(convs) :]
    both = (a @ b.T).toarray()
    union = np.asarray(a.sum(1)) + np.asarray(b.sum(1)).T - both
    return np.where(union > 0, both / np.maximum(union, 1), 0.0).max(axis=1)


@dataclass(frozen=True)
class Split:
    train: list[Conversation]
    test: list[Conversation]
    dropped_near_duplicates: list[str]


def make_test_ids(convs: Sequence[Conversation], test_fraction: float = 0.2) -> list[str]:
    """Deterministic: a conversation is in the test split when the hash of its id
    falls in the lowest ``test_fraction`` — stable as the corpus grows."""
    def bucket(cid: str) -> float:
        return int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return sorted(c.id for c in convs if bucket(c.id) < test_fraction)


def split(convs: Sequence[Conversation], test_ids: Iterable[str], max_similarity: float = 0.5,
          also_avoid: Sequence[Conversation] = ()) -> Split:
    """Train/test by the fixed id list; a training conversation too similar to
    any test conversation, or to any of ``also_avoid`` (the outside set), by char
    4-gram Jaccard, is dropped so it cannot leak."""
    test_set = set(test_ids)
    test = [c for c in convs if c.id in test_set]
    rest = [c for c in convs if c.id not in test_set]
    similar = max_jaccard(rest, [*test, *also_avoid]) > max_similarity
    train = [c for c, s in zip(rest, similar) if not s]
    dropped = [c.id for c, s in zip(rest, similar) if s]
    return Split(train, test, dropped)


def load_split_ids(path: Path = SPLIT_FILE) -> list[str]:
    return json.loads(path.read_text(encoding="utf-8"))["test_ids"]


def save_split_ids(ids: list[str], path: Path = SPLIT_FILE) -> None:
    path.write_text(json.dumps({"test_ids": ids}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")


def gold(conv: Conversation) -> dict[str, str]:
    """A labelled conversation's gold labels (``load_corpus`` refuses unlabelled ones)."""
    if conv.labels is None:
        raise CorpusError(f"{conv.id}: training and evaluation data need 'labels'")
    return conv.labels.model_dump()


def label_targets(convs: Sequence[Conversation]) -> np.ndarray:
    """[N, 4] class indices, labels in ``LABELS`` order (the heads' output order)."""
    return np.array([[LABELS[n].index(gold(c)[n]) for n in LABELS] for c in convs], dtype=np.int64)

"""``kefuqa distill``: the student's unlabelled pool, the teacher's vectors for it, the
distillation and the runnable student folder, in one command.

The pool is every turn of the training conversations (never the fixed test split or the
outside writers) and the augmented variants training makes of them, normalised as the
engine normalises turns. The teacher's fp32 vectors are read from, and added to, the same
embedding cache ``kefuqa train`` keeps for the teacher, so after a training run the
teacher costs nothing here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kefuqa.contract import Conversation
from kefuqa.models.neural.features import turn_text
from kefuqa.training.augment import augment_corpus
from kefuqa.training.distill import DistillConfig, build_student, distill


@dataclass
class DistillRun:
    out: Path  # adapters + student.json, and the runnable student in out/encoder
    cache: Path  # the teacher's fp32 embedding cache (kefuqa train's, for the same encoder and adapters)
    lora: Path | None  # the teacher's adapters
    variants: int = 3  # augmented variants per conversation, seeds as training's ensemble heads use
    seed: int = 13
    device: str = "cpu"


def pool_texts(convs: list[Conversation], variants: int, seed: int) -> list[str]:
    """Distinct normalised turn texts of ``convs`` and of their augmented variants."""
    every = list(convs)
    for k in range(variants):
        every += augment_corpus(convs, 1, seed + k)
    return list(dict.fromkeys(t for c in every for turn in c.turns if (t := turn_text(turn.text))))


def _training_conversations() -> list[Conversation]:
    from kefuqa.training.dataset import hand_files, load_corpus, load_split_ids, outside_files, split

    sp = split(load_corpus(hand_files()), load_split_ids(), also_avoid=load_corpus(outside_files()))
    return list(sp.train)


def run_distill(run: DistillRun, encoder_dir: Path, cfg: DistillConfig,
                log: Callable[[str], None] = print) -> Path:
    """Distil a student from the converted encoder ``encoder_dir`` with ``run.lora`` merged in;
    returns the runnable student folder (``run.out / "encoder"``)."""
    from kefuqa.training.finetune import apply_lora
    from kefuqa.training.train import CachedEmbedder

    texts = pool_texts(_training_conversations(), run.variants, run.seed)
    log(f"pool: {len(texts)} distinct turn texts of the training conversations and their variants")
    with tempfile.TemporaryDirectory(prefix="kefuqa-distill-") as tmp:
        teacher = apply_lora(encoder_dir, run.lora, Path(tmp) / "teacher") if run.lora else encoder_dir
        embed = CachedEmbedder(teacher, run.device, run.cache)
        known = len(embed.cache)
        targets = embed(texts)
        embed.save()
        log(f"teacher vectors: {known} from the cache, {len(embed.cache) - known} computed")
        distill(texts, targets, teacher, run.out, cfg, run.device, log)
        return build_student(teacher, run.out, run.out / "encoder")

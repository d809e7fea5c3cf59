"""SmoothQuant for the encoder's dynamic int8 (Xiao et al., 2023): a few hidden
channels carry activations far larger than the rest, so one int8 scale per
tensor rounds the others coarsely. Each quantised MatMul (and the fused
attention's QKV projection) gets a per-input-channel factor ``s``: its input
is multiplied by ``1/s`` (one cheap Mul) and its weight rows by ``s``. The
product is unchanged in exact arithmetic; the activations become flat enough
for int8, the weights stay easy (they are quantised per output channel).

``s_j = max|x_j|^alpha / max|W_j|^(1-alpha)``, with ``max|x_j|`` taken over
calibration texts from the training split of fixed writers of the bundled corpus
(never the test split; ``CALIBRATION_WRITERS``). Factors are rounded to 1/8 octave so that float noise between
machines cannot change the built model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from kefuqa.models.neural.engine import QUERY_PREFIX, load_tokenizer, pad_ids, pad_token_id

ALPHA = 0.75  # of 0.5 / 0.75 / 0.85 / 0.9, 0.75 gave the closest int8 embeddings (bench/quantization.py)
N_CALIBRATION = 512


# The writers whose training conversations calibrate the int8 build. The shipped head was
# trained against the graph they give, so a writer added to the corpus must not change it:
# a model that wants more calibration writers changes this list and retrains its head.
CALIBRATION_WRITERS = tuple(f"w{i}" for i in range(1, 22))


def calibration_texts(n: int = N_CALIBRATION, seed: int = 0) -> list[str]:
    """Distinct turn texts (as the engine embeds them) of the training split of the
    calibration writers' files in the bundled corpus."""
    from kefuqa.models.neural.features import conversation_texts
    from kefuqa.training.dataset import hand_files, load_corpus, load_split_ids, split

    files = [f for f in hand_files() if f.stem in CALIBRATION_WRITERS]
    train = split(load_corpus(files), load_split_ids()).train
    texts = sorted({t for c in train for t in conversation_texts(c)})
    return sorted(random.Random(seed).sample(texts, min(n, len(texts))))


def _batches(tokenizer: Path, texts: Sequence[str], size: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    tok = load_tokenizer(tokenizer)
    encs = sorted((e.ids for e in tok.encode_batch([QUERY_PREFIX + t for t in texts])), key=len)
    for i in range(0, len(encs), size):
        yield pad_ids(encs[i : i + size], pad_token_id(tok))


def _targets(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    inits = {i.name: i for i in graph.initializer}
    return [n for n in graph.node if n.op_type in ("MatMul", "Attention")
            and n.input[1] in inits and len(inits[n.input[1]].dims) == 2]


def probe_session(model: onnx.ModelProto, names: list[str]) -> ort.InferenceSession:
    """A session of ``model`` whose outputs are the float tensors ``names`` (calibration)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None) for x in names)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _channel_max(model: onnx.ModelProto, names: list[str], batches) -> dict[str, np.ndarray]:
    sess = probe_session(model, names)
    amax: dict[str, np.ndarray] = {}
    for ids, mask in batches:
        keep = mask.astype(bool)  # padding positions are not text
        for x, v in zip(names, sess.run(names, {"input_ids": ids, "attention_mask": mask})):
            m = np.abs(v[keep]).max(0)
            amax[x] = np.maximum(amax[x], m) if x in amax else m
    return amax


def smooth(src: Path, out: Path, tokenizer: Path, texts: Sequence[str], alpha: float = ALPHA) -> Path:
    """Write ``src`` (an optimised fp32 encoder graph) with smoothing factors applied."""
    model = onnx.load(str(src))
    graph = model.graph
    targets = _targets(graph)
    if not targets:
        raise ValueError(f"{src}: no MatMul or Attention with a weight initializer to smooth")
    inits = {i.name: i for i in graph.initializer}
    amax = _channel_max(model, sorted({n.input[0] for n in targets}), _batches(tokenizer, texts))
    target_ids = {id(n) for n in targets}
    nodes: list[onnx.NodeProto] = []
    for n in graph.node:
        if id(n) in target_ids:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)  # [in, out]
            s = np.maximum(amax[n.input[0]], 1e-5) ** alpha / np.maximum(np.abs(w).max(1), 1e-5) ** (1 - alpha)
            s = np.exp2(np.round(np.log2(s) * 8) / 8).astype(np.float32)
            w_name, inv_name, x_name = f"{n.name}_smoothed_w", f"{n.name}_smooth_inv", f"{n.name}_smoothed_x"
            graph.initializer.extend([numpy_helper.from_array(w * s[:, None], w_name),
                                      numpy_helper.from_array((1 / s).astype(np.float32), inv_name)])
            nodes.append(helper.make_node("Mul", [n.input[0], inv_name], [x_name], name=f"{n.name}_smooth"))
            n.input[0], n.input[1] = x_name, w_name
        nodes.append(n)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(out))
    return out

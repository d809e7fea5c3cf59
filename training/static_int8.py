"""Static activation scales for the int8 encoder.

onnxruntime's dynamic int8 (``quantize_dynamic``) puts a ``DynamicQuantizeLinear``
before every quantised MatMul and attention: it takes one scale and zero point over
the whole call's input, so a text's vector depends on the texts it shares a call
with. Here each of them becomes a ``QuantizeLinear`` whose scale and zero point were
fixed from calibration texts. The integer kernels are the same ones (``MatMulInteger``,
``QAttention``), so speed and accuracy stay those of dynamic int8, and every op after
that works row by row: a text's vector is bit-identical alone and among texts of the
same token length in one call, which is what lets the engine share encoder calls
across conversations (``models/neural/engine.py``).

An activation beyond its calibrated range saturates at the range's edge; the
calibration texts span the corpus's turns, and the bench and the int8-vs-fp32 test
measure what saturation costs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kefuqa.models.neural.engine import QUERY_PREFIX, SHARED_CALLS_KEY, load_tokenizer
from kefuqa.training.smoothquant import probe_session

# Ranges are rounded outward to 1/16 octave so that float noise between machines
# (AVX2 against AVX-512 reductions) cannot change the built model.
GRID = 16


def same_length_batches(tokenizer: Path, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Calibration inputs: the texts grouped by token length, so no position is padding."""
    tok = load_tokenizer(tokenizer)
    groups: dict[int, list[list[int]]] = {}
    for enc in tok.encode_batch([QUERY_PREFIX + t for t in texts]):
        groups.setdefault(len(enc.ids), []).append(enc.ids)
    for length in sorted(groups):
        ids = np.array(groups[length], np.int64)
        yield ids, np.ones_like(ids)


def mark_shared_calls(model: onnx.ModelProto, shared: bool) -> None:
    """Say in the graph's metadata whether texts of one length may share its calls
    (what ``OnnxEmbedder`` reads), replacing whatever an earlier step left there."""
    props = {p.key: p.value for p in model.metadata_props}
    props[SHARED_CALLS_KEY] = "true" if shared else "false"
    helper.set_metadata_props(model, props)


def mark_shared_calls_file(path: Path, shared: bool) -> Path:
    model = onnx.load(str(path))
    mark_shared_calls(model, shared)
    onnx.save(model, str(path))
    return path


def _outward(x: float) -> float:
    """|x| rounded up to the grid, with x's sign; 0 stays 0."""
    if x == 0:
        return 0.0
    return float(np.sign(x) * np.exp2(np.ceil(np.log2(abs(x)) * GRID) / GRID))


def _ranges(model: onnx.ModelProto, names: list[str], batches) -> dict[str, tuple[float, float]]:
    sess = probe_session(model, names)
    lo = dict.fromkeys(names, 0.0)  # every range holds 0, as DynamicQuantizeLinear's does
    hi = dict.fromkeys(names, 0.0)
    for ids, mask in batches:
        for x, v in zip(names, sess.run(names, {"input_ids": ids, "attention_mask": mask})):
            lo[x], hi[x] = min(lo[x], float(v.min())), max(hi[x], float(v.max()))
    return {x: (_outward(lo[x]), _outward(hi[x])) for x in names}


def fix_scales(src: Path, out: Path, tokenizer: Path, texts: Sequence[str]) -> Path:
    """Write ``src`` (a dynamic int8 graph) with every ``DynamicQuantizeLinear`` replaced
    by a ``QuantizeLinear`` on the range its input took over ``texts``."""
    model = onnx.load(str(src))
    dynamic = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
    if not dynamic:
        raise ValueError(f"{src}: no DynamicQuantizeLinear to fix (is it a dynamic int8 graph?)")
    ranges = _ranges(model, sorted({n.input[0] for n in dynamic}), same_length_batches(tokenizer, texts))
    nodes: list[onnx.NodeProto] = []
    for n in model.graph.node:
        if n.op_type != "DynamicQuantizeLinear":
            nodes.append(n)
            continue
        lo, hi = ranges[n.input[0]]
        if hi <= lo:
            raise ValueError(f"{src}: input {n.input[0]!r} of {n.name!r} was 0 on every calibration text")
        # uint8 affine, as DynamicQuantizeLinear computes it per call: x ≈ scale · (q − zero point).
        scale = np.float32((hi - lo) / 255)
        zero_point = np.uint8(np.clip(np.round(-lo / scale), 0, 255))
        q, scale_name, zero_name = n.output
        model.graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), scale_name),
                                        numpy_helper.from_array(np.array(zero_point, np.uint8), zero_name)])
        nodes.append(helper.make_node("QuantizeLinear", [n.input[0], scale_name, zero_name], [q],
                                      name=f"{n.name}_static"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    mark_shared_calls(model, True)
    onnx.save(model, str(out))
    return out

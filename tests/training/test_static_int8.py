"""Fixing int8 activation scales (training/static_int8.py) on a graph small enough to
reason about: its one quantised input is the token ids, so the calibrated range is
known, and its output shows whether a text's result depends on its call-mates."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, pre_tokenizers

from kefuqa.models.neural.engine import shares_calls
from kefuqa.training.static_int8 import GRID, _outward, fix_scales

WORDS = ["<pad>", "<unk>", "query:", "好", "的", "谢谢", "快递", "到", "了", "没"]


def tokenizer(tmp_path: Path) -> Path:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # "query:" stays one word
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return path


def per_call_graph(path: Path) -> Path:
    """ids → uint8 (scale per call) → back to float → mean over the sequence."""
    nodes = [helper.make_node("Cast", ["input_ids"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "scale", "zero"], name="dq"),
             helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["d"]),
             helper.make_node("ReduceMean", ["d"], ["embedding"], axes=[1], keepdims=0)]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])]
    graph = helper.make_graph(nodes, "per_call", inputs,
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["b"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def load(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path: Path, rows: list[list[int]]) -> np.ndarray:
    ids = np.array(rows, np.int64)
    return load(path).run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


@pytest.mark.parametrize("x", [0.3, -1.7, 2.0, 1e-3, -4.25])
def test_ranges_round_outward_by_less_than_the_grid(x):
    y = _outward(x)
    assert math.copysign(1, y) == math.copysign(1, x)
    assert abs(x) <= abs(y) < abs(x) * 2 ** (1 / GRID) * (1 + 1e-9)
    assert _outward(y) == y  # on the grid already


def test_zero_stays_zero():
    assert _outward(0.0) == 0.0


def test_the_scale_is_fixed_from_the_calibration_range_and_no_longer_depends_on_the_call(tmp_path):
    tok = tokenizer(tmp_path)
    src = per_call_graph(tmp_path / "dynamic.onnx")
    out = fix_scales(src, tmp_path / "static.onnx", tok, ["快递 到", "谢谢", "好 的"])
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == 1 and "DynamicQuantizeLinear" not in ops
    # The engine learns from the graph's metadata that texts of one length may share calls.
    assert shares_calls(load(out)) and not shares_calls(load(src))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # The largest id of the calibration texts is 到 (7); the range [0, 7] rounds outward.
    scale = _outward(7.0) / 255
    assert float(inits["scale"]) == pytest.approx(scale) and int(inits["zero"]) == 0
    low, high = [2, 3, 4], [2, 9, 9]  # "query: 好 的" and "query: 没 没", of one length
    # Per call, the scale follows the call's largest id, so "low" moves with its mate.
    assert run(src, [low])[0] != run(src, [low, high])[0]
    # Fixed, "low" gets the same bits alone and in company, and ids beyond the range saturate.
    assert run(out, [low])[0] == run(out, [low, high])[0]
    q = lambda x: min(round(x / scale), 255) * scale  # noqa: E731
    assert run(out, [high])[0] == pytest.approx((q(2) + 2 * q(9)) / 3, rel=1e-6)
    assert q(9) == pytest.approx(_outward(7.0))


def test_a_graph_without_per_call_scales_is_refused(tmp_path):
    tok = tokenizer(tmp_path)
    src = per_call_graph(tmp_path / "dynamic.onnx")
    fixed = fix_scales(src, tmp_path / "static.onnx", tok, ["好 的"])
    with pytest.raises(ValueError, match="no DynamicQuantizeLinear to fix"):
        fix_scales(fixed, tmp_path / "again.onnx", tok, ["好 的"])


def test_an_input_that_is_zero_on_every_calibration_text_is_an_error(tmp_path):
    tok = tokenizer(tmp_path)
    src = per_call_graph(tmp_path / "dynamic.onnx")
    model = onnx.load(str(src))
    # Multiply the ids by 0 before quantising: no range can be calibrated.
    model.graph.initializer.append(numpy_helper.from_array(np.array(0, np.float32), "zero_f"))
    model.graph.node.insert(1, helper.make_node("Mul", ["x", "zero_f"], ["x0"]))
    model.graph.node[2].input[0] = "x0"
    onnx.save(model, str(src))
    with pytest.raises(ValueError, match="was 0 on every calibration text"):
        fix_scales(src, tmp_path / "static.onnx", tok, ["好 的"])

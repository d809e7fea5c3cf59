"""Export to ONNX and int8: the encoder (mean-pooled, L2-normalised e5
embeddings) and the multi-task head; then assemble a runnable model folder.

The runnable folder (what ``kefuqa.models.neural.NeuralEngine`` loads)::

    encoder.int8.onnx   input_ids, attention_mask → embedding [B, 384]
    encoder.onnx        the fp32 graph (kept only with keep_fp32=True)
    tokenizer.json      the pruned Unigram tokenizer
    head.onnx           turns, mask, global → logits, attention, turn sentiment
    model.json          name, version, temperatures, metrics, provenance
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from kefuqa.models.neural.head import N_GLOBAL, TURN_IN, ConversationHead, EnsembleHead
from kefuqa.training.smoothquant import ALPHA, calibration_texts, smooth
from kefuqa.training.static_int8 import fix_scales, mark_shared_calls_file


class _Pooled(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(1).to(hidden.dtype)  # [B, 1, L]
        # A per-row MatMul rather than a ReduceSum over the sequence axis: onnxruntime's
        # ReduceSum sums in an order that depends on the batch's shape, the MatMul does not,
        # so a text's vector is bit-identical alone and in a call of several texts.
        pooled = torch.matmul(mask, hidden).squeeze(1) / mask.sum(-1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints are expected here
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def export_encoder(encoder_dir: Path, out: Path) -> Path:
    from transformers import BertModel

    # Eager attention exports the classic pattern that onnxruntime's optimiser fuses into
    # one Attention op (QAttention once quantised); the sdpa export is left unfused.
    bert = BertModel.from_pretrained(str(encoder_dir), dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.tensor([[0, 6, 7, 2], [0, 8, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    _export(_Pooled(bert), (ids, mask), out, ["input_ids", "attention_mask"], ["embedding"],
            {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}})
    return mark_shared_calls_file(out, True)  # fp32, pooled per row: a text's vector is its own


# Names how the int8 encoder is made; cached int8 embeddings are keyed by it.
INT8_RECIPE = f"eager-attention-smoothquant-{ALPHA}-layernorm-rr7-static-matmul-pool"


def quantize_int8(fp32: Path, out: Path, tokenizer: Path, alpha: float | None = ALPHA,
                  skip_layer_norm: bool = False, static: bool = True) -> Path:
    """Optimise (BERT fusions; SkipLayerNormalization only with ``skip_layer_norm``),
    smooth (``training/smoothquant.py``; ``alpha=None`` skips it), then int8 of every
    MatMul and the attention's QKV projection, weights per output channel; activation
    scales fixed from calibration (``training/static_int8.py``), or per call with
    ``static=False``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    # onnxruntime's CPU SkipLayerNormalization took 0.67 s of a 2.5 s encoder profile
    # against 0.09 s for the Add + LayerNormalization it replaces; the engine's sessions
    # keep it unfused too (models/neural/engine.py). Measured in bench/quantization.py.
    fusions = FusionOptions("bert")
    fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = skip_layer_norm
    with tempfile.TemporaryDirectory() as tmp:
        opt_path = Path(tmp) / "opt.onnx"
        opt = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384,
                             optimization_options=fusions)
        opt.save_model_to_file(str(opt_path))
        if alpha is not None:
            opt_path = smooth(opt_path, Path(tmp) / "smooth.onnx", tokenizer, calibration_texts(), alpha)
        # Without smoothing, all-MatMul int8 of the fine-tuned encoder reached cosine
        # 0.992 to fp32 and moved 4 of 171 test labels; smoothed, 0.9986 (bench/quantization.py).
        # Fused contrib ops (Attention, BiasGelu) defeat shape inference: say the default type.
        # 7-bit weights on every CPU: AVX2's u8×s8 kernel saturates full-range int8 pairs
        # where VNNI does not, so full range gave different labels on different machines;
        # with 7 bits no pair sum can saturate and every CPU computes the same integers.
        dynamic = Path(tmp) / "dynamic.onnx" if static else out
        quantize_dynamic(str(opt_path), str(dynamic), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        if static:
            fix_scales(dynamic, out, tokenizer, calibration_texts())
        else:
            mark_shared_calls_file(out, False)  # whatever the fp32 graph said, scales per call
    return out


def export_head(head: ConversationHead | EnsembleHead, out: Path) -> Path:
    head.eval()
    x = torch.zeros(2, 3, TURN_IN)
    m = torch.ones(2, 3, dtype=torch.bool)
    g = torch.zeros(2, N_GLOBAL)
    _export(head, (x, m, g), out, ["turns", "mask", "global"], ["logits", "attention", "turn_sentiment"],
            {"turns": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "global": {0: "b"},
             "logits": {0: "b"}, "attention": {0: "b", 2: "t"}, "turn_sentiment": {0: "b", 1: "t"}})
    return out


INT8_SCALES = ("static", "per_call")


def int8_scales(model_json: dict[str, Any]) -> str:
    """How a model's int8 activation scales are taken: ``static`` (fixed at build time, the
    default) or ``per_call`` for a model whose head was trained against per-call int8
    vectors and is kept on them (its ``model.json`` says ``"int8_scales": "per_call"``)."""
    scales = model_json.get("int8_scales", "static")
    if scales not in INT8_SCALES:
        raise ValueError(f"model.json: int8_scales is {scales!r}, expected one of {', '.join(INT8_SCALES)}")
    return scales


def assemble(encoder_dir: Path, head_onnx: Path, model_json: dict[str, Any], out: Path,
             keep_fp32: bool = False) -> Path:
    """The runnable folder from a converted encoder folder and an exported head."""
    out.mkdir(parents=True, exist_ok=True)
    fp32 = export_encoder(encoder_dir, out / "encoder.onnx")
    quantize_int8(fp32, out / "encoder.int8.onnx", encoder_dir / "tokenizer.json",
                  static=int8_scales(model_json) == "static")
    if not keep_fp32:
        fp32.unlink()
    shutil.copy(encoder_dir / "tokenizer.json", out / "tokenizer.json")
    if head_onnx.resolve() != (out / "head.onnx").resolve():
        shutil.copy(head_onnx, out / "head.onnx")
    (out / "model.json").write_text(json.dumps(model_json, ensure_ascii=False, indent=2), encoding="utf-8")
    return out

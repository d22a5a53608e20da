"""One bounded, thread-safe least-recently-used cache, the base of the package's in-memory caches.

:class:`BoundedLRU` keeps values by key, bounded in entries and (with a ``size`` function) in bytes; the least
recently used entries go first, a value larger than the whole byte bound is not kept, and ``clear`` empties it. A
lookup can check that an entry is still valid (a slice's maps computed for another prompt are stale): a stale entry
is dropped and counts as a miss. Built on it: the embedding cache (:class:`~monai_baldsam.sam.embedding_cache.
EmbeddingCache`), a volume session's per-slice uncertainty maps (:class:`~monai_baldsam.volume.uncertainty_cache.
SliceUncertaintyCache`) and a segmenter's UncertainSAM models (:meth:`~monai_baldsam.segmentation.Segmenter.
usam_model`). A lock guards every operation: the MONAI Label server calls models from several threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Iterator, TypeVar

__all__ = ["BoundedLRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _no_size(value: object) -> int:
    return 0


class BoundedLRU(Generic[K, V]):
    """Values by key, at most ``max_items`` of them and ``max_bytes`` bytes (``size(value)`` each).

    Args:
        max_items: most entries kept, >= 1.
        max_bytes: most bytes kept, >= 1 (``None``: no byte bound).
        size: bytes of a value (default 0: only the entry bound applies).

    Attributes:
        hits, misses: lookups (:meth:`get`) that found a valid entry / found none or a stale one.
    """

    def __init__(self, max_items: int, max_bytes: int | None = None, size: Callable[[V], int] = _no_size) -> None:
        if max_items < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError(f"cache bounds must be positive, got max_items={max_items}, max_bytes={max_bytes}")
        self.max_items = int(max_items)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._size = size
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K, valid: Callable[[V], bool] | None = None) -> V | None:
        """The value for ``key`` (now the most recently used), or ``None``; an entry for which ``valid`` says False
        is dropped and counts as a miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (valid is None or valid(entry[0])):
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None

    def put(self, key: K, value: V) -> bool:
        """Store ``value`` under ``key`` (replacing an old one), then evict least recently used entries to fit the
        bounds. Returns False, keeping nothing for ``key``,
        when the value alone is larger than ``max_bytes``."""
        nbytes = int(self._size(value))
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if self.max_bytes is not None and nbytes > self.max_bytes:
                return False
            self._entries[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._entries) > self.max_items or (self.max_bytes is not None and self._bytes > self.max_bytes):
                self._drop(next(iter(self._entries)))
            return True

    def get_or_put(self, key: K, make: Callable[[], V]) -> V:
        """The value for ``key``, made by ``make()`` and stored when missing (under the lock: made once)."""
        with self._lock:
            value = self.get(key)
            if value is None:
                value = make()
                self.put(key, value)
            return value

    def resize(self, max_items: int) -> None:
        """Set ``max_items`` (>= 1) and evict least recently used entries beyond it."""
        if max_items < 1:
            raise ValueError(f"cache bounds must be positive, got max_items={max_items}")
        with self._lock:
            self.max_items = int(max_items)
            while len(self._entries) > self.max_items:
                self._drop(next(iter(self._entries)))

    def pop(self, key: K) -> V | None:
        """Remove ``key``'s entry; returns its value (``None`` when there was none)."""
        with self._lock:
            return self._drop(key) if key in self._entries else None

    def _drop(self, key: K) -> V:
        value, nbytes = self._entries.pop(key)
        self._bytes -= nbytes
        return value

    def clear(self, reset_counters: bool = False) -> None:
        """Forget every entry (and, with ``reset_counters``, the hit and miss counts)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            if reset_counters:
                self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the values kept (by ``size``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return iter(list(self._entries))

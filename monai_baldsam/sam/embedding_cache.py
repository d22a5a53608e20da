"""A bounded, thread-safe LRU cache of image embeddings keyed by a full signature.

The key is ``(content hash of the image, slice axis, slice index, backbone name, checkpoint hash)``, so an
embedding is reused only for the same pixels through the same weights; the cache is bounded both in the
number of items and in bytes, and can be cleared.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["EmbeddingKey", "EmbeddingCache", "content_hash"]


@dataclass(frozen=True)
class EmbeddingKey:
    """Identifies one encoded slice."""

    content_hash: str
    axis: int
    index: int
    backbone: str
    checkpoint_sha256: str


def content_hash(array: np.ndarray | torch.Tensor) -> str:
    """BLAKE2b digest of an array's dtype, shape and bytes (the pixels handed to the encoder)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().contiguous().numpy()
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(array.dtype).encode())
    digest.update(str(array.shape).encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


class EmbeddingCache:
    """LRU cache of embeddings (tensors), bounded by ``max_items`` and ``max_bytes``.

    Stored tensors are kept on the device they were given on. ``hits`` and ``misses`` count lookups.
    """

    def __init__(self, max_items: int = 512, max_bytes: int = 2 << 30) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"cache bounds must be positive, got max_items={max_items}, max_bytes={max_bytes}")
        self.max_items = int(max_items)
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[EmbeddingKey, torch.Tensor] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(tensor: torch.Tensor) -> int:
        return tensor.numel() * tensor.element_size()

    def get(self, key: EmbeddingKey) -> torch.Tensor | None:
        """The cached embedding for ``key`` (marked most recently used), or ``None``."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: EmbeddingKey, embedding: torch.Tensor) -> None:
        """Store ``embedding``; evicts least recently used items to stay within both bounds.

        An embedding larger than ``max_bytes`` on its own is not stored.
        """
        size = self._size(embedding)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= self._size(old)
            self._items[key] = embedding.detach()
            self._nbytes += size
            while len(self._items) > self.max_items or self._nbytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._nbytes -= self._size(evicted)

    def clear(self) -> None:
        """Drop every cached embedding and reset the counters."""
        with self._lock:
            self._items.clear()
            self._nbytes = 0
            self.hits = 0
            self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

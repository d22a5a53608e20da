"""A bounded, thread-safe LRU cache of image embeddings keyed by a full signature (a
:class:`~monai_baldsam.cache.BoundedLRU`).

The key is ``(content hash of the image, slice axis, slice index, backbone name, checkpoint hash)``, so an
embedding is reused only for the same pixels through the same weights; the cache is bounded both in the
number of items and in bytes, and can be cleared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from monai_baldsam.cache import BoundedLRU

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


def _tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class EmbeddingCache(BoundedLRU[EmbeddingKey, torch.Tensor]):
    """LRU cache of embeddings (tensors), bounded by ``max_items`` and ``max_bytes``.

    Stored tensors are kept on the device they were given on. ``hits`` and ``misses`` count lookups.
    """

    def __init__(self, max_items: int = 512, max_bytes: int = 2 << 30) -> None:
        super().__init__(max_items, max_bytes, size=_tensor_bytes)

    def put(self, key: EmbeddingKey, embedding: torch.Tensor) -> bool:  # type: ignore[override]
        """Store ``embedding`` (detached); evicts least recently used items to stay within both bounds.

        An embedding larger than ``max_bytes`` on its own is not stored (returns False).
        """
        return super().put(key, embedding.detach())

    def clear(self, reset_counters: bool = True) -> None:
        """Drop every cached embedding and reset the counters."""
        super().clear(reset_counters)

"""The embedding cache: bounded in items and bytes, LRU, keyed by the full signature, clearable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.sam.embedding_cache import EmbeddingCache, EmbeddingKey, content_hash


def _key(index: int, sha: str = "abc") -> EmbeddingKey:
    return EmbeddingKey("h", 2, index, "lite_medsam", sha)


def test_item_bound_evicts_least_recently_used() -> None:
    cache = EmbeddingCache(max_items=2, max_bytes=1 << 20)
    cache.put(_key(0), torch.zeros(4))
    cache.put(_key(1), torch.zeros(4))
    assert cache.get(_key(0)) is not None  # 0 is now the most recent
    cache.put(_key(2), torch.zeros(4))
    assert _key(1) not in cache and _key(0) in cache and _key(2) in cache
    assert len(cache) == 2


def test_byte_bound_is_never_exceeded() -> None:
    cache = EmbeddingCache(max_items=100, max_bytes=3 * 400)
    for i in range(10):
        cache.put(_key(i), torch.zeros(100))  # 400 bytes each
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 3
    cache.put(_key(99), torch.zeros(1000))  # larger than the whole budget: not stored
    assert _key(99) not in cache and cache.nbytes <= cache.max_bytes


def test_key_includes_checkpoint_hash() -> None:
    cache = EmbeddingCache()
    cache.put(_key(0, sha="one"), torch.ones(2))
    assert cache.get(_key(0, sha="two")) is None
    assert cache.misses == 1 and cache.hits == 0


def test_clear_and_bad_bounds() -> None:
    cache = EmbeddingCache()
    cache.put(_key(0), torch.ones(2))
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match="positive"):
        EmbeddingCache(max_items=0)


def test_content_hash_sees_values_dtype_and_shape() -> None:
    a = np.zeros((4, 4), np.float32)
    assert content_hash(a) == content_hash(torch.zeros(4, 4))
    b = a.copy()
    b[1, 1] = 1e-6
    assert content_hash(a) != content_hash(b)
    assert content_hash(a) != content_hash(a.reshape(2, 8))
    assert content_hash(a) != content_hash(a.astype(np.float64))

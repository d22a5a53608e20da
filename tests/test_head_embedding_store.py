"""The on-disk embedding store: signature-checked, bounded, clearable."""

from __future__ import annotations

import os
import time

import pytest
import torch

from monai_baldsam.head.train.embedding_store import EmbeddingStore, embedding_signature


def _image(seed: int) -> torch.Tensor:
    return torch.rand((1, 3, 20, 24), generator=torch.Generator().manual_seed(seed))


def test_get_or_compute_encodes_once(tiny_vit, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    calls = []

    def encode(image: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.full((1, 4, 2, 2), float(image.sum()))

    first = store.get_or_compute(_image(0), tiny_vit, encode)
    again = store.get_or_compute(_image(0), tiny_vit, encode)
    torch.testing.assert_close(first, again)
    assert calls == [1] and len(store) == 1
    store.get_or_compute(_image(1), tiny_vit, encode)
    assert calls == [1, 1] and len(store) == 2
    store.clear()
    assert len(store) == 0 and store.get(embedding_signature(_image(0), tiny_vit)) is None


def test_signature_mismatch_is_an_error(tiny_vit, tmp_path) -> None:
    store = EmbeddingStore(tmp_path)
    signature = embedding_signature(_image(0), tiny_vit)
    path = store.put(signature, torch.zeros((1, 4, 2, 2)))
    # the same key, but written for another checkpoint (or an older store format): never reused silently
    stale = {**signature, "img_size": 1024}
    torch.save({"signature": stale, "features": torch.zeros((1, 4, 2, 2))}, path)
    with pytest.raises(ValueError, match="another model"):
        store.get(signature)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="unreadable"):
        store.get(signature)
    with pytest.raises(ValueError, match="one embedding"):
        store.put(signature, torch.zeros((4, 2, 2)))


def test_store_is_bounded_in_items_and_bytes(tiny_vit, tmp_path) -> None:
    store = EmbeddingStore(tmp_path, max_items=3)
    signatures = [embedding_signature(_image(s), tiny_vit) for s in range(5)]
    for n, signature in enumerate(signatures):
        store.put(signature, torch.zeros((1, 4, 8, 8)))
        os.utime(store.path(signature), ns=(n * 10**9, n * 10**9))  # distinct, increasing access times
        time.sleep(0.01)
    assert len(store) == 3
    assert store.get(signatures[0]) is None and store.get(signatures[4]) is not None  # oldest evicted first
    one_file = store.path(signatures[4]).stat().st_size
    small = EmbeddingStore(tmp_path / "small", max_bytes=int(one_file * 2.5))
    for signature in signatures:
        small.put(signature, torch.zeros((1, 4, 8, 8)))
    assert len(small) == 2 and small.nbytes <= small.max_bytes
    with pytest.raises(ValueError, match="positive"):
        EmbeddingStore(tmp_path, max_items=0)

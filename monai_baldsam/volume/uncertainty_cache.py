"""Per-slice uncertainty maps of a volume session, cached by what produced them.

A slice's uncertainty maps (the click model's mutual information, entropies and foreground probability) depend only
on the slice's embedding (fixed for a session's volume) and on the prompt it is decoded with (box, clicks, mask
input). :class:`SliceUncertaintyCache` keeps one entry per slice keyed by :func:`prompt_signature`: when a click
changes a few slices' results, only those slices get a new signature and are decoded again; every other slice's maps
are reused. The cache is bounded in entries and bytes (least recently used entries go first) and clearable (a
:class:`~monai_baldsam.cache.BoundedLRU` underneath).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from monai_baldsam.cache import BoundedLRU
from monai_baldsam.transforms.prompts import SlicePrompt

__all__ = ["SliceScores", "prompt_signature", "SliceUncertaintyCache"]


@dataclass(frozen=True)
class SliceScores:
    """One slice's maps in SAM's orientation ``(H, W)``: the foreground ``probability`` and named uncertainty maps."""

    probability: np.ndarray
    maps: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.probability.nbytes + sum(m.nbytes for m in self.maps.values()))


def _update(digest: "hashlib._Hash", name: str, value: np.ndarray | torch.Tensor | None) -> None:
    digest.update(name.encode())
    if value is None:
        digest.update(b"none")
        return
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())


def prompt_signature(index: int, prompt: SlicePrompt, model_tag: str = "") -> str:
    """A digest of everything that decides a slice's decoded output besides its embedding: the slice index, the
    prompt's clicks, labels, box and mask input, and ``model_tag`` (which click model decodes it)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{int(index)}|{model_tag}".encode())
    _update(digest, "points", prompt.points_xy)
    _update(digest, "labels", prompt.labels)
    _update(digest, "box", prompt.box_xyxy)
    _update(digest, "mask", prompt.mask_logits)
    return digest.hexdigest()


class SliceUncertaintyCache:
    """One :class:`SliceScores` per slice, valid for one prompt signature; bounded in entries and bytes.

    Args:
        max_items: most slices kept.
        max_bytes: most bytes of maps kept.

    Attributes:
        hits, misses: lookups that found a valid entry / found none (or a stale one).
    """

    def __init__(self, max_items: int = 1024, max_bytes: int = 512 << 20) -> None:
        self._lru: BoundedLRU[int, tuple[str, SliceScores]] = BoundedLRU(max_items, max_bytes,
                                                                         size=lambda entry: entry[1].nbytes)

    @property
    def max_items(self) -> int:
        return self._lru.max_items

    @property
    def max_bytes(self) -> int:
        return int(self._lru.max_bytes or 0)

    @property
    def hits(self) -> int:
        return self._lru.hits

    @property
    def misses(self) -> int:
        return self._lru.misses

    def get(self, index: int, signature: str) -> SliceScores | None:
        """The slice's scores when they were computed for ``signature``; a stale entry is dropped."""
        entry = self._lru.get(int(index), valid=lambda found: found[0] == signature)
        return None if entry is None else entry[1]

    def put(self, index: int, signature: str, scores: SliceScores) -> None:
        """Store the slice's scores (replacing its old entry), then evict least recently used entries to fit; scores
        larger than the whole cache are not kept."""
        self._lru.put(int(index), (signature, scores))

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, index: object) -> bool:
        return index in self._lru

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

"""One backbone and one embedding cache for every model of the app; each model's head, reloaded when it changes.

All bundles run on the same frozen backbone (LiteMedSAM), so the app loads it once, lazily (the server answers
``/info`` at once, and the scoring / training subprocesses MONAI Label starts load only what they use). Every head
shares the backbone's :class:`~monai_baldsam.sam.predictor.SamPredictor` and its content-keyed
:class:`~monai_baldsam.sam.embedding_cache.EmbeddingCache`, so the second and later requests on one image cost only
the head and the decoder. A model's :class:`~monai_baldsam.segmentation.Segmenter` is rebuilt when its
:class:`~monai_baldsam.monailabel.lib.heads.HeadStore` publishes a new head (checked on every request).

Model calls are serialised by :attr:`ModelHub.lock` (the server may run requests on several threads).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from monai_baldsam.monailabel.lib.heads import HeadStore, HeadVersion
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.segmentation import Segmenter

__all__ = ["LoadedModel", "ModelHub"]


@dataclass(frozen=True)
class LoadedModel:
    """A model's segmenter (backbone + its head) and the head version it holds."""

    segmenter: Segmenter
    head: HeadVersion


class ModelHub:
    """Backbone, embedding cache and per-model segmenters of one process.

    Args:
        backbone: registry name of the backbone every head was trained on.
        device: ``cpu`` or ``cuda``.
        cache_items, cache_bytes: bounds of the shared embedding cache (slices; a volume needs one per slice).
    """

    def __init__(self, backbone: str = "lite_medsam", device: str = "cpu", cache_items: int = 1024,
                 cache_bytes: int = 2 << 30) -> None:
        self.backbone_name = backbone
        self.device = torch.device(device)
        self.cache = EmbeddingCache(max_items=cache_items, max_bytes=cache_bytes)
        self.lock = threading.RLock()
        self._backbone: SamBackbone | None = None
        self._models: dict[str, tuple[object, LoadedModel]] = {}

    def backbone(self) -> SamBackbone:
        with self.lock:
            if self._backbone is None:
                self._backbone = load_backbone(self.backbone_name, device=self.device)
            return self._backbone

    def model(self, name: str, store: HeadStore) -> LoadedModel:
        """Model ``name`` with the head ``store`` currently names (reloaded when it was republished)."""
        with self.lock:
            stamp = store.stamp()
            held = self._models.get(name)
            if held is not None and held[0] == stamp:
                return held[1]
            version = store.current()
            segmenter = Segmenter(self.backbone(), device=self.device, cache=self.cache, head=str(version.path),
                                  head_sha256=version.sha256)
            loaded = LoadedModel(segmenter, version)
            self._models[name] = (stamp, loaded)
            return loaded

    def forget(self, name: str) -> None:
        with self.lock:
            self._models.pop(name, None)

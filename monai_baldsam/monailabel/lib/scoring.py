"""Scoring methods: how much each unlabeled image needs an annotator, written into the datastore's image info.

Both methods judge the prediction the current model makes before anyone has prompted the image: a box over the
whole picture (over the whole slice on ``slices`` evenly spaced slices of a volume, 3 by default), by the model of
the image's kind (the first served 2D model for pictures, the 3D model for volumes, or the request's ``model``).
A record is written under the method's name with the head's SHA-256 and publication time (``model_ts``); an image
already scored by the current head is skipped, so a new head (after training) re-scores everything. ``score`` is
what the strategy of the same name ranks by: higher = offered first.

* ``bald``: the per-pixel mutual information (BALD, bits) summarised as the mean and the mean of the top
  ``top_fraction`` of pixels (1 %)::

    {"score": <mean or top-k mean, see score_key>, "mean_mi_bits": ..., "topk_mean_mi_bits": ..., "top_fraction": 0.01,
     "model": "baldsam_ultrasound", "head_sha256": "...", "model_ts": <head publication time>, "ts": <now>}

* ``usam``: the IoU the UncertainSAM heads (:mod:`monai_baldsam.usam`) predict for that mask, averaged over the
  slices; ``score = 1 - predicted_iou`` (lowest predicted IoU first), with ``prompt_gap`` and ``task_gap`` and the
  heads' ``usam_sha256``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Mapping

import numpy as np
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.scoring import ScoringMethod
from tqdm.auto import tqdm

from monai_baldsam.image_selection import SCORE_KEYS, mi_summary, whole_picture_box
from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.monailabel.lib.datastore_info import update_image_info_fresh
from monai_baldsam.monailabel.lib.heads import HeadVersion
from monai_baldsam.monailabel.lib.infers import BaldSamInfer
from monai_baldsam.transforms.prompts import UserPrompts
from monai_baldsam.transforms.slicing import slice_axes
from monai_baldsam.transforms.volume_geometry import resolve_axis
from monai_baldsam.usam import load_usam, resolve_usam

__all__ = ["scoring_slices", "ImageScoring", "BaldScoring", "UsamScoring"]

logger = logging.getLogger(__name__)


def scoring_slices(num_slices: int, count: int) -> list[int]:
    """Up to ``count`` slice indices spread evenly between the first and last slice (both left out when there is
    room)."""
    if count < 1:
        raise ValueError(f"slices must be at least 1, got {count}")
    count = min(count, num_slices)
    inner = np.linspace(0, num_slices - 1, count + 2)[1:-1]
    return sorted({int(math.floor(v + 0.5)) for v in inner})


class ImageScoring(ScoringMethod):
    """The loop shared by the scoring methods: unlabeled images, the model of their kind, skip when already scored by
    the current head, one record per image written with :func:`update_image_info_fresh`.

    Args:
        key: the image-info key (and method name); description: shown in ``/info``.
        infers: the app's infer tasks (their models, heads and image loaders are reused).
        slices: slices scored per volume.
    """

    def __init__(self, key: str, description: str, infers: Mapping[str, BaldSamInfer], slices: int = 3) -> None:
        super().__init__(description)
        if slices < 1:
            raise ValueError(f"slices must be at least 1, got {slices}")
        self.key = key
        self.infers = dict(infers)
        self.slices = int(slices)

    def _task_for(self, dims: int, name: str | None) -> BaldSamInfer | None:
        if name:
            if name not in self.infers:
                raise ValueError(f"unknown model {name!r} for {self.key} scoring: choose among {', '.join(self.infers)}")
            task = self.infers[name]
            return task if task.model_config.spatial_dims == dims else None
        return next((t for t in self.infers.values() if t.model_config.spatial_dims == dims), None)

    def whole_slice_boxes(self, image: Any) -> dict[int, UserPrompts]:
        """Slice index -> a whole-slice box prompt (index 0 for a picture)."""
        if image.ndim == 3:
            return {0: UserPrompts(box=[0, 0, int(image.shape[1]) - 1, int(image.shape[2]) - 1])}
        axis = resolve_axis(None, image.affine)
        a, b = slice_axes(axis)
        size_a, size_b = int(image.shape[1 + a]), int(image.shape[1 + b])
        return {index: UserPrompts(box=[0, 0, index, size_a - 1, size_b - 1])
                for index in scoring_slices(int(image.shape[1 + axis]), self.slices)}

    def is_current(self, record: Mapping[str, Any], task: BaldSamInfer, head: HeadVersion) -> bool:
        return record.get("head_sha256") == head.sha256 and record.get("model") == task.model_config.name

    def measure(self, task: BaldSamInfer, image: Any) -> dict[str, Any]:
        """The method's values for one image; must include ``score``."""
        raise NotImplementedError

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        images = datastore.get_unlabeled_images()
        scored, skipped, failed = [], [], {}
        first = next(iter(self.infers.values()))
        for image_id in tqdm(images, desc=f"{self.key} scoring", unit="image"):
            info = datastore.get_image_info(image_id)
            try:
                with first.hub.lock:
                    image = first.load_image(datastore.get_image_uri(image_id))
                    task = self._task_for(3 if image.ndim == 4 else 2, request.get("model"))
                    if task is None:
                        skipped.append(image_id)
                        continue
                    head = task.store.current()
                    if self.is_current(info.get(self.key, {}), task, head):
                        skipped.append(image_id)
                        continue
                    values = self.measure(task, image)
            except (ValueError, FileNotFoundError) as err:  # one bad image must not stop the others
                logger.warning(f"{self.key} scoring: {image_id} skipped: {err}")
                failed[image_id] = str(err)
                continue
            record = {**values, "model": task.model_config.name, "head_sha256": head.sha256,
                      "model_ts": head.published, "ts": int(time.time())}
            update_image_info_fresh(datastore, image_id, {self.key: record})
            scored.append(image_id)
        return {"method": self.key, "scored": scored, "skipped": skipped, "failed": failed}


class BaldScoring(ImageScoring):
    """The ``bald`` scoring method (see the module docstring).

    Args:
        infers: the app's infer tasks.
        top_fraction: share of pixels averaged for ``topk_mean_mi_bits``.
        slices: slices scored per volume.
        score_key: which summary becomes ``score`` (one of :data:`SCORE_KEYS`).
    """

    def __init__(self, infers: Mapping[str, BaldSamInfer], top_fraction: float = 0.01, slices: int = 3,
                 score_key: str = "mean_mi_bits") -> None:
        super().__init__("bald", "BALD: mean mutual information of the current model's prediction (unlabeled "
                                 "images)", infers, slices)
        if score_key not in SCORE_KEYS:
            raise ValueError(f"score_key must be one of {SCORE_KEYS}, got {score_key!r}")
        if not 0.0 < top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
        self.top_fraction = float(top_fraction)
        self.score_key = score_key

    def measure(self, task: BaldSamInfer, image: Any) -> dict[str, Any]:
        segmenter = task.hub.model(task.model_config.name, task.store).segmenter
        maps = [segmenter.head_outputs(image, prompt)[index].extras["mutual_information"]
                for index, prompt in self.whole_slice_boxes(image).items()]
        mean_bits, topk_bits = mi_summary(maps, self.top_fraction)
        record = {"mean_mi_bits": round(mean_bits, 6), "topk_mean_mi_bits": round(topk_bits, 6),
                  "top_fraction": self.top_fraction}
        record["score"] = record[self.score_key]
        return record


class UsamScoring(ImageScoring):
    """The ``usam`` scoring method: lowest predicted IoU first (see the module docstring).

    Args:
        infers: the app's infer tasks; usam: the UncertainSAM heads (shipped name or file).
        slices: slices scored per volume.
    """

    def __init__(self, infers: Mapping[str, BaldSamInfer], usam: str = "general", slices: int = 3) -> None:
        super().__init__("usam", "UncertainSAM: the lowest predicted IoU of the current model's mask first "
                                 "(unlabeled images)", infers, slices)

        self.usam_file = resolve_usam(usam)
        self._models: dict[tuple[str, str | None], Any] = {}

    def is_current(self, record: Mapping[str, Any], task: BaldSamInfer, head: HeadVersion) -> bool:
        return super().is_current(record, task, head) and record.get("usam_sha256") == self.usam_file.sha256

    def _usam(self, task: BaldSamInfer) -> Any:
        loaded = task.hub.model(task.model_config.name, task.store)
        key = (task.model_config.name, loaded.head.sha256)
        if key not in self._models:
            self._models[key] = load_usam(self.usam_file.path, click_model=loaded.segmenter.click_model,
                                          sha256=self.usam_file.sha256)
        return self._models[key], loaded.segmenter

    def measure(self, task: BaldSamInfer, image: Any) -> dict[str, Any]:
        usam, segmenter = self._usam(task)
        boxes = self.whole_slice_boxes(image)
        axis = resolve_axis(None, image.affine) if image.ndim == 4 else 2
        embeddings = SliceWiseSamInferer(axis=axis).encode(segmenter.windowed(image), segmenter.predictor,
                                                           sorted(boxes))
        qualities = []
        for index, embedding in embeddings.items():
            box = whole_picture_box(embedding.original_hw)
            qualities.append(usam.assess(embedding, None, None, box).quality.to_dict())
        iou = float(np.mean([q["predicted_iou"] for q in qualities]))
        return {"score": round(1.0 - iou, 6), "predicted_iou": round(iou, 6),
                "prompt_gap": round(float(np.mean([q["prompt_gap"] for q in qualities])), 6),
                "task_gap": round(float(np.mean([q["task_gap"] for q in qualities])), 6),
                "usam_sha256": self.usam_file.sha256}

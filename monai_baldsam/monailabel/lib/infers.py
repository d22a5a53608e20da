"""MONAI Label infer tasks: SAM + Bayesian head on 3D Slicer's clicks, with the BALD next click in the answer.

Request (``POST /infer/<model>?image=<id>``, field ``params``): the keys of
:mod:`monai_baldsam.monailabel.lib.prompts` (``foreground``, ``background``, ``roi``/``box``, ``slice``, ``label``,
``reset_state``), plus ``mi_map`` (true: also return the mutual-information map), ``result_extension`` /
``result_dtype`` (what Slicer asks for: ``.nrrd``, ``uint8``).

Answer: the label (value 1 on the structure, 0 elsewhere) in the image's own geometry (same shape and affine;
MONAI Label's ``Writer``), and JSON params with

* ``next_click``: ``ijk`` (voxel ``[i, j, k]``; a picture's pixel is ``[x, y, 0]``), ``bald_score`` (nats, the
  neighbourhood-mean mutual information that was maximised) and ``bald_score_bits``, ``mutual_information`` and
  ``probability`` (foreground) at the point; ``null`` when nothing is left to score;
* ``mi_map`` (when asked): the MI in bits (0..1) in the image's geometry, a base64 file (PNG for pictures, NIfTI
  for volumes) with its ``format``;
* ``head`` (file, SHA-256, source), ``encoded_slices`` (encoder passes this request needed: 0 once the image's
  embeddings are cached) and ``latencies``.

2D models segment a picture, or one slice ``k`` of a volume (Slicer's ``slice``); the 3D model keeps a
:class:`~monai_baldsam.volume.VolumeSession` per (image, segment, client): each request applies only the prompts that
are new since the last one (Slicer sends all points every time), so a click re-segments its slice, re-propagates
from it and re-scores only slices whose prompt changed. ``reset_state``, a removed point or a moved-away ROI start
the session over.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import MetaTensor
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.transform.writer import Writer

from monai_baldsam.io import load_image as read_image, write_probability_map
from monai_baldsam.monailabel.lib.configs import ModelConfig
from monai_baldsam.monailabel.lib.heads import HeadStore
from monai_baldsam.monailabel.lib.hub import LoadedModel, ModelHub
from monai_baldsam.monailabel.lib.prompts import (
    SlicerPrompts,
    fit_to_image,
    parse_request,
    prompts_2d,
    prompts_3d,
    slice_of_request,
    truthy,
)
from monai_baldsam.suggestion import BITS_PER_NAT, best_volume_click, suggest_2d
from monai_baldsam.transforms.prompts import UserPrompts, check_prompts
from monai_baldsam.volume.session import VolumeSession

__all__ = ["BaldSamInfer", "InferResult", "next_click_record", "new_points"]

logger = logging.getLogger(__name__)


@dataclass
class InferResult:
    """What one request computed: the label ``(X, Y)`` / ``(I, J, K)``, the MI map in nats (same shape), the next
    click (``None`` when no candidate is left), extra params and, when the decode that made the label already
    judged it, UncertainSAM's quality (``quality``, the answer's dict)."""

    label: np.ndarray
    mutual_information: np.ndarray | None
    next_click: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] | None = None


def next_click_record(ijk: tuple[int, ...], score: float, mi: float, probability: float,
                      axis: int | None = None) -> dict[str, Any]:
    """The ``next_click`` JSON: voxel ``ijk`` (3 values), BALD score (nats and bits), MI and probability there."""
    record: dict[str, Any] = {"ijk": [int(v) for v in ijk], "bald_score": round(float(score), 6),
                              "bald_score_bits": round(float(score) * BITS_PER_NAT, 6),
                              "mutual_information": round(float(mi), 6), "probability": round(float(probability), 4)}
    if axis is not None:
        record.update({"axis": int(axis), "slice": int(ijk[axis])})
    return record


@dataclass
class _VolumeState:
    session: VolumeSession
    head_sha256: str | None
    foreground: Counter = field(default_factory=Counter)
    background: Counter = field(default_factory=Counter)
    roi: tuple[tuple[int, ...], tuple[int, ...]] | None = None


def _roi_key(prompts: SlicerPrompts) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if prompts.roi_ijk is None:
        return None
    return tuple(int(v) for v in prompts.roi_ijk[0]), tuple(int(v) for v in prompts.roi_ijk[1])


def new_points(current: np.ndarray, applied: Counter) -> tuple[list[tuple[int, ...]], bool]:
    """Points of ``current`` not yet applied, and whether every applied point is still there."""
    now = Counter(tuple(int(v) for v in p) for p in current)
    if applied - now:
        return [], False
    return list((now - applied).elements()), True


class BaldSamInfer(InferTask):
    """Interactive SAM + Bayesian head for one model (bundle); see the module docstring.

    Args:
        config: the model's :class:`ModelConfig` (its ``spatial_dims`` decides 2D or 3D).
        hub: the process's shared backbone / cache / heads.
        store: where the model's current head is published.
        footprint, gate: the BALD rule's neighbourhood and gate (default: the ``bald`` policy's).
        max_sessions: volume sessions kept (least recently used dropped first).
        usam: UncertainSAM heads (name or file) whose predicted IoU and gaps of the prompted slices' masks go into
            the answer as ``quality``; ``None``: none.
    """

    def __init__(self, config: ModelConfig, hub: ModelHub, store: HeadStore, footprint: float | None = None,
                 gate: float | None = None, max_sessions: int = 4, usam: str | None = None) -> None:
        super().__init__(type=InferType.DEEPGROW, labels=[config.label], dimension=config.spatial_dims,
                         description=config.description, config={"mi_map": False})
        self.model_config = config
        self.hub = hub
        self.store = store
        self.footprint = footprint
        self.gate = gate
        self.max_sessions = int(max_sessions)
        self.usam = usam
        self._sessions: OrderedDict[tuple[str, ...], _VolumeState] = OrderedDict()
        self._images: OrderedDict[tuple[str, int, int], MetaTensor] = OrderedDict()

    # ------------------------------------------------------------------ MONAI Label interface
    def info(self) -> dict[str, Any]:
        data = super().info()
        data["baldsam"] = {"head": self.store.current().to_dict(), "backbone": self.model_config.backbone,
                           "domain": self.model_config.domain, "spatial_dims": self.model_config.spatial_dims}
        return data

    def is_valid(self) -> bool:
        return self.model_config.head_path.is_file()

    def get_path(self, validate: bool = True) -> str | None:
        path = self.store.current().path
        return str(path) if path.is_file() or not validate else None

    def __call__(self, request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        start = time.perf_counter()
        prompts = parse_request(request)
        image_path = str(request["image"])
        with self.hub.lock:
            loaded = self.hub.model(self.model_config.name, self.store)
            misses = self.hub.cache.misses
            image = self.load_image(image_path)
            prompts = fit_to_image(prompts, tuple(int(v) for v in image.shape[1:]))
            loaded_at = time.perf_counter()
            if self.model_config.spatial_dims == 2:
                result = self._infer_2d(loaded, image, prompts)
            else:
                result = self._infer_3d(loaded, image, prompts, request)
            encoded = self.hub.cache.misses - misses
            quality = self._quality(loaded, image, prompts, result)
        infer_at = time.perf_counter()
        params: dict[str, Any] = {"next_click": result.next_click, "model": self.model_config.name,
                                  "head": loaded.head.to_dict(), "encoded_slices": int(encoded), **result.extra}
        if quality is not None:
            params["quality"] = quality
        if truthy(request.get("mi_map", False)) and result.mutual_information is not None:
            params["mi_map"] = self._mi_map(result.mutual_information, image)
        label_file, _ = Writer(ref_image="image")({
            "image_path": image_path, "pred": result.label.astype(np.uint8), "image": image,
            "result_extension": request.get("result_extension"), "result_dtype": request.get("result_dtype", "uint8"),
            "result_compress": request.get("result_compress", False), "logging": request.get("logging", "INFO")})
        done = time.perf_counter()
        params["latencies"] = {"pre": round(loaded_at - start, 3), "infer": round(infer_at - loaded_at, 3),
                               "post": round(done - infer_at, 3), "total": round(done - start, 3)}
        return label_file, params

    # ------------------------------------------------------------------ helpers
    def load_image(self, path: str) -> MetaTensor:
        """The image, from a small LRU keyed by path, mtime and size (a click does not re-read the file)."""
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        image = read_image(path)
        if image.ndim == 4 and image.shape[0] != 1:
            image = image[:1]  # a multi-channel volume: its first channel (Slicer shows the same)
        self._images[key] = image
        while len(self._images) > 4:
            self._images.popitem(last=False)
        return image

    def _quality(self, loaded: LoadedModel, image: MetaTensor, prompts: SlicerPrompts,
                 result: InferResult) -> dict[str, Any] | None:
        """UncertainSAM's predicted IoU and gaps of the head's mask on the prompted slice(s): a picture's dict, or
        ``{slice index: dict}`` on a volume; ``None`` without heads or on one slice of a volume. Both come from the
        decode that made the label: :meth:`_infer_2d` for a picture, the volume session's prompted slices
        (:meth:`_infer_3d`, ``None`` when no prompted slice was decoded, e.g. background clicks only)."""
        if self.usam is None or (self.model_config.spatial_dims == 2 and image.ndim == 4):
            return None
        if result.quality is not None or image.ndim == 4:
            return result.quality
        return loaded.segmenter.mask_quality(image, prompts_2d(prompts, 0), self.usam)[0].to_dict()

    def _mi_map(self, mi_nats: np.ndarray, image: MetaTensor) -> dict[str, Any]:
        bits = np.clip(mi_nats * BITS_PER_NAT, 0.0, 1.0).astype(np.float32)
        suffix = ".png" if image.ndim == 3 else ".nii.gz"
        with tempfile.TemporaryDirectory(prefix="baldsam_mi_") as tmp:
            out = write_probability_map(bits[None], image, Path(tmp) / f"mi{suffix}")
            data = out.read_bytes()
        return {"format": suffix, "units": "bits", "encoding": "base64", "shape": list(bits.shape),
                "max_bits": round(float(bits.max()), 6), "data": base64.b64encode(data).decode("ascii")}

    def _infer_2d(self, loaded: LoadedModel, image: MetaTensor, prompts: SlicerPrompts) -> InferResult:
        if image.ndim == 3:  # a picture (C, X, Y): Slicer's points are [x, y, 0]
            user = check_prompts(prompts_2d(prompts, 0), tuple(image.shape[1:]))  # checked once, passed down
            quality, output = None, None
            if self.usam is not None:  # one decoder call: the head's prediction and, from its tokens, its quality
                assessed = loaded.segmenter.assess(image, user, self.usam)[0]
                quality, output = assessed.quality.to_dict(), assessed.output
            suggestion = suggest_2d(loaded.segmenter, image, user, self.footprint, self.gate, output=output)
            x, y = suggestion.point
            click = next_click_record((x, y, 0), suggestion.score, suggestion.mutual_information,
                                      suggestion.probability)
            return InferResult(np.asarray(suggestion.maps["mask"]), np.asarray(suggestion.maps["mutual_information"]),
                               click, quality=quality)
        # one slice k of a volume: windowed per volume, segmented without propagation, scored on that slice only
        index = slice_of_request(prompts, int(image.shape[3]))
        session = VolumeSession(image, loaded.segmenter.predictor, axis=2, click_model=loaded.segmenter.click_model)
        on_slice = prompts_2d(prompts, index)  # (x, y) = (i, j) on slice k = index
        box = None if on_slice.box is None else [*on_slice.box[:2], float(index), *on_slice.box[2:]]
        session.update(UserPrompts(box=box, foreground=[[x, y, index] for x, y in on_slice.foreground],
                                   background=[[x, y, index] for x, y in on_slice.background]), propagate=False)
        label = session.label()[0].numpy()
        keep = np.zeros(label.shape, dtype=bool)
        keep[:, :, index] = True
        return self._volume_click(session, label * keep, keep, {"slice": index})

    def _volume_click(self, session: VolumeSession, label: np.ndarray, allowed: np.ndarray,
                      extra: dict[str, Any]) -> InferResult:
        try:
            uncertainty = session.uncertainty()
        except ValueError:  # nothing segmented (e.g. only background clicks): no suggestion yet
            return InferResult(label, None, None, {**extra, "next_click_reason": "nothing is segmented yet"})
        valid = allowed.copy()
        for i, j, k in session.clicked_ijk():
            valid[i, j, k] = False
        found = best_volume_click(uncertainty, valid, self.footprint, self.gate)
        mi = uncertainty.maps["mutual_information"]
        if found is None:
            return InferResult(label, mi, None, {**extra, "next_click_reason": "no candidate voxel is left"})
        point, score = found
        click = next_click_record(point, score, float(mi[point]), float(uncertainty.probability[point]),
                                  uncertainty.axis)
        return InferResult(label, mi, click, {**extra, "scored_slices": len(uncertainty.slices)})

    def _infer_3d(self, loaded: LoadedModel, image: MetaTensor, prompts: SlicerPrompts,
                  request: dict[str, Any]) -> InferResult:
        if image.ndim != 4:
            raise ValueError(f"model {self.model_config.name} segments 3D volumes, but {request['image']} is a 2D "
                             "image: use a 2D model for pictures")
        key = (str(request["image"]), str(prompts.label), str(request.get("client_id", "")))
        state = self._sessions.get(key)
        if state is not None and (prompts.reset or state.head_sha256 != loaded.head.sha256):
            state = None
        roi = _roi_key(prompts)
        fg_new, fg_kept = new_points(prompts.foreground_ijk, state.foreground if state else Counter())
        bg_new, bg_kept = new_points(prompts.background_ijk, state.background if state else Counter())
        roi_changed = roi is not None and (state is None or roi != state.roi)
        if state is not None and (not fg_kept or not bg_kept or (roi is None and state.roi is not None)):
            state = None  # a point or the ROI was removed: start over with everything the request holds
        if state is None:
            state = _VolumeState(loaded.segmenter.session(image, usam=self.usam), loaded.head.sha256)
            fg_new = [tuple(int(v) for v in p) for p in prompts.foreground_ijk]
            bg_new = [tuple(int(v) for v in p) for p in prompts.background_ijk]
            roi_changed = roi is not None
        session = state.session
        if fg_new or bg_new or roi_changed:
            session.update(prompts_3d(prompts, session.axis, fg_new, bg_new, with_roi=roi_changed), propagate=True)
            state.foreground.update(fg_new)
            state.background.update(bg_new)
            state.roi = roi
        elif not session.results:
            raise ValueError("no prompt given: place a foreground click or an ROI on the volume, then run the model")
        self._sessions[key] = state
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        label = session.label()[0].numpy()
        filled = session.slice_range()
        extra = {"axis": session.axis, "segmented_range": list(filled) if filled else None}
        result = self._volume_click(session, label, np.ones(label.shape, dtype=bool), extra)
        judged = session.anchor_quality()  # from the session's own decode of the prompted slices
        result.quality = {str(k): q.to_dict() for k, q in judged.items()} if judged else None
        return result

"""BALD click suggestions: where the next click should go, on a 2D image or over a 3D volume.

The Bayesian prediction head gives, for the current prompts, a per-pixel mutual information (MI) between the label
and the head's weights, ``H[E p] - E H[p]``. The suggested click follows the ``bald`` evaluation policy's rule
(:class:`~monai_baldsam.interaction.policies.BaldPolicy`; its settings are read from one ``BaldPolicy()`` instance, so
a change of the 2D defaults carries over): the pixel (voxel) whose in-plane neighbourhood has the highest mean MI, or
with ``region`` the centre of the uncertain region with the most MI, among pixels that are not clicked yet and not in
the square of half-width ``exclusion`` (a fraction of the slice's shorter side) around an earlier click on the same
slice. On a volume every slice with a result and the slice past each end of the result are scored
(:meth:`VolumeSession.uncertainty`).

Coordinates: 2D points are pixel ``(x, y)`` of the picture, 3D points voxel ``(i, j, k)``, as the CLI takes them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from monai.data import MetaTensor

from monai_baldsam.bayes.acquisition import exclude_squares
from monai_baldsam.interaction.model import ModelOutput
from monai_baldsam.interaction.policies import BaldPolicy
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.transforms.prompts import UserPrompts, ijk_to_slice_xy, slice_xy_to_ijk, to_slice_prompts
from monai_baldsam.volume.session import VolumeSession, VolumeUncertainty

__all__ = ["Suggestion", "suggest_2d", "exclude_near_clicks", "best_volume_click", "suggest_volume",
           "suggest_session", "BITS_PER_NAT"]

BITS_PER_NAT = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class Suggestion:
    """A proposed click and what the model says there.

    Attributes:
        point: ``(x, y)`` pixels (2D) or ``(i, j, k)`` voxels (3D).
        score: what the rule maximised: the neighbourhood-mean MI (nats), or with the region rule the uncertain
            region's summed MI.
        mutual_information: the MI at the point itself (nats); ``probability``: the foreground probability there.
        slice_index, axis: the slice the point lies on (3D; ``None`` for 2D).
        maps: ``mutual_information``, ``probability`` and the current ``mask`` in the image's own layout (``(X, Y)``
            or ``(I, J, K)``).
        timings: where the wait went (volumes): ``segment_s`` (the prompted slices and propagation, encoding
            included), ``encode_s`` and ``slices_encoded`` (the image encoder's share), ``score_s`` (BALD over the
            slices and the pick).
    """

    point: tuple[int, ...]
    score: float
    mutual_information: float
    probability: float
    slice_index: int | None = None
    axis: int | None = None
    maps: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    timings: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        names = ("x", "y") if len(self.point) == 2 else ("i", "j", "k")
        out: dict[str, Any] = {"point": dict(zip(names, (int(v) for v in self.point))),
                               "bald_score": round(self.score, 6), "bald_score_bits": round(self.score * BITS_PER_NAT, 6),
                               "mutual_information": round(self.mutual_information, 6),
                               "probability": round(self.probability, 4)}
        if self.slice_index is not None:
            out.update({"slice": int(self.slice_index), "axis": int(self.axis)})  # type: ignore[arg-type]
        return out


def suggest_2d(segmenter: Segmenter, image: MetaTensor, prompts: UserPrompts, footprint: float | None = None,
               gate: float | None = None, output: ModelOutput | None = None) -> Suggestion:
    """The next click on a 2D image ``(C, X, Y)`` given the current ``prompts`` (pixel ``(x, y)``); ``output``: the
    head's prediction for them when the caller decoded it already (:meth:`Segmenter.assess`), not decoded again."""
    if image.ndim != 3:
        raise ValueError(f"suggest_2d needs a 2D image (C, X, Y), got shape {tuple(image.shape)}: use suggest_volume")
    output = output if output is not None else segmenter.head_outputs(image, prompts)[0]
    mi_xy = output.extras["mutual_information"].T.astype(np.float64)
    prob_xy = output.probability.T
    valid = np.ones(mi_xy.shape, dtype=bool)
    prompt = to_slice_prompts(prompts, image.shape[1:])[0]
    policy = BaldPolicy(footprint=footprint, gate=gate)
    if prompt.points_xy is not None:
        xs, ys = np.rint(prompt.points_xy).astype(int).T
        valid[xs, ys] = False
        # the maps are (X, Y): rows are x, so the clicks go in as (column, row) = (y, x)
        valid = policy.candidates(valid, np.stack([ys, xs], axis=1))
    found = policy.pick(mi_xy, valid, output.mask.T.astype(bool))
    if found is None:
        raise ValueError("no pixel is left to click: every candidate was clicked already")
    (x, y), score = found
    return Suggestion(point=(x, y), score=score, mutual_information=float(mi_xy[x, y]),
                      probability=float(prob_xy[x, y]), maps={"mutual_information": mi_xy.astype(np.float32),
                                                              "probability": prob_xy.astype(np.float32),
                                                              "mask": output.mask.T.astype(np.uint8)})


def exclude_near_clicks(valid_stack: np.ndarray, slices: Sequence[int], clicks_ijk: np.ndarray, axis: int,
                        radius: int) -> np.ndarray:
    """``valid_stack`` without the squares of half-width ``radius`` pixels around each click, on the click's slice.

    Args:
        valid_stack: ``(S, X, Y)`` bool, the candidates on the slices ``slices`` along ``axis`` (``slice_xy``).
        slices: the slice index along ``axis`` of each of the ``S`` planes.
        clicks_ijk: ``(N, 3)`` voxels of the earlier clicks; a click on a slice that is not in ``slices`` removes
            nothing.
        axis: the slicing axis.
        radius: half-width in pixels (0: nothing is removed).

    Returns:
        A new bool array; ``valid_stack`` itself when nothing would be left (as the 2D rule drops an exclusion that
        leaves no pixel).
    """
    valid_stack = np.asarray(valid_stack, dtype=bool)
    if valid_stack.ndim != 3 or valid_stack.shape[0] != len(slices):
        raise ValueError(f"valid_stack must be (S, X, Y) with one plane per slice index, got shape "
                         f"{valid_stack.shape} for {len(slices)} slices")
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    clicks = np.asarray(clicks_ijk, dtype=np.int64).reshape(-1, 3)
    if len(clicks) == 0:
        return valid_stack
    plane_of = {int(k): s for s, k in enumerate(slices)}
    indices, points_xy = ijk_to_slice_xy(clicks, axis)
    centres = [(plane_of[int(k)], int(x), int(y)) for k, (x, y) in zip(indices, points_xy) if int(k) in plane_of]
    return exclude_squares(valid_stack, np.asarray(centres, dtype=np.int64).reshape(-1, 3), radius)


def best_volume_click(uncertainty: VolumeUncertainty, valid: np.ndarray, footprint: float | None = None,
                      gate: float | None = None, *, policy: BaldPolicy | None = None
                      ) -> tuple[tuple[int, int, int], float] | None:
    """The voxel ``(i, j, k)`` the bald rule picks over the scored slices of ``uncertainty`` among ``valid``
    ``(I, J, K)`` voxels, and its score; ``None`` when no scored voxel is valid.

    The rule and its settings come from ``policy`` (default ``BaldPolicy(footprint=footprint, gate=gate)``, the 2D
    ``bald`` policy's defaults): on each clicked slice the square of half-width ``policy.exclusion`` times the
    slice's shorter side around every click of ``uncertainty.clicks_ijk`` is excluded (dropped when it would leave
    no candidate); then ``best_region_click`` on the scored slices (with ``uncertainty.mask``) when
    ``policy.region``, else ``best_click`` with the policy's footprint and gate.
    """
    if policy is None:
        policy = BaldPolicy(footprint=footprint, gate=gate)
    elif footprint is not None or gate is not None:
        raise ValueError("give either footprint/gate or a policy, not both: set them on the policy")
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != uncertainty.probability.shape:
        raise ValueError(f"valid has shape {valid.shape}, the volume {uncertainty.probability.shape}")
    axis, slices = uncertainty.axis, list(uncertainty.slices)
    stack = np.moveaxis(uncertainty.maps["mutual_information"], axis, 0)[slices]
    allowed = np.moveaxis(valid, axis, 0)[slices]
    allowed = exclude_near_clicks(allowed, slices, uncertainty.clicks_ijk, axis, policy.exclusion_px(stack.shape))
    mask = None if uncertainty.mask is None else np.moveaxis(uncertainty.mask, axis, 0)[slices]
    if policy.region and mask is None:
        raise ValueError("the region rule needs the current mask: compute the maps with VolumeSession.uncertainty")
    found = policy.pick(stack, allowed, mask)
    if found is None:
        return None
    (s, x, y), score = found
    ijk = slice_xy_to_ijk([[x, y]], axis, slices[s])[0]
    return (int(ijk[0]), int(ijk[1]), int(ijk[2])), score


def suggest_volume(segmenter: Segmenter, image: MetaTensor, prompts: UserPrompts, footprint: float | None = None,
                   gate: float | None = None, progress: Callable[[list[int]], object] | None = None) -> Suggestion:
    """The next click over a volume ``(1, I, J, K)``: segment and propagate from ``prompts`` (voxel ``(i, j, k)``),
    score every slice with a result plus the slice past each end, and return the best voxel."""
    session = segmenter.session(image)
    predictor = session.predictor
    encoded, encode_s, start = predictor.encoded_images, predictor.encode_seconds, time.perf_counter()
    session.update(prompts, propagate=True)
    segmented = time.perf_counter()
    suggestion = suggest_session(session, footprint, gate, progress)
    timings = {"segment_s": round(segmented - start, 3), "score_s": round(time.perf_counter() - segmented, 3),
               "encode_s": round(predictor.encode_seconds - encode_s, 3),
               "slices_encoded": predictor.encoded_images - encoded}
    return replace(suggestion, timings=timings)


def suggest_session(session: VolumeSession, footprint: float | None = None, gate: float | None = None,
                    progress: Callable[[list[int]], object] | None = None) -> Suggestion:
    """The next click over a prompted :class:`VolumeSession` (as :func:`suggest_volume`, for a caller that keeps
    the session, e.g. to read its prompted slices' quality)."""
    uncertainty = session.uncertainty(progress)
    valid = np.ones(session.spatial_shape, dtype=bool)
    for i, j, k in session.clicked_ijk():
        valid[i, j, k] = False
    found = best_volume_click(uncertainty, valid, footprint, gate)
    if found is None:
        raise ValueError("no voxel is left to click: every candidate was clicked already")
    point, score = found
    mi = uncertainty.maps["mutual_information"]
    return Suggestion(point=point, score=score, mutual_information=float(mi[point]),
                      probability=float(uncertainty.probability[point]), slice_index=point[uncertainty.axis],
                      axis=uncertainty.axis, maps={"mutual_information": mi, "probability": uncertainty.probability,
                                                   "mask": session.label()[0].numpy()})

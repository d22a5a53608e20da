"""Click simulation on 3D volumes: one box on a slice, propagation, then clicks placed by a policy, Dice over the
whole volume after every interaction.

A volume session (:class:`~monai_baldsam.volume.VolumeSession` with a Bayesian head as its click model) starts from
the ground truth's bounding box on the slice with the largest tumour area (or on the central slice of its range,
``box_on="central"``; interaction 1) and propagates. Each
further interaction is one click at a voxel ``(i, j, k)``: the simulated user answers its polarity from the ground
truth, the clicked slice is re-segmented by the head with the slice's box and every click on it, and the result
re-propagates outward from there. Policies:

* ``oracle``: the RITM user in 3D, the voxel of the larger error region (false negatives or false positives of the
  whole volume) farthest from the region's boundary, distances in mm (anisotropic voxels);
* ``random_error``: a uniformly drawn voxel of the error region (seeded);
* ``bald``: the voxel :func:`~monai_baldsam.suggestion.best_volume_click` proposes: the head's mutual information over
  every segmented slice plus the slice past each end, with the 2D ``bald`` policy's rule and settings (pooled
  in-plane, or the region rule; the neighbourhood of earlier clicks on their slice excluded). Blind to the truth.

Pure bookkeeping lives here; the CLI (``baldsam evaluate`` on a folder of volumes) and the benchmark call
:func:`evaluate_volumes`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import distance_transform_edt

from monai_baldsam.evaluation.runner import session_rng
from monai_baldsam.interaction.metrics import summarize_curves
from monai_baldsam.io.cases import VolumeCase
from monai_baldsam.io.readers import load_image, load_mask
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.suggestion import best_volume_click
from monai_baldsam.transforms.prompts import UserPrompts
from monai_baldsam.volume.propagation import PropagationConfig

__all__ = ["VOLUME_POLICIES", "VolumeSessionResult", "slice_range", "range_error",
           "first_box", "oracle_voxel", "random_error_voxel", "run_volume_session", "evaluate_volumes",
           "summarize_volume_results"]

VOLUME_POLICIES = ("oracle", "random_error", "bald")


@dataclass
class VolumeSessionResult:
    """Dice over the volume after every interaction (interaction 1: the box), the clicks ``(i, j, k, label)``, and
    the slices the label covers after every interaction (``[first, last]`` along the session's axis, ``None`` for
    an empty label) against the truth's (``truth_slices``)."""

    case: str
    policy: str
    dice: list[float]
    clicks: list[list[int]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    slices_scored: list[int] = field(default_factory=list)
    truth_slices: list[int] | None = None
    label_slices: list[list[int] | None] = field(default_factory=list)
    axis: int = 2


def first_box(truth: np.ndarray, axis: int, on: str = "largest") -> UserPrompts:
    """The ground truth's bounding box on one slice along ``axis``, as a 3D box prompt: ``on="largest"`` the slice
    with the largest area (what the click evaluation starts from), ``"central"`` the middle of the object's slice
    range (the lower one of two; issue 5's propagation criterion)."""
    if not truth.any():
        raise ValueError("the ground truth is empty: nothing to segment")
    areas = np.moveaxis(truth, axis, 0).reshape(truth.shape[axis], -1).sum(1)
    if on == "largest":
        index = int(np.argmax(areas))
    elif on == "central":
        filled = np.nonzero(areas)[0]
        index = int(filled[0] + filled[-1]) // 2
    else:
        raise ValueError(f"on must be 'largest' or 'central', got {on!r}")
    on_slice = np.moveaxis(truth, axis, 0)[index]
    xs, ys = np.nonzero(on_slice)
    return UserPrompts(box=[int(xs.min()), int(ys.min()), index, int(xs.max()), int(ys.max())])


def _padded_edt(region: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    if not region.any():
        return np.zeros(region.shape)
    return distance_transform_edt(np.pad(region, 1), sampling=list(spacing))[1:-1, 1:-1, 1:-1]


def oracle_voxel(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], valid: np.ndarray
                 ) -> tuple[tuple[int, int, int], int] | None:
    """The RITM user's click in 3D: the farthest voxel (mm) of the larger error region; ``None`` without errors."""
    fn = np.where(valid, _padded_edt(truth & ~pred, spacing), 0.0)
    fp = np.where(valid, _padded_edt(pred & ~truth, spacing), 0.0)
    fn_max, fp_max = fn.max(), fp.max()
    if max(fn_max, fp_max) <= 0:
        return None
    positive = fn_max > fp_max
    index = np.unravel_index(int(np.argmax(fn if positive else fp)), pred.shape)
    return (int(index[0]), int(index[1]), int(index[2])), int(positive)


def random_error_voxel(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray, rng: np.random.Generator
                       ) -> tuple[tuple[int, int, int], int] | None:
    """A uniformly drawn voxel of the error region; ``None`` without errors."""
    candidates = np.flatnonzero((pred != truth) & valid)
    if candidates.size == 0:
        return None
    index = np.unravel_index(int(candidates[rng.integers(candidates.size)]), pred.shape)
    return (int(index[0]), int(index[1]), int(index[2])), int(truth[index])


def slice_range(mask: np.ndarray, axis: int) -> list[int] | None:
    """``[first, last]`` index of the slices along ``axis`` that hold a voxel of ``mask``; ``None`` when empty."""
    filled = np.nonzero(np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).any(axis=1))[0]
    return None if filled.size == 0 else [int(filled[0]), int(filled[-1])]


def range_error(label: list[int] | None, truth: list[int]) -> int:
    """Slices by which ``label``'s range misses ``truth``'s at its worse end (``first`` or ``last``, either way);
    an empty label misses by the truth's whole length."""
    if label is None:
        return truth[1] - truth[0] + 1
    return max(abs(label[0] - truth[0]), abs(label[1] - truth[1]))


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(2.0 * (pred & truth).sum() / max(1, int(pred.sum()) + int(truth.sum())))


def run_volume_session(segmenter: Segmenter, image, truth: np.ndarray, policy: str, n_interactions: int,
                       rng: np.random.Generator, name: str = "", box_on: str = "largest",
                       config: PropagationConfig | None = None) -> VolumeSessionResult:
    """One simulated session on a volume (see the module docstring); ``segmenter`` must carry a head for ``bald``;
    the first box is on the ``box_on`` slice (``largest`` or ``central``, :func:`first_box`); ``config``: the
    propagation settings (default :class:`~monai_baldsam.volume.PropagationConfig`)."""
    if policy not in VOLUME_POLICIES:
        raise ValueError(f"unknown volume policy {policy!r}: choose one of {', '.join(VOLUME_POLICIES)}")
    if n_interactions < 1:
        raise ValueError(f"the number of interactions must be at least 1, got {n_interactions}")
    if policy == "bald" and segmenter.click_model is None:
        raise ValueError("the bald policy needs a Bayesian prediction head: create the segmenter with head=...")
    session = segmenter.session(image, config)
    spacing = session.spacing_ijk
    start = time.perf_counter()
    session.update(first_box(truth, session.axis, on=box_on), propagate=True)
    label = session.label()[0].numpy().astype(bool)
    result = VolumeSessionResult(name, policy, [_dice(label, truth)], seconds=[time.perf_counter() - start],
                                 truth_slices=slice_range(truth, session.axis),
                                 label_slices=[slice_range(label, session.axis)], axis=session.axis)
    valid = np.ones(truth.shape, dtype=bool)
    for _ in range(2, n_interactions + 1):
        start = time.perf_counter()
        if policy == "oracle":
            choice = oracle_voxel(label, truth, spacing, valid)
        elif policy == "random_error":
            choice = random_error_voxel(label, truth, valid, rng)
        else:
            uncertainty = session.uncertainty()
            found = best_volume_click(uncertainty, valid)
            choice = None if found is None else (found[0], int(truth[found[0]]))
            result.slices_scored.append(len(uncertainty.slices))
        if choice is None:
            missing = n_interactions - len(result.dice)
            result.dice.extend([result.dice[-1]] * missing)
            result.label_slices.extend([result.label_slices[-1]] * missing)
            break
        ijk, answer = choice
        valid[ijk] = False
        clicks = {"foreground" if answer else "background": [list(ijk)]}
        session.update(UserPrompts(**clicks), propagate=True)
        label = session.label()[0].numpy().astype(bool)
        result.dice.append(_dice(label, truth))
        result.label_slices.append(slice_range(label, session.axis))
        result.clicks.append([*ijk, answer])
        result.seconds.append(time.perf_counter() - start)
    return result


def evaluate_volumes(cases: Sequence[VolumeCase], segmenter: Segmenter, policies: Sequence[str], n_interactions: int,
                     seed: int = 0, progress: Callable[[Sequence[VolumeCase]], object] | None = None,
                     box_on: str = "largest", config: PropagationConfig | None = None) -> list[VolumeSessionResult]:
    """Every policy on every volume, the first box on the ``box_on`` slice, propagated with ``config``; a volume's
    slices are encoded once and shared by its policies (the segmenter's embedding cache)."""

    results = []
    for case in (progress(cases) if progress is not None else cases):
        image = load_image(case.image)
        truth = load_mask(case.mask, reference=image)[0].numpy().astype(bool)
        for policy in policies:
            rng = session_rng(seed, case.name, f"volume:{policy}")
            results.append(run_volume_session(segmenter, image, truth, policy, n_interactions, rng, case.name,
                                              box_on, config))
    return results


def summarize_volume_results(results: Sequence[VolumeSessionResult]) -> dict[str, dict]:
    """Per policy: mean Dice after every interaction (``mdice_curve``), ``mdice_at``, NoC at Dice 0.80/0.85/0.90
    (the budget when never reached) and per-volume curves and clicks."""
    out: dict[str, dict] = {}
    for policy in dict.fromkeys(r.policy for r in results):
        rows = [r for r in results if r.policy == policy]
        table = summarize_curves(np.array([r.dice for r in rows]))
        clicks_s = [s for r in rows for s in r.seconds[1:]]
        out[policy] = {
            "n_volumes": table["n_images"], "clicks": table["clicks"], "mdice_curve": table["miou_curve"],
            "mdice_at": table["miou_at"], "noc80": table["noc80"], "noc85": table["noc85"], "noc90": table["noc90"],
            "failures_at_budget": table["failures_at_budget"], "auc": table["auc"],
            "seconds_per_click": float(np.mean(clicks_s)) if clicks_s else None,
            "within_one_slice_after_box": _share_within(rows, 1),
            "per_volume": [{"name": r.case, "dice": [round(v, 4) for v in r.dice], "clicks": r.clicks,
                            "slices_scored": r.slices_scored, "axis": r.axis, "truth_slices": r.truth_slices,
                            "label_slices": r.label_slices,
                            "slices_missed": [range_error(found, r.truth_slices) for found in r.label_slices]
                            if r.truth_slices is not None else None} for r in rows],
        }
    return out


def _share_within(rows: Sequence[VolumeSessionResult], slices: int) -> float | None:
    """Share of volumes whose label after the box covers the truth's slice range within ``slices`` at both ends."""
    judged = [r for r in rows if r.truth_slices is not None and r.label_slices]
    if not judged:
        return None
    return float(np.mean([range_error(r.label_slices[0], r.truth_slices) <= slices for r in judged]))

"""BALD scoring over a volume session: which slices are scored, the prompt each is decoded with, and the click
model's uncertainty maps assembled into ``(I, J, K)`` volumes, each slice's maps cached under its prompt's signature.

:class:`~monai_baldsam.volume.session.VolumeSession` delegates here: it owns the results, prompts and decoding; these
functions read them. Pure apart from the cache they are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Protocol

import numpy as np

from monai_baldsam.interaction.model import ModelOutput
from monai_baldsam.transforms.prompts import SlicePrompt
from monai_baldsam.volume.propagation import PropagationConfig, propagation_prompt
from monai_baldsam.volume.uncertainty_cache import SliceScores, SliceUncertaintyCache, prompt_signature

__all__ = ["VolumeUncertainty", "SlicePrediction", "has_foreground", "only_background", "slice_scores",
           "scored_slices", "past_end_prompt", "scoring_prompt", "score_slices"]


@dataclass(frozen=True)
class VolumeUncertainty:
    """A click model's maps over the scored slices of a volume, each ``(I, J, K)`` float32 (0 off the scored slices).

    Attributes:
        maps: name -> volume (``mutual_information``, ``predictive_entropy``, ``expected_entropy``, in nats).
        probability: the foreground probability.
        slices: the scored slice indices along ``axis``.
        axis: the slicing axis.
        clicks_ijk: ``(N, 3)`` int64 voxels of every click the user had given when the maps were computed (a BALD
            rule excludes their neighbourhood, see :func:`monai_baldsam.suggestion.best_volume_click`).
        mask: ``(I, J, K)`` bool, the session's result at that time (``None``: not recorded).
    """

    maps: Mapping[str, np.ndarray]
    probability: np.ndarray
    slices: tuple[int, ...]
    axis: int
    clicks_ijk: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    mask: np.ndarray | None = None


class SlicePrediction(Protocol):
    """What scoring reads of a slice's result: its mask ``(a, b)``, its low-resolution logits and its prompt."""

    mask_ab: np.ndarray
    low_res_logits: np.ndarray
    prompt: SlicePrompt


def has_foreground(labels: np.ndarray | None) -> bool:
    """Whether click ``labels`` hold a foreground click."""
    return labels is not None and bool(np.asarray(labels).astype(bool).any())


def only_background(prompt: SlicePrompt) -> bool:
    """A prompt of background clicks only (no box, no mask, no foreground click): nothing of the object there."""
    if prompt.box_xyxy is not None or prompt.mask_logits is not None or prompt.labels is None:
        return False
    return len(prompt.labels) > 0 and not has_foreground(prompt.labels)


def slice_scores(output: ModelOutput) -> SliceScores:
    """A click model's output as cached uncertainty scores (float32 maps, SAM orientation)."""
    return SliceScores(np.asarray(output.probability, dtype=np.float32),
                       {k: np.asarray(v, dtype=np.float32) for k, v in output.extras.items()})


def scored_slices(results: Mapping[int, SlicePrediction], num_slices: int, boxed: Iterable[int] = ()) -> list[int]:
    """The slices BALD looks at: every slice with a non-empty result, plus the slice past each end of every run of
    such slices (where the object may continue), plus the ``boxed`` slices (where the user drew a box: the object is
    there even when its mask came out empty, e.g. a structure of a few pixels)."""
    filled = sorted(i for i, r in results.items() if r.mask_ab.any())
    chosen = set(filled) | {int(i) for i in boxed if 0 <= int(i) < num_slices}
    for index in filled:
        for step in (-1, 1):
            near = index + step
            if 0 <= near < num_slices and near not in chosen and not (
                    near in results and results[near].mask_ab.any()):
                chosen.add(near)
    return sorted(chosen)


def past_end_prompt(index: int, results: Mapping[int, SlicePrediction], spacing_xy: tuple[float, float],
                    config: PropagationConfig) -> SlicePrompt | None:
    """What the next propagation step would prompt slice ``index`` with, from a neighbour with a non-empty result
    (slice ``index + 1`` first, then ``index - 1``); ``None`` when neither has one."""
    for step in (-1, 1):
        near = results.get(index - step)
        if near is not None and near.mask_ab.any():
            return propagation_prompt(near.mask_ab, near.low_res_logits, spacing_xy, config)
    return None


def scoring_prompt(index: int, user_prompts: Mapping[int, SlicePrompt], results: Mapping[int, SlicePrediction],
                   spacing_xy: tuple[float, float], config: PropagationConfig) -> SlicePrompt | None:
    """The prompt a slice's maps are decoded with: the user's on a prompted slice, the one that produced the result
    elsewhere; past an end, the next propagation step's prompt, with the user's answers there.

    A slice past an end that the user answered "background" is left empty, but its maps keep the question BALD asked
    (the neighbour's box) together with the answers: decoded from the background clicks alone, the head would be
    scoring a question nobody asked, and BALD asked again on that slice at an arbitrary place.
    """
    user = user_prompts.get(index)
    if user is not None and not only_background(user):
        return user
    result = results.get(index)
    if result is not None and result.mask_ab.any():
        return result.prompt
    prompt = past_end_prompt(index, results, spacing_xy, config)
    if prompt is not None and user is not None:
        prompt = replace(prompt, points_xy=user.points_xy, labels=user.labels)
    return prompt if prompt is not None else user


def score_slices(slices: Iterable[int], prompt_of: Callable[[int], SlicePrompt | None],
                 decode: Callable[[int, SlicePrompt], ModelOutput], cache: SliceUncertaintyCache, model_tag: str,
                 shape: tuple[int, int, int], axis: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """``(maps, probability, recomputed)``: each slice's maps (decoded by ``decode`` with ``prompt_of(index)`` unless
    ``cache`` holds them for that prompt's signature) written into ``shape`` volumes along ``axis``; ``recomputed``
    lists the slices decoded here."""
    maps: dict[str, np.ndarray] = {}
    probability = np.zeros(shape, dtype=np.float32)
    recomputed: list[int] = []
    for index in slices:
        prompt = prompt_of(index)
        if prompt is None:
            continue
        signature = prompt_signature(index, prompt, model_tag)
        scores = cache.get(index, signature)
        if scores is None:  # new or changed prompt on this slice: decode it again
            scores = slice_scores(decode(index, prompt))
            cache.put(index, signature, scores)
            recomputed.append(index)
        np.moveaxis(probability, axis, 0)[index] = scores.probability.T
        for name, value in scores.maps.items():
            volume = maps.setdefault(name, np.zeros(shape, dtype=np.float32))
            np.moveaxis(volume, axis, 0)[index] = value.T
    return maps, probability, recomputed

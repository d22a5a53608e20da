"""The one-shot baseline: points drawn at once from the ground-truth interior, decoded with no feedback.

This is the automated strategy of the PointPrompt benchmark that BALD-SAM compares against ("random sampling: points
drawn from the ground-truth mask"), set in our session protocol so that reports and ``baldsam compare`` treat it as
one more policy (``one_shot``):

* At budget ``k`` the model gets the shared first prompt plus ``k - 1`` points, all at once, with no previous mask
  (``mask_input`` None): with a box first, the box plus ``k - 1`` points; with a click first, ``k`` points (the shared
  first click, then ``k - 1`` drawn ones). Interaction 1 is the same as every other policy's, so a difference at
  budget 5 or 10 measures only what the points added.
* The points are drawn once per image, before any prediction is looked at: one seeded random order of the interior
  pixels, of which budget ``k`` takes the first ``k - 1``. A prefix of a uniform random order is a uniform random
  subset, so each budget sees ``k - 1`` points drawn uniformly without replacement, and the budgets are nested (one
  sample path, as a user who had placed all points at once would see it at each count).
* Interior: the ground-truth pixels at least ``min_depth_px`` (default 2) from the boundary, the image border
  counting as boundary (:func:`~monai_baldsam.interaction.geometry.padded_distance_transform`); the whole mask when
  it is thinner than that. Uniform over the interior, not the deepest pixels: the deepest pixels crowd around the
  medial axis, so ``k`` of them repeat nearly the same point and the baseline would barely change with ``k``; uniform
  sampling is also PointPrompt's random strategy. The one-pixel boundary ring is left out because a ground-truth
  boundary is uncertain by about a pixel, and a point there is as likely to be wrong as right.
* Every point is positive (it lies in the ground truth). The session protocol still applies: a prediction equal to
  the ground truth ends the session and keeps its IoU; a mask with fewer interior pixels than the budget keeps its
  last IoU once they are used up.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from monai_baldsam.interaction.geometry import padded_distance_transform
from monai_baldsam.interaction.policies import Click, ClickContext, ClickPolicy, Prompt, register_policy

__all__ = ["DEFAULT_MIN_DEPTH_PX", "interior_candidates", "interior_order", "one_shot_points", "OneShotPolicy"]

#: Points are drawn from ground-truth pixels at least this far (pixels) from the boundary.
DEFAULT_MIN_DEPTH_PX = 2.0


def _truth_mask(truth: np.ndarray) -> np.ndarray:
    mask = np.asarray(truth).astype(bool, copy=False)
    if mask.ndim != 2:
        raise ValueError(f"the ground truth must be one (H, W) mask, got shape {mask.shape}")
    if not mask.any():
        raise ValueError("the ground-truth mask is empty: the one-shot baseline draws points inside an object")
    return mask


def interior_candidates(truth: np.ndarray, min_depth_px: float = DEFAULT_MIN_DEPTH_PX) -> np.ndarray:
    """``(H, W)`` bool, the pixels of ``truth`` at least ``min_depth_px`` from its boundary (the image border counts
    as boundary), or all of ``truth`` when none is that deep."""
    mask = _truth_mask(truth)
    if min_depth_px < 0:
        raise ValueError(f"min_depth_px is a distance in pixels >= 0, got {min_depth_px}")
    deep = padded_distance_transform(mask[None])[0] >= float(min_depth_px)
    return deep if deep.any() else mask


def interior_order(truth: np.ndarray, rng: np.random.Generator, min_depth_px: float = DEFAULT_MIN_DEPTH_PX
                   ) -> np.ndarray:
    """Every interior pixel of ``truth`` ``(H, W)`` in one uniform random order drawn from ``rng``: ``(M, 2)`` int64
    ``(x, y)``. Its first ``k`` rows are ``k`` interior points drawn uniformly without replacement."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    candidates = interior_candidates(truth, min_depth_px)
    flat = np.flatnonzero(candidates)
    order = flat[rng.permutation(flat.size)]
    width = candidates.shape[1]
    return np.stack([order % width, order // width], axis=1).astype(np.int64)


def one_shot_points(truth: np.ndarray, k: int, rng: np.random.Generator,
                    min_depth_px: float = DEFAULT_MIN_DEPTH_PX) -> np.ndarray:
    """``k`` interior points of ``truth`` drawn at once, uniformly without replacement: ``(min(k, M), 2)`` int64
    ``(x, y)`` (fewer when the interior has only ``M < k`` pixels). The same ``rng`` state gives nested answers for
    every ``k`` (see :func:`interior_order`)."""
    if k < 0:
        raise ValueError(f"the number of points must be >= 0, got {k}")
    return interior_order(truth, rng, min_depth_px)[:k]


class OneShotPolicy(ClickPolicy):
    """The one-shot baseline as a policy (see the module docstring): interaction ``k`` decodes the first prompt plus
    the first ``k - 1`` points of one seeded interior order, with ``mask_input`` None.

    The order is drawn from the session's generator when interaction 2 is placed (before any later prediction is
    read), so one instance can run several sessions one after another, each with its own draw.

    Args:
        min_depth_px: interior depth in pixels (see :func:`interior_candidates`).
    """

    name = "one_shot"
    uses_ground_truth = True

    def __init__(self, min_depth_px: float = DEFAULT_MIN_DEPTH_PX) -> None:
        if min_depth_px < 0:
            raise ValueError(f"min_depth_px is a distance in pixels >= 0, got {min_depth_px}")
        self.min_depth_px = float(min_depth_px)
        self._order: np.ndarray | None = None
        self._position = 0

    def choose(self, context: ClickContext) -> Click | None:
        if context.interaction == 2:
            if context.ground_truth is None:
                raise RuntimeError(f"policy {self.name!r} needs the ground truth but the context has none")
            self._order = interior_order(context.ground_truth, context.rng, self.min_depth_px)
            self._position = 0
        elif self._order is None:
            raise RuntimeError(f"policy {self.name!r} draws its points at interaction 2; it was asked for "
                               f"interaction {context.interaction} first")
        while self._position < len(self._order):
            x, y = (int(v) for v in self._order[self._position])
            self._position += 1
            if context.valid[y, x]:  # skips the first click's pixel
                return Click((x, y), 1)
        return None

    def next_prompt(self, context: ClickContext, answer: Callable[[tuple[int, int]], int]) -> Prompt | None:
        """The first prompt and every drawn point so far, with no previous mask: no feedback."""
        prompt = super().next_prompt(context, answer)
        return None if prompt is None else prompt._replace(mask_input=None)


register_policy(OneShotPolicy.name, OneShotPolicy)

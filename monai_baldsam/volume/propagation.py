"""How one slice's result prompts its neighbour: the propagation settings and the prompt they give.

The previous slice's mask becomes the next slice's prompt: its bounding box (optionally grown by a margin in mm, so
the margin means the same on anisotropic pixels) and/or its low-resolution logits as SAM's ``mask_input``. Measured
on the dev volumes with LiteMedSAM (README, "Volumes"): the box grown by 2 mm works best. The tight box makes the
masks shrink slice after slice (SAM segments just inside its box), 3 mm and more let them grow into neighbours,
adding the logits as ``mask_input`` lowers the Dice, and ``mask_input`` alone gives LiteMedSAM nothing (empty masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np
import torch

from monai_baldsam.transforms.prompts import SlicePrompt
from monai_baldsam.transforms.volume_geometry import expand_box_mm, mask_box_slice_xy
from monai_baldsam.volume.stopping import StopRule

__all__ = ["PropagationPrompt", "PropagationConfig", "propagation_prompt"]


class PropagationPrompt(str, Enum):
    """What of the previous slice's result prompts the next slice."""

    BOX = "box"
    MASK = "mask"
    BOX_AND_MASK = "box+mask"


@dataclass(frozen=True)
class PropagationConfig:
    """Settings of slice-by-slice propagation.

    Attributes:
        prompt: which prompt the previous slice gives (:class:`PropagationPrompt`).
        margin_mm: the previous mask's bounding box grows by this much on every side (mm, converted per in-plane
            axis with the pixel size).
        stop: the stopping rule (:class:`StopRule`).
        ring_mm: width of the ring around the anchor's mask whose embedding is the object's surroundings (see
            :mod:`monai_baldsam.volume.appearance`).
        max_slices: at most this many slices per direction (``None``: until the rule stops it or the volume ends).
        keep_past_rejection: when a re-propagation from a corrected slice is rejected by the stop rule at a slice
            that still holds a result of the earlier run through that slice, keep that result and the ones beyond it
            (the rule accepted them before) instead of clearing them. A first propagation has nothing to keep, and a
            corrected slice left empty ("not here") still clears what came through it.
    """

    prompt: PropagationPrompt = PropagationPrompt.BOX
    margin_mm: float = 2.0
    stop: StopRule = field(default_factory=StopRule)
    ring_mm: float = 5.0
    max_slices: int | None = None
    keep_past_rejection: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", PropagationPrompt(self.prompt))
        if not self.margin_mm >= 0:
            raise ValueError(f"margin_mm must be >= 0 mm, got {self.margin_mm}")
        if not self.ring_mm > 0:
            raise ValueError(f"ring_mm must be > 0 mm, got {self.ring_mm}")
        if self.max_slices is not None and self.max_slices < 0:
            raise ValueError(f"max_slices must be >= 0 or None (no limit), got {self.max_slices}")


def propagation_prompt(previous_mask_ab: np.ndarray, previous_low_res: torch.Tensor | None,
                       spacing_xy: Sequence[float], config: PropagationConfig) -> SlicePrompt | None:
    """The prompt for the slice next to one whose result is ``previous_mask_ab`` (``[x, y]``, ``slice_xy``).

    Args:
        previous_mask_ab: the previous slice's binary mask, indexed ``[x, y]``.
        previous_low_res: its low-resolution logits ``1 x h x w`` (needed for the ``mask`` prompts).
        spacing_xy: pixel size in mm along ``x`` and ``y``.
        config: the propagation settings.

    Returns:
        The prompt, or ``None`` when the previous mask is empty (nothing to propagate).
    """
    box = mask_box_slice_xy(previous_mask_ab)
    if box is None:
        return None
    prompt = SlicePrompt()
    if config.prompt in (PropagationPrompt.BOX, PropagationPrompt.BOX_AND_MASK):
        prompt.box_xyxy = expand_box_mm(box, config.margin_mm, spacing_xy, previous_mask_ab.shape)
    if config.prompt in (PropagationPrompt.MASK, PropagationPrompt.BOX_AND_MASK):
        if previous_low_res is None:
            raise ValueError(f"propagation prompt {config.prompt.value!r} needs the previous slice's low-res logits")
        prompt.mask_logits = previous_low_res
    return prompt

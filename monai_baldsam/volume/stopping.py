"""When slice-by-slice propagation stops: the object has ended, or SAM has stopped following it.

A propagated slice is *accepted* unless one of these holds (checked in this order; the first one is the reason):

* ``empty`` - no foreground pixel;
* ``tiny`` - area below ``min_area_mm2``;
* ``low_iou`` - SAM's predicted IoU below ``min_iou``;
* ``appearance`` - the mask's appearance margin below ``min_appearance_margin``: on SAM's image embedding it looks
  more like the prompted object's surroundings than like the object (:mod:`monai_baldsam.volume.appearance`);
* ``area_drop`` - area below ``min_area_ratio`` times the previous (accepted) slice's area: SAM kept only a scrap;
* ``area_jump`` - area above ``max_area_ratio`` times the previous slice's area: the mask leaked into a neighbour.

The first rejected slice is left empty and propagation in that direction ends there. Areas are in mm², so one rule
serves volumes of any in-plane pixel size. All functions here are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

__all__ = ["StopReason", "StopRule", "accepted_run"]


class StopReason(str, Enum):
    """Why propagation in one direction ended."""

    EMPTY = "empty"
    TINY = "tiny"
    LOW_IOU = "low_iou"
    APPEARANCE = "appearance"
    AREA_DROP = "area_drop"
    AREA_JUMP = "area_jump"
    #: the volume's first or last slice was reached.
    VOLUME_END = "volume_end"
    #: the next slice holds the user's own prompts (propagation never overwrites them).
    USER_SLICE = "user_slice"
    #: the next slice belongs to the propagation from another prompted slice.
    OTHER_CHAIN = "other_chain"
    #: ``max_slices`` slices were propagated.
    MAX_SLICES = "max_slices"


@dataclass(frozen=True)
class StopRule:
    """Thresholds of the stopping rule (see the module docstring).

    Attributes:
        min_area_mm2: smallest accepted mask area in mm² (> 0 also rejects empty masks).
        min_iou: smallest accepted SAM predicted IoU (0 disables the check).
        min_appearance_margin: smallest accepted appearance margin, in [-2, 2] (``-inf`` disables).
        min_area_ratio: smallest accepted ratio area / previous area (0 disables).
        max_area_ratio: largest accepted ratio area / previous area (``inf`` disables).
    """

    min_area_mm2: float = 10.0
    min_iou: float = 0.5
    min_appearance_margin: float = -0.15
    min_area_ratio: float = 0.2
    max_area_ratio: float = math.inf

    def __post_init__(self) -> None:
        if not self.min_area_mm2 >= 0:
            raise ValueError(f"min_area_mm2 must be >= 0 mm², got {self.min_area_mm2}")
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou is a predicted IoU threshold in [0, 1], got {self.min_iou}")
        if not (self.min_appearance_margin == -math.inf or -2.0 <= self.min_appearance_margin <= 2.0):
            raise ValueError(
                f"min_appearance_margin is a difference of cosine similarities in [-2, 2] (-inf disables it), got "
                f"{self.min_appearance_margin}"
            )
        if not 0.0 <= self.min_area_ratio <= 1.0:
            raise ValueError(f"min_area_ratio must be in [0, 1] (0 disables the area-drop check), got {self.min_area_ratio}")
        if not self.max_area_ratio >= 1.0:
            raise ValueError(f"max_area_ratio must be >= 1 (inf disables the leak check), got {self.max_area_ratio}")

    @property
    def uses_appearance(self) -> bool:
        return self.min_appearance_margin != -math.inf

    def check(self, area_mm2: float, previous_area_mm2: float | None, iou: float,
              appearance_margin: float | None = None) -> StopReason | None:
        """``None`` when a slice with this mask area and predicted IoU is accepted, else the reason to stop.

        Args:
            area_mm2: the new slice's mask area.
            previous_area_mm2: the area of the slice it was propagated from (``None``: no ratio checks).
            iou: SAM's predicted IoU for the new mask.
            appearance_margin: the mask's appearance margin (``None``: not checked).
        """
        if area_mm2 <= 0:
            return StopReason.EMPTY
        if area_mm2 < self.min_area_mm2:
            return StopReason.TINY
        if self.min_iou > 0 and iou < self.min_iou:
            return StopReason.LOW_IOU
        if appearance_margin is not None and appearance_margin < self.min_appearance_margin:
            return StopReason.APPEARANCE
        if previous_area_mm2 is not None and previous_area_mm2 > 0:
            ratio = area_mm2 / previous_area_mm2
            if ratio < self.min_area_ratio:
                return StopReason.AREA_DROP
            if ratio > self.max_area_ratio:
                return StopReason.AREA_JUMP
        return None


def accepted_run(areas_mm2: Sequence[float], ious: Sequence[float], seed_area_mm2: float, rule: StopRule,
                 appearance_margins: Sequence[float] | None = None) -> tuple[int, StopReason | None]:
    """How many slices of one propagation direction ``rule`` accepts, and why it stopped.

    Args:
        areas_mm2: mask areas of the successive propagated slices (nearest to the seed first).
        ious: SAM's predicted IoU of the same slices.
        seed_area_mm2: the area of the prompted slice the run starts from.
        rule: the thresholds.
        appearance_margins: the slices' appearance margins (``None``: not checked).

    Returns:
        ``(n, reason)``: the first ``n`` slices are accepted; ``reason`` is why slice ``n`` was rejected, or
        ``None`` when every slice was accepted.
    """
    if len(areas_mm2) != len(ious) or (appearance_margins is not None and len(appearance_margins) != len(ious)):
        raise ValueError(
            f"got {len(areas_mm2)} areas, {len(ious)} IoUs and "
            f"{'no' if appearance_margins is None else len(appearance_margins)} appearance margins: give one per slice"
        )
    previous = float(seed_area_mm2)
    for n, (area, iou) in enumerate(zip(areas_mm2, ious)):
        margin = None if appearance_margins is None else float(appearance_margins[n])
        reason = rule.check(float(area), previous, float(iou), margin)
        if reason is not None:
            return n, reason
        previous = float(area)
    return len(areas_mm2), None

"""The stopping rule of propagation on synthetic sequences of mask areas, predicted IoUs and appearance margins."""

from __future__ import annotations

import math

import pytest

from monai_baldsam.volume.stopping import StopReason, StopRule, accepted_run

RULE = StopRule(min_area_mm2=10.0, min_iou=0.5, min_appearance_margin=-0.2, min_area_ratio=0.2, max_area_ratio=3.0)


def test_a_tumour_that_tapers_off_runs_to_its_end() -> None:
    areas = [900, 800, 640, 500, 300, 120, 40, 0]
    ious = [0.9, 0.9, 0.88, 0.85, 0.8, 0.7, 0.6, 0.1]
    assert accepted_run(areas, ious, seed_area_mm2=1000, rule=RULE) == (7, StopReason.EMPTY)
    assert accepted_run(areas[:-1], ious[:-1], 1000, RULE) == (7, None)


@pytest.mark.parametrize(
    ("areas", "ious", "margins", "expected"),
    [
        ([800, 600, 8], [0.9, 0.9, 0.9], None, (2, StopReason.TINY)),
        ([800, 600, 500], [0.9, 0.45, 0.9], None, (1, StopReason.LOW_IOU)),
        ([800, 600, 100], [0.9, 0.9, 0.9], None, (2, StopReason.AREA_DROP)),  # 100 / 600 < 0.2
        ([800, 600, 1900], [0.9, 0.9, 0.9], None, (2, StopReason.AREA_JUMP)),  # 1900 / 600 > 3
        ([800, 600, 500], [0.9, 0.9, 0.9], [0.3, 0.1, -0.35], (2, StopReason.APPEARANCE)),
        ([800, 600, 500], [0.9, 0.9, 0.9], [0.3, 0.1, -0.15], (3, None)),
    ],
    ids=["tiny", "low-iou", "area-drop", "area-jump", "appearance", "all-accepted"],
)
def test_each_condition_stops_at_the_first_bad_slice(areas, ious, margins, expected) -> None:
    assert accepted_run(areas, ious, 1000, RULE, appearance_margins=margins) == expected


def test_reasons_are_checked_in_order_and_ratios_use_the_previous_accepted_slice() -> None:
    assert RULE.check(0.0, 100.0, 0.1, -1.0) is StopReason.EMPTY
    assert RULE.check(5.0, 100.0, 0.1, -1.0) is StopReason.TINY
    assert RULE.check(50.0, 100.0, 0.1, -1.0) is StopReason.LOW_IOU
    assert RULE.check(50.0, 1000.0, 0.9, -1.0) is StopReason.APPEARANCE
    assert RULE.check(50.0, 1000.0, 0.9, 0.0) is StopReason.AREA_DROP
    assert RULE.check(50.0, None, 0.9, 0.0) is None  # no previous slice: no ratio checks
    # a slow decline is fine even though the last area is far below the seed's
    assert accepted_run([500, 260, 140, 75, 40, 22], [0.9] * 6, 1000, RULE) == (6, None)


def test_disabled_conditions_accept_everything_but_empty_masks() -> None:
    lenient = StopRule(min_area_mm2=0.0, min_iou=0.0, min_appearance_margin=-math.inf, min_area_ratio=0.0)
    assert not lenient.uses_appearance
    assert accepted_run([1, 1e6, 0.5, 0], [-0.3, 0.0, 0.1, 0.9], 100, lenient, [-2, -2, -2, -2]) == (3, StopReason.EMPTY)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_area_mm2": -1}, {"min_iou": 1.5}, {"min_area_ratio": 2.0}, {"max_area_ratio": 0.5},
     {"min_appearance_margin": 3.0}, {"min_area_mm2": math.nan}],
)
def test_bad_thresholds_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        StopRule(**kwargs)


def test_mismatched_sequences_are_rejected() -> None:
    with pytest.raises(ValueError, match="one per slice"):
        accepted_run([1, 2], [0.9], 10, RULE)
    with pytest.raises(ValueError, match="one per slice"):
        accepted_run([1, 2], [0.9, 0.9], 10, RULE, appearance_margins=[0.1])

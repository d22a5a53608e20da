"""Metrics of interactive segmentation on tiny hand-made masks and curves."""

from __future__ import annotations

import numpy as np
import pytest

from monai_baldsam.interaction.metrics import (
    area_under_curve,
    check_curves,
    dice_score,
    failures_at_budget,
    iou_score,
    mean_curve,
    miou_at,
    number_of_clicks,
    summarize_curves,
)


def test_iou_and_dice_known_values_batch_first() -> None:
    truth = np.zeros((2, 4, 4), bool)
    truth[:, :2, :2] = True  # 4 pixels
    pred = np.zeros((2, 4, 4), bool)
    pred[0, :2, :1] = True  # 2 pixels, all inside: IoU 2/4, Dice 4/6
    pred[1, 2:, 2:] = True  # disjoint
    np.testing.assert_allclose(iou_score(pred, truth), [0.5, 0.0])
    np.testing.assert_allclose(dice_score(pred, truth), [2 / 3, 0.0])
    assert iou_score(truth[0], truth[0]) == 1.0  # a single (H, W) pair works too


def test_two_empty_masks_agree_perfectly() -> None:
    empty = np.zeros((1, 3, 3), bool)
    assert iou_score(empty, empty)[0] == 1.0 and dice_score(empty, empty)[0] == 1.0
    one = empty.copy()
    one[0, 1, 1] = True
    assert iou_score(empty, one)[0] == 0.0 and dice_score(one, empty)[0] == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same"):
        iou_score(np.zeros((3, 3)), np.zeros((3, 4)))


def test_noc_first_interaction_reaching_threshold_else_budget() -> None:
    curves = np.array([
        [0.70, 0.86, 0.91, 0.95],  # 85 at 2, 90 at 3
        [0.90, 0.90, 0.90, 0.90],  # reached with the first prompt
        [0.10, 0.20, 0.30, 0.40],  # never: counts as the budget 4
        [0.50, 0.85, 0.84, 0.84],  # exactly at the threshold counts; dropping later does not matter
    ])
    np.testing.assert_array_equal(number_of_clicks(curves, 0.85), [2, 1, 4, 2])
    np.testing.assert_array_equal(number_of_clicks(curves, 0.90), [3, 1, 4, 4])
    assert failures_at_budget(curves, 0.85) == 1
    assert failures_at_budget(curves, 0.90) == 2


def test_noc_reached_only_at_the_budget_is_not_a_failure() -> None:
    curves = np.array([[0.1, 0.2, 0.9]])
    assert number_of_clicks(curves, 0.85)[0] == 3
    assert failures_at_budget(curves, 0.85) == 0


def test_miou_at_auc_and_mean_curve() -> None:
    curves = np.array([[0.2, 0.4, 0.6, 0.8], [0.4, 0.4, 0.4, 0.4]])
    assert miou_at(curves, 1) == pytest.approx(0.3)
    assert miou_at(curves, 4) == pytest.approx(0.6)
    np.testing.assert_allclose(mean_curve(curves), [0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(area_under_curve(curves), [0.5, 0.4])  # (1/N) * sum_k IoU_k
    assert area_under_curve(np.ones((1, 7)))[0] == 1.0
    with pytest.raises(ValueError, match="1..4"):
        miou_at(curves, 5)


def test_curves_are_validated() -> None:
    with pytest.raises(ValueError, match="images, interactions"):
        check_curves(np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_curves([[0.5, 1.2]])
    with pytest.raises(ValueError, match="threshold"):
        number_of_clicks(np.zeros((1, 2)), 85)


def test_summary_keys_and_values() -> None:
    curves = np.array([[0.5, 0.82, 0.86, 0.91, 0.92], [0.9, 0.9, 0.9, 0.9, 0.9]])
    s = summarize_curves(curves)
    assert s["n_images"] == 2 and s["clicks"] == 5
    assert s["noc80"] == pytest.approx((2 + 1) / 2)
    assert s["noc85"] == pytest.approx((3 + 1) / 2)
    assert s["noc90"] == pytest.approx((4 + 1) / 2)
    assert s["failures_at_budget"] == {"80": 0, "85": 0, "90": 0}
    assert list(s["miou_at"]) == ["1", "3", "5"]  # 10 and 20 are beyond the budget
    assert s["miou_at"]["1"] == pytest.approx(0.7)
    assert s["auc"] == pytest.approx(curves.mean())
    assert len(s["miou_curve"]) == 5

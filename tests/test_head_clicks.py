"""Click encodings and the training-time simulated user (pure helpers of monai_baldsam.head.clicks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.head.clicks import (
    box_map,
    click_maps,
    error_click,
    first_click,
    low_uv_to_sam_xy,
    sam_xy_to_low_xy,
)


def test_frame_maps_are_inverse_at_pixel_centres() -> None:
    uv = np.array([[0, 0], [3, 7], [15, 15]])
    for img_size, low in ((256, 256), (64, 16), (1024, 256)):
        sam = low_uv_to_sam_xy(uv, img_size, low)
        low_xy = sam_xy_to_low_xy(torch.as_tensor(sam), img_size, low).numpy()
        np.testing.assert_allclose(low_xy, uv + 0.5, atol=1e-5)
    # LiteMedSAM: low-res grid == SAM frame, a click at sam_xy (x, y) is the centre of pixel (x, y)
    np.testing.assert_allclose(low_uv_to_sam_xy(np.array([10, 20]), 256, 256), [10, 20])


def test_click_maps_on_known_points() -> None:
    low_xy = torch.tensor([[[2.5, 3.5], [7.5, 7.5], [0.0, 0.0]]])  # centres of pixels (2, 3) and (7, 7); padding
    labels = torch.tensor([[1, 0, -1]])
    maps = click_maps(low_xy, labels, size=10, radius=1.0, distance_clip=4.0)
    assert maps.shape == (1, 4, 10, 10)
    pos_disk, neg_disk, pos_dist, neg_dist = maps[0]
    expected_pos = {(3, 2), (2, 2), (4, 2), (3, 1), (3, 3)}  # (row, col) within radius 1 of (2.5, 3.5)
    assert {tuple(p) for p in torch.nonzero(pos_disk).tolist()} == expected_pos
    assert neg_disk[7, 7] == 1 and neg_disk.sum() == 5
    assert pos_dist[3, 2] == 0 and neg_dist[7, 7] == 0
    assert pos_dist[3, 4] == pytest.approx(2.0 / 4.0)  # two pixels to the right of the positive click
    assert pos_dist[9, 9] == 1.0  # clipped
    assert neg_dist[0, 0] == 1.0


def test_click_maps_without_clicks_and_bad_input() -> None:
    maps = click_maps(torch.zeros((2, 0, 2)), torch.zeros((2, 0), dtype=torch.int64), 8, 1.0, 2.0)
    assert torch.equal(maps[:, :2], torch.zeros(2, 2, 8, 8)) and torch.equal(maps[:, 2:], torch.ones(2, 2, 8, 8))
    with pytest.raises(ValueError, match="radius"):
        click_maps(torch.zeros((1, 1, 2)), torch.ones((1, 1), dtype=torch.int64), 8, 0.0, 2.0)
    with pytest.raises(ValueError, match="low_xy"):
        click_maps(torch.zeros((1, 2)), torch.ones((1, 1), dtype=torch.int64), 8, 1.0, 2.0)


def test_box_map() -> None:
    boxes = torch.tensor([[2.0, 1.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    maps = box_map(boxes, torch.tensor([True, False]), img_size=8, size=8)
    expected = torch.zeros(8, 8)
    expected[1:4, 2:5] = 1
    assert torch.equal(maps[0, 0], expected) and maps[1].sum() == 0


def test_first_click_is_deepest_point_or_seeded_draw() -> None:
    truth = np.zeros((20, 20), dtype=bool)
    truth[5:16, 2:9] = True
    assert first_click(truth) == (5, 8)  # depth 4 on rows 8..12: the first in row-major order
    draws = {first_click(truth, np.random.default_rng(s), spread=0.5) for s in range(20)}
    assert len(draws) > 1 and all(truth[y, x] for x, y in draws)
    assert first_click(truth, np.random.default_rng(3), 0.5) == first_click(truth, np.random.default_rng(3), 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        first_click(np.zeros((4, 4), dtype=bool))


def test_error_click_picks_larger_error_region() -> None:
    truth = np.zeros((20, 20), dtype=bool)
    truth[2:12, 2:12] = True
    pred = np.zeros_like(truth)
    pred[2:12, 2:6] = True  # false negatives: columns 6..11
    pred[15:17, 15:17] = True  # a small false positive
    valid = np.ones_like(truth)
    x, y, label = error_click(pred, truth, valid)
    assert label == 1 and truth[y, x] and not pred[y, x]
    only_fp = truth.copy()
    only_fp[0, 0] = True
    assert error_click(only_fp, truth, valid) == (0, 0, 0)
    assert error_click(truth, truth, valid) is None
    blocked = valid.copy()
    blocked[:, :] = False
    assert error_click(pred, truth, blocked) is None

"""Click geometry of the simulated user on tiny synthetic masks: first click, oracle, random clicks, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from monai_baldsam.interaction.geometry import (
    NO_CLICK,
    farthest_points,
    jitter_boxes,
    mask_boxes,
    oracle_clicks,
    padded_distance_transform,
    random_clicks,
    random_error_clicks,
)
from monai_baldsam.transforms.prompts import check_box


def _rect(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[rows, cols] = True
    return mask


def test_padded_distance_counts_the_border_as_boundary() -> None:
    full = np.ones((1, 5, 7), bool)
    dist = padded_distance_transform(full)[0]
    assert dist[0, 3] == 1.0 and dist[2, 0] == 1.0  # border pixels are next to the boundary
    assert dist[2, 3] == 3.0  # centre row of 5 rows
    # the naive reference: the same transform of the explicitly padded mask
    ref = distance_transform_edt(np.pad(full[0], 1))[1:-1, 1:-1]
    np.testing.assert_array_equal(dist, ref)


def test_first_click_is_the_centre_of_a_square() -> None:
    square = _rect(12, 12, slice(1, 8), slice(2, 9))  # rows 1..7, cols 2..8: centre (x=5, y=4)
    points, found = farthest_points(square[None])
    assert found[0] and points[0].tolist() == [5, 4]


def test_first_click_is_the_centre_of_a_disk() -> None:
    yy, xx = np.mgrid[:41, :51]
    disk = (xx - 30) ** 2 + (yy - 17) ** 2 <= 9 ** 2
    points, _ = farthest_points(disk[None])
    assert points[0].tolist() == [30, 17]


def test_ties_go_to_the_first_pixel_in_row_major_order() -> None:
    # rows 2..6 (5 rows), cols 3..11: distance 3 on row 4 for cols 5..9 -> the first is x=5
    rect = _rect(10, 15, slice(2, 7), slice(3, 12))
    points, _ = farthest_points(rect[None])
    assert points[0].tolist() == [5, 4]


def test_first_click_of_a_mask_touching_the_border_stays_inside() -> None:
    left = _rect(9, 12, slice(0, 9), slice(0, 5))  # touches the top, bottom and left border
    points, _ = farthest_points(left[None])
    # distance 3 from the padded left border and from column 5, on rows 2..6: the first of them, never column 0
    assert points[0].tolist() == [2, 2]


def test_empty_region_and_excluded_pixels() -> None:
    points, found = farthest_points(np.zeros((1, 4, 4), bool))
    assert not found[0] and points[0].tolist() == [NO_CLICK, NO_CLICK]
    square = _rect(12, 12, slice(1, 8), slice(2, 9))
    valid = np.ones_like(square)
    valid[4, 5] = False  # the centre is already clicked: next best, first in row-major order
    points, found = farthest_points(square[None], valid[None])
    assert found[0] and points[0].tolist() == [4, 3]


def test_oracle_clicks_the_larger_error_with_its_polarity() -> None:
    truth = _rect(20, 20, slice(2, 15), slice(2, 15))
    pred = truth.copy()
    pred[4:13, 4:13] = False  # a 9x9 hole: false negatives, centre (8, 8)
    pred[17:19, 17:19] = True  # a small false positive
    points, labels = oracle_clicks(pred[None], truth[None])
    assert labels[0] == 1 and points[0].tolist() == [8, 8]
    pred2 = truth.copy()
    pred2[:, 15:] = True  # false positives along the right border (5 columns wide), no false negatives
    points, labels = oracle_clicks(pred2[None], truth[None])
    assert labels[0] == 0 and points[0].tolist() == [17, 2]  # 3 from the border/boundary, first in row-major


def test_oracle_tie_between_regions_is_negative() -> None:
    truth = _rect(10, 20, slice(2, 5), slice(2, 5))  # 3x3 object
    pred = _rect(10, 20, slice(2, 5), slice(12, 15))  # a disjoint 3x3 prediction: same maximum distance
    points, labels = oracle_clicks(pred[None], truth[None])
    assert labels[0] == 0 and points[0].tolist() == [13, 3]


def test_oracle_no_click_on_a_perfect_prediction_and_excludes_clicked_pixels() -> None:
    truth = _rect(8, 8, slice(1, 6), slice(1, 6))
    points, labels = oracle_clicks(truth[None], truth[None])
    assert labels[0] == NO_CLICK and points[0].tolist() == [NO_CLICK, NO_CLICK]
    pred = np.zeros_like(truth)
    valid = ~truth  # every error pixel already clicked
    _, labels = oracle_clicks(pred[None], truth[None], valid[None])
    assert labels[0] == NO_CLICK
    valid = np.ones_like(truth)
    valid[3, 3] = False
    points, labels = oracle_clicks(pred[None], truth[None], valid[None])
    assert labels[0] == 1 and points[0].tolist() != [3, 3] and truth[points[0, 1], points[0, 0]]


def test_oracle_on_an_error_touching_the_border() -> None:
    truth = _rect(9, 9, slice(0, 9), slice(0, 9))  # the whole image
    pred = np.zeros_like(truth)
    points, labels = oracle_clicks(pred[None], truth[None])
    assert labels[0] == 1 and points[0].tolist() == [4, 4]


def test_oracle_is_batch_first() -> None:
    truth = np.stack([_rect(8, 8, slice(1, 6), slice(1, 6)), _rect(8, 8, slice(0, 3), slice(0, 3))])
    pred = np.stack([truth[0], np.zeros((8, 8), bool)])
    points, labels = oracle_clicks(pred, truth)
    assert labels.tolist() == [NO_CLICK, 1] and points[1].tolist() == [1, 1]


def test_random_error_clicks_are_seeded_inside_the_error_with_the_right_polarity() -> None:
    truth = _rect(40, 40, slice(5, 30), slice(5, 30))
    pred = _rect(40, 40, slice(10, 35), slice(10, 35))
    draws = [random_error_clicks(pred[None], truth[None], np.random.default_rng(s)) for s in range(12)]
    again = [random_error_clicks(pred[None], truth[None], np.random.default_rng(s)) for s in range(12)]
    for (p, lab), (p2, lab2) in zip(draws, again):
        np.testing.assert_array_equal(p, p2)
        assert lab[0] == lab2[0]
        x, y = p[0]
        assert pred[y, x] != truth[y, x]
        assert lab[0] == int(truth[y, x])
    assert len({tuple(p[0]) for p, _ in draws}) > 6  # different seeds, different clicks
    assert {int(lab[0]) for _, lab in draws} == {0, 1}
    _, labels = random_error_clicks(truth[None], truth[None], np.random.default_rng(0))
    assert labels[0] == NO_CLICK


def test_random_clicks_take_the_polarity_from_the_truth() -> None:
    truth = _rect(30, 30, slice(0, 15), slice(0, 30))  # top half foreground
    for seed in range(8):
        points, labels = random_clicks(truth[None], np.random.default_rng(seed))
        x, y = points[0]
        assert labels[0] == int(truth[y, x])
    a = random_clicks(truth[None], np.random.default_rng(3))[0]
    b = random_clicks(truth[None], np.random.default_rng(3))[0]
    c = random_clicks(truth[None], np.random.default_rng(4))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="Generator"):
        random_clicks(truth[None], 0)  # type: ignore[arg-type]


def test_mask_boxes_inclusive_and_never_empty() -> None:
    mask = _rect(10, 12, slice(2, 6), slice(3, 9))
    np.testing.assert_array_equal(mask_boxes(mask[None])[0], [3, 2, 8, 5])
    line = _rect(10, 12, slice(9, 10), slice(11, 12))  # one pixel in the bottom-right corner
    box = mask_boxes(line[None])[0]
    np.testing.assert_array_equal(box, [11, 9, 12, 10])
    check_box(box, (12, 10))  # valid for the predictor: far edge on the border
    with pytest.raises(ValueError, match="empty"):
        mask_boxes(np.zeros((1, 4, 4), bool))


def test_box_jitter_is_seeded_and_stays_inside_the_image() -> None:
    boxes = np.array([[3.0, 2.0, 8.0, 5.0], [0.0, 0.0, 11.0, 9.0], [11.0, 9.0, 12.0, 10.0]])
    np.testing.assert_array_equal(jitter_boxes(boxes, (10, 12), 0.0, np.random.default_rng(0)), boxes)
    a = jitter_boxes(boxes, (10, 12), 0.3, np.random.default_rng(1))
    b = jitter_boxes(boxes, (10, 12), 0.3, np.random.default_rng(1))
    c = jitter_boxes(boxes, (10, 12), 0.3, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for seed in range(200):
        out = jitter_boxes(boxes, (10, 12), 1.0, np.random.default_rng(seed))
        assert np.all(out[:, [0, 2]] >= 0) and np.all(out[:, [0, 2]] <= 11)
        assert np.all(out[:, [1, 3]] >= 0) and np.all(out[:, [1, 3]] <= 9)
        assert np.all(out[:, 2] > out[:, 0]) and np.all(out[:, 3] > out[:, 1])
        check_box(out, (12, 10))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        jitter_boxes(boxes, (10, 12), -0.1, np.random.default_rng(0))

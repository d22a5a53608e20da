"""Pure geometry of propagation: spacing, the through-plane axis, boxes from masks in mm, appearance prototypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.transforms.volume_geometry import (
    expand_box_mm,
    mask_area_mm2,
    mask_box_slice_xy,
    resolve_axis,
    slice_spacing_xy,
    through_plane_axis,
    voxel_spacing,
)
from monai_baldsam.volume.appearance import (
    AppearanceModel,
    appearance_margin,
    mask_to_embedding_grid,
    masked_prototype,
    ring_around,
)
from monai_baldsam.volume.propagation import PropagationConfig, PropagationPrompt, propagation_prompt


def test_voxel_spacing_reads_rotated_affines() -> None:
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.8, 5.0])
    np.testing.assert_allclose(voxel_spacing(affine), [0.7, 0.8, 5.0])
    np.testing.assert_allclose(voxel_spacing(torch.as_tensor(affine)), [0.7, 0.8, 5.0])
    with pytest.raises(ValueError, match="positive"):
        voxel_spacing(np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="4x4"):
        voxel_spacing(np.eye(2))


@pytest.mark.parametrize(
    ("spacing", "axis"),
    [((1.0, 1.0, 1.0), 2), ((0.69, 0.69, 6.5), 2), ((5.0, 0.9, 0.9), 0), ((0.9, 4.0, 0.9), 1), ((5.0, 5.0, 1.0), 1),
     ((3.0, 1.0, 3.0 * (1 + 1e-5)), 2)],
    ids=["isotropic", "axial", "sagittal", "coronal", "tie-without-2", "near-tie"],
)
def test_through_plane_axis_is_the_largest_spacing_ties_to_2(spacing, axis) -> None:
    assert through_plane_axis(spacing) == axis


def test_resolve_axis_defaults_to_the_acquisition_and_checks_given_axes() -> None:
    assert resolve_axis(None, np.diag([0.5, 3.0, 0.5, 1.0])) == 1
    assert resolve_axis(0, np.diag([0.5, 3.0, 0.5, 1.0])) == 0
    with pytest.raises(ValueError, match="axis"):
        resolve_axis(3, np.eye(4))
    np.testing.assert_allclose(slice_spacing_xy([0.5, 3.0, 0.7], 1), [0.5, 0.7])


def test_mask_box_and_margin_in_mm_on_anisotropic_pixels() -> None:
    mask = np.zeros((40, 30), bool)
    mask[10:21, 5:9] = True  # x 10..20, y 5..8
    np.testing.assert_array_equal(mask_box_slice_xy(mask), [10, 5, 20, 8])
    assert mask_box_slice_xy(np.zeros((4, 4), bool)) is None
    grown = expand_box_mm([10, 5, 20, 8], 2.0, spacing_xy=(0.5, 2.0), slice_shape_xy=(40, 30))
    np.testing.assert_array_equal(grown, [6, 4, 24, 9])  # 4 px along x (0.5 mm), 1 px along y (2 mm)
    clipped = expand_box_mm([1, 1, 38, 28], 5.0, (1.0, 1.0), (40, 30))
    np.testing.assert_array_equal(clipped, [0, 0, 39, 29])
    thin = expand_box_mm([7, 3, 7, 3], 0.0, (1.0, 1.0), (40, 30))  # a one-pixel mask still gives a valid box
    np.testing.assert_array_equal(thin, [7, 3, 8, 4])
    assert mask_area_mm2(mask, (0.5, 2.0)) == pytest.approx(44.0)
    with pytest.raises(ValueError, match=">= 0 mm"):
        expand_box_mm([1, 1, 2, 2], -1.0, (1.0, 1.0), (4, 4))


def test_propagation_prompt_modes() -> None:
    mask = np.zeros((32, 24), bool)
    mask[4:10, 6:12] = True
    logits = torch.randn(1, 16, 16)
    box_only = propagation_prompt(mask, logits, (1.0, 1.0), PropagationConfig(margin_mm=1.0))
    np.testing.assert_array_equal(box_only.box_xyxy, [3, 5, 10, 12])
    assert box_only.mask_logits is None and box_only.points_xy is None
    both = propagation_prompt(mask, logits, (1.0, 1.0), PropagationConfig(prompt="box+mask"))
    assert both.box_xyxy is not None and both.mask_logits is logits
    only_mask = propagation_prompt(mask, logits, (1.0, 1.0), PropagationConfig(prompt=PropagationPrompt.MASK))
    assert only_mask.box_xyxy is None and only_mask.mask_logits is logits
    assert propagation_prompt(np.zeros((4, 4), bool), logits, (1.0, 1.0), PropagationConfig()) is None
    with pytest.raises(ValueError):
        PropagationConfig(prompt="boxes")


def test_mask_to_embedding_grid_follows_sam_resize_and_padding() -> None:
    mask = np.zeros((64, 32), bool)  # X = 64 columns, Y = 32 rows: SAM sees 32 x 64, resized to 32 x 64 in 64
    mask[:32, :] = True  # the left half of the picture
    grid = mask_to_embedding_grid(mask, img_size=64, grid_hw=(4, 4))
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4])  # bottom half = pad
    torch.testing.assert_close(grid, expected)


def test_ring_is_measured_in_mm() -> None:
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    ring = ring_around(mask, 2.0, spacing_xy=(1.0, 2.0))
    xs, ys = np.nonzero(ring)
    assert xs.min() == 8 and xs.max() == 12 and ys.min() == 9 and ys.max() == 11 and not ring[10, 10]


def test_appearance_margin_prefers_the_object_over_its_surroundings() -> None:
    features = torch.zeros(1, 2, 8, 8)
    features[0, 0, :4] = 1.0  # object: top half of the embedding (rows), feature direction 0
    features[0, 1, 4:] = 1.0  # surroundings: bottom half, direction 1
    object_grid = torch.zeros(8, 8)
    object_grid[:4] = 1.0
    proto = masked_prototype(features, object_grid)
    torch.testing.assert_close(proto, torch.tensor([1.0, 0.0]))
    assert masked_prototype(features, torch.zeros(8, 8)) is None
    fg, bg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert appearance_margin(fg, fg, bg) == pytest.approx(1.0)
    assert appearance_margin(bg, fg, bg) == pytest.approx(-1.0)
    assert appearance_margin(None, fg, bg) == float("-inf")
    mask = np.zeros((8, 8), bool)  # [x, y]: SAM rows are y, so the object is y < 4
    mask[:, :4] = True
    model = AppearanceModel.from_slice(features, mask, img_size=8, ring_mm=8.0, spacing_xy=(1.0, 1.0))
    assert model.margin(features, mask, 8) == pytest.approx(1.0)
    below = np.zeros((8, 8), bool)
    below[:, 5:] = True
    assert model.margin(features, below, 8) == pytest.approx(-1.0)

"""Prompt frames ijk / slice_xy / sam_xy, validation, SAM parity and the SamPromptsd dictionary transform."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from segment_anything.utils.transforms import ResizeLongestSide

from monai_baldsam.sam.prompt_checks import check_box, check_points_inside
from monai_baldsam.transforms import (
    ExtractSliced,
    SamPromptsd,
    SamResizePadd,
    ijk_box_to_slice_box,
    ijk_to_slice_xy,
    slice_axes,
    slice_xy_to_ijk,
    to_sam_prompts,
)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_ijk_slice_xy_round_trip(axis: int) -> None:
    rng = np.random.default_rng(axis)
    points_ijk = rng.integers(0, 50, size=(20, 3))
    index, slice_xy = ijk_to_slice_xy(points_ijk, axis)
    a, b = slice_axes(axis)
    np.testing.assert_array_equal(index, points_ijk[:, axis])
    np.testing.assert_array_equal(slice_xy, points_ijk[:, [a, b]])
    for n in range(len(points_ijk)):
        back = slice_xy_to_ijk(slice_xy[n : n + 1], axis, index[n])
        np.testing.assert_array_equal(back[0], points_ijk[n])


def test_ijk_box_to_slice_box_each_axis() -> None:
    corners = np.array([[[2, 3, 7], [9, 11, 7]]])  # (i0, j0, k) and (i1, j1, k) on slice k=7
    index, box = ijk_box_to_slice_box(corners, axis=2)
    np.testing.assert_array_equal(index, [7])
    np.testing.assert_array_equal(box, [[2, 3, 9, 11]])
    index, box = ijk_box_to_slice_box([[4, 1, 2], [4, 6, 8]], axis=0)
    np.testing.assert_array_equal(index, [4])
    np.testing.assert_array_equal(box, [[1, 2, 6, 8]])
    index, box = ijk_box_to_slice_box([[1, 5, 2], [6, 5, 8]], axis=1)
    np.testing.assert_array_equal(box, [[1, 2, 6, 8]])
    with pytest.raises(ValueError, match="different slices"):
        ijk_box_to_slice_box([[1, 5, 2], [6, 5, 3]], axis=2)


def test_click_outside_raises_with_size_and_range() -> None:
    check_points_inside([[0, 0], [415, 299]], (416, 300))
    with pytest.raises(ValueError, match=r"click 1 at \[10\.0, 300\.0\].*\(416, 300\).*0\.\.415, 0\.\.299"):
        check_points_inside([[0, 0], [10, 300]], (416, 300))
    with pytest.raises(ValueError, match=r"\(240, 240, 155\)"):
        check_points_inside([[-1, 3, 4]], (240, 240, 155))
    with pytest.raises(ValueError, match="outside"):
        check_points_inside([[float("nan"), 3]], (10, 10))


def test_box_validation() -> None:
    np.testing.assert_array_equal(check_box([0, 0, 416, 300], (416, 300)), [[0, 0, 416, 300]])
    with pytest.raises(ValueError, match="empty"):
        check_box([10, 10, 10, 20], (416, 300))
    with pytest.raises(ValueError, match="empty"):
        check_box([10, 30, 20, 20], (416, 300))
    with pytest.raises(ValueError, match=r"outside the slice of size \(X, Y\) = \(416, 300\)"):
        check_box([10, 10, 20, 301], (416, 300))
    with pytest.raises(ValueError, match="outside"):
        check_box([-5, 10, 20, 30], (416, 300))


@pytest.mark.parametrize(("size_x", "size_y"), [(416, 300), (53, 977), (1024, 1024), (7, 5)])
def test_coords_and_boxes_parity_with_sam(size_x: int, size_y: int) -> None:
    rng = np.random.default_rng(size_x)
    long_side = 1024
    fg = rng.uniform(0, [size_x - 1, size_y - 1], size=(5, 2))
    bg = rng.uniform(0, [size_x - 1, size_y - 1], size=(3, 2))
    box = np.array([0.1 * size_x, 0.2 * size_y, 0.9 * size_x, 0.7 * size_y])
    prompts = to_sam_prompts(fg, bg, box, slice_shape_xy=(size_x, size_y), long_side=long_side)
    sam = ResizeLongestSide(long_side)
    original_size = (size_y, size_x)  # SAM's (H, W)
    ref_coords = sam.apply_coords(np.concatenate([fg, bg]), original_size)
    np.testing.assert_allclose(prompts.sam_point_coords, ref_coords, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(prompts.sam_box, sam.apply_boxes(box[None], original_size)[0], rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(prompts.sam_point_labels, [1] * 5 + [0] * 3)
    assert prompts.sam_point_coords.dtype == np.float32 and prompts.sam_box.dtype == np.float32


def test_to_sam_prompts_validation() -> None:
    with pytest.raises(ValueError, match="no prompt"):
        to_sam_prompts(None, [], None, slice_shape_xy=(10, 10), long_side=64)
    with pytest.raises(ValueError, match=r"\(10, 20\)"):
        to_sam_prompts([[10, 5]], None, None, slice_shape_xy=(10, 20), long_side=64)
    with pytest.raises(ValueError, match="empty"):
        to_sam_prompts(None, None, [5, 5, 5, 9], slice_shape_xy=(10, 20), long_side=64)
    with pytest.raises(ValueError, match="one slice"):
        to_sam_prompts([[1, 1, 3], [2, 2, 4]], None, None, slice_shape_xy=(10, 20), long_side=64, axis=2)
    with pytest.raises(ValueError, match=r"slice 3\)"):
        to_sam_prompts([[1, 1, 4]], None, None, slice_shape_xy=(10, 20), long_side=64, axis=2, index=3)
    with pytest.raises(ValueError, match="image is 2D"):
        to_sam_prompts([[1, 1, 4]], None, None, slice_shape_xy=(10, 20), long_side=64)


def test_sam_promptsd_on_volume_with_ijk_clicks_and_box() -> None:
    vol = MetaTensor(torch.zeros((1, 100, 50, 30)))  # slice along axis 1: (X, Y) = (I, K) = (100, 30)
    data = {
        "image": vol,
        "foreground": [[10, 7, 20], [99, 7, 0]],
        "background": [[50, 7, 29]],
        "box": [[5, 7, 2], [60, 7, 25]],
    }
    out = SamPromptsd(long_side=1024, axis=1)(data)
    scale = 1024 / 100
    new_h, new_w = ResizeLongestSide.get_preprocess_shape(30, 100, 1024)
    sx, sy = new_w / 100, new_h / 30
    expected = [[10 * sx, 20 * sy], [99 * sx, 0], [50 * sx, 29 * sy]]
    np.testing.assert_allclose(out["sam_point_coords"], expected, rtol=1e-6)
    assert sx == pytest.approx(scale)
    np.testing.assert_array_equal(out["sam_point_labels"], [1, 1, 0])
    np.testing.assert_allclose(out["sam_box"], [5 * sx, 2 * sy, 60 * sx, 25 * sy], rtol=1e-6)
    with pytest.raises(ValueError, match=r"foreground click \(i, j, k\).*\(100, 50, 30\)"):
        SamPromptsd(axis=1)({"image": vol, "foreground": [[10, 50, 3]]})
    with pytest.raises(ValueError, match="one slice"):
        SamPromptsd(axis=1)({"image": vol, "foreground": [[10, 7, 3]], "background": [[10, 8, 3]]})


def test_sam_promptsd_on_2d_image_missing_keys_mean_no_clicks() -> None:
    img = MetaTensor(torch.zeros((3, 40, 80)))
    out = SamPromptsd(long_side=64)({"image": img, "foreground": [[39, 79]]})
    np.testing.assert_allclose(out["sam_point_coords"], [[39 * 32 / 40, 79 * 64 / 80]], rtol=1e-6)
    np.testing.assert_array_equal(out["sam_point_labels"], [1])
    assert out["sam_box"] is None
    with pytest.raises(ValueError, match="no prompt"):
        SamPromptsd(long_side=64)({"image": img})
    with pytest.raises(KeyError, match="image"):
        SamPromptsd()({"foreground": [[1, 1]]})


def test_sam_promptsd_uses_traced_slice_and_resize() -> None:
    vol = MetaTensor(torch.zeros((1, 60, 40, 10)))
    pre = Compose([ExtractSliced(keys="image", axis=2, index=4), SamResizePadd(keys="image", long_side=120)])
    data = pre({"image": vol})
    data["foreground"] = [[30, 20, 4]]  # ijk on the traced slice k=4
    out = SamPromptsd(long_side=120)(data)
    np.testing.assert_allclose(out["sam_point_coords"], [[60.0, 40.0]], rtol=1e-6)  # scale 2
    with pytest.raises(ValueError, match=r"slice 4\)"):
        SamPromptsd(long_side=120)({**data, "foreground": [[30, 20, 5]]})
    with pytest.raises(ValueError, match="same long_side"):
        SamPromptsd(long_side=1024)(data)


def test_importing_transforms_first_has_no_import_cycle() -> None:
    code = "import monai_baldsam.transforms, monai_baldsam.sam.geometry; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_prompts_checked_at_the_boundary_are_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from monai_baldsam.transforms import prompts as prompt_module

    user = prompt_module.UserPrompts(box=[1, 2, 5, 6, 7], foreground=[[3, 3, 5], [2, 2, 9]], background=[[4, 4, 5]])
    calls = {"points": 0}
    original = prompt_module.check_points_inside

    def counting(*args, **kwargs):
        calls["points"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(prompt_module, "check_points_inside", counting)
    checked = prompt_module.check_prompts(user, (10, 10, 12), axis=2)
    assert isinstance(checked, prompt_module.UserPrompts) and calls["points"] == 2  # foreground, background
    assert sorted(checked.slices) == [5, 9] and checked.foreground == user.foreground
    expected = prompt_module.to_slice_prompts(user, (10, 10, 12), axis=2)
    calls["points"] = 0
    again = prompt_module.to_slice_prompts(checked, (10, 10, 12), axis=2)
    assert calls["points"] == 0 and prompt_module.check_prompts(checked, (10, 10, 12), axis=2) is checked
    assert sorted(again) == sorted(expected)
    for index in expected:
        np.testing.assert_array_equal(again[index].points_xy, expected[index].points_xy)
        np.testing.assert_array_equal(again[index].labels, expected[index].labels)
    again[5].points_xy = None  # the caller's copy: the checked prompts keep their own grouping
    assert checked.slices[5].points_xy is not None
    # another image or another slicing axis: checked afresh, and refused where they do not fit
    with pytest.raises(ValueError, match="outside"):
        prompt_module.to_slice_prompts(checked, (10, 10, 8), axis=2)
    calls["points"] = 0
    prompt_module.to_slice_prompts(prompt_module.UserPrompts(foreground=[[3, 3, 5]]), (10, 10, 12), axis=0)
    assert calls["points"] == 2
    with pytest.raises(ValueError, match="no prompt"):
        prompt_module.check_prompts(prompt_module.UserPrompts(), (10, 10))

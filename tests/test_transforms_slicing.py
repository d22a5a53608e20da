"""Slice extraction (C, I, J, K) -> (C, a, b), its inverse, affine bookkeeping and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, LoadImage

from monai_baldsam.transforms import ExtractSlice, ExtractSliced, extract_slice, slice_axes


@pytest.fixture(scope="module")
def brats_volume(dev_dir: Callable[[str], Path]) -> MetaTensor:
    paths = sorted((dev_dir("brats_mri3d") / "images").glob("*.nii.gz"))
    if not paths:
        pytest.fail(f"no NIfTI volume in {dev_dir('brats_mri3d') / 'images'}")
    return LoadImage(image_only=True, ensure_channel_first=True)(paths[0])


def _ramp(shape: tuple[int, ...] = (2, 4, 5, 6)) -> MetaTensor:
    return MetaTensor(torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape))


def test_slice_axes() -> None:
    assert slice_axes(0) == (1, 2)
    assert slice_axes(1) == (0, 2)
    assert slice_axes(2) == (0, 1)
    for bad in (-1, 3, 1.0, True):
        with pytest.raises(ValueError, match="0, 1 or 2"):
            slice_axes(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_extract_and_inverse_round_trip_synthetic(axis: int) -> None:
    vol = _ramp()
    index = vol.shape[1 + axis] - 1
    xform = ExtractSlice(axis=axis, index=index)
    sl = xform(vol)
    a, b = slice_axes(axis)
    assert tuple(sl.shape) == (2, vol.shape[1 + a], vol.shape[1 + b])
    expected = vol.as_tensor().select(1 + axis, index)
    assert torch.equal(sl.as_tensor(), expected)
    assert len(vol.applied_operations) == 0  # the input is untouched
    back = xform.inverse(sl)
    assert tuple(back.shape) == tuple(vol.shape)
    assert torch.equal(back.as_tensor().select(1 + axis, index), expected)
    others = torch.ones(vol.shape[1:], dtype=torch.bool)
    others.select(axis, index).fill_(False)
    assert torch.count_nonzero(back.as_tensor()[:, others]) == 0
    assert len(back.applied_operations) == 0
    torch.testing.assert_close(back.affine, vol.affine)


def test_slice_is_a_copy_not_a_view() -> None:
    vol = _ramp()
    sl = ExtractSlice(axis=2, index=1)(vol)
    sl.fill_(-1.0)
    assert float(vol.min()) == 0.0


def test_numpy_input_gives_numpy_slice() -> None:
    arr = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    out = ExtractSlice(axis=0, index=2)(arr)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, arr[:, 2])
    np.testing.assert_array_equal(extract_slice(arr, 1, 3), arr[:, :, 3])


def test_validation_errors_say_what_is_valid() -> None:
    vol = _ramp()
    with pytest.raises(ValueError, match=r"valid indices are 0\.\.5"):
        ExtractSlice(axis=2, index=6)(vol)
    with pytest.raises(ValueError, match="non-negative"):
        ExtractSlice(axis=2, index=-1)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        ExtractSlice(axis=3, index=0)
    with pytest.raises(ValueError, match=r"\(C, I, J, K\)"):
        ExtractSlice(axis=0, index=0)(MetaTensor(torch.zeros(1, 8, 8)))
    xform = ExtractSlice(axis=1, index=2)
    sl = xform(vol)
    with pytest.raises(ValueError, match=r"\(C, 4, 6\)"):
        xform.inverse(sl[:, :3])


def test_call_overrides_are_recorded_for_the_inverse() -> None:
    vol = _ramp()
    xform = ExtractSlice(axis=2, index=0)
    sl = xform(vol, axis=0, index=3)
    assert torch.equal(sl.as_tensor(), vol.as_tensor()[:, 3])
    back = xform.inverse(sl)
    assert torch.equal(back.as_tensor()[:, 3], vol.as_tensor()[:, 3])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_real_volume_slice_round_trip_and_world_coordinates(brats_volume: MetaTensor, axis: int) -> None:
    index = brats_volume.shape[1 + axis] // 2
    xform = ExtractSlice(axis=axis, index=index)
    sl = xform(brats_volume)
    expected = brats_volume.as_tensor().select(1 + axis, index)
    assert torch.equal(sl.as_tensor(), expected)
    assert float(expected.abs().sum()) > 0.0  # a middle slice holds brain
    # slice pixel (x, y) sits at the same world point as voxel ijk with ijk[a]=x, ijk[b]=y, ijk[axis]=index
    a, b = slice_axes(axis)
    x, y = 17, 31
    ijk = np.zeros(3)
    ijk[a], ijk[b], ijk[axis] = x, y, index
    world_slice = sl.affine.numpy() @ np.array([x, y, 0.0, 1.0])
    world_vol = brats_volume.affine.numpy() @ np.append(ijk, 1.0)
    np.testing.assert_allclose(world_slice, world_vol, atol=1e-6)
    back = xform.inverse(sl)
    assert tuple(back.shape) == tuple(brats_volume.shape)
    assert torch.equal(back.as_tensor().select(1 + axis, index), expected)
    torch.testing.assert_close(back.affine, brats_volume.affine)


def test_invertd_puts_a_slice_label_back_into_the_volume(brats_volume: MetaTensor) -> None:
    pre = Compose([ExtractSliced(keys=["image", "absent"], axis=2, index=77, allow_missing_keys=True)])
    data = pre({"image": brats_volume})
    assert tuple(data["image"].shape) == (1, 240, 240)
    pred = MetaTensor((data["image"].as_tensor() > 0.5).to(torch.uint8))
    out = Invertd(keys="pred", transform=pre, orig_keys="image")({**data, "pred": pred})
    assert tuple(out["pred"].shape) == tuple(brats_volume.shape)
    assert torch.equal(out["pred"].as_tensor()[..., 77], pred.as_tensor())
    assert int(out["pred"].sum()) == int(pred.sum())
    with pytest.raises(KeyError, match="absent"):
        ExtractSliced(keys=["image", "absent"], axis=2, index=1)({"image": brats_volume})

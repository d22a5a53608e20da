"""SamResizePad: parity with segment_anything's ResizeLongestSide, frames, channels and the exact inverse."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, LoadImage
from PIL import Image
from segment_anything.utils.transforms import ResizeLongestSide

from monai_baldsam.sam.geometry import preprocess_shape
from monai_baldsam.transforms import (
    ExtractSliced,
    SamResizePad,
    SamResizePadd,
    sam_input_to_slice,
    sam_resized_hw,
    slice_to_sam_input,
)

# Measured against ResizeLongestSide.apply_image (PIL, uint8) on the dev images below: mean |diff| 0.24-0.30 and
# max 1.0 grey levels (0..255) for long sides 1024 and 256; the gap is PIL's uint8 rounding of its output.
MEAN_ABS_TOL = 0.5
MAX_ABS_TOL = 1.5


@pytest.fixture(scope="module")
def load() -> LoadImage:
    return LoadImage(image_only=True, ensure_channel_first=True)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    return float((a & b).sum()) / float((a | b).sum())


def test_preprocess_shape_parity_with_sam() -> None:
    sizes = [1, 2, 3, 5, 7, 17, 99, 255, 256, 257, 333, 511, 512, 513, 640, 719, 1023, 1024, 1025, 1999]
    for long_side in (1024, 256, 1023):
        for h in sizes:
            for w in sizes:
                ref = ResizeLongestSide.get_preprocess_shape(h, w, long_side)
                assert sam_resized_hw((w, h), long_side) == ref, (h, w, long_side)
                assert preprocess_shape(h, w, long_side) == ref


@pytest.mark.parametrize(
    ("domain", "pattern"), [("busi", "*.png"), ("kvasir", "*.jpg"), ("ham10000", "*.jpg")]
)
@pytest.mark.parametrize("long_side", [1024, 256])
def test_image_resize_close_to_sam_apply_image(
    dev_dir: Callable[[str], Path], load: LoadImage, domain: str, pattern: str, long_side: int
) -> None:
    path = sorted((dev_dir(domain) / "images").glob(pattern))[0]
    pil_hwc = np.array(Image.open(path).convert("RGB"))
    ref = ResizeLongestSide(long_side).apply_image(pil_hwc).astype(np.float64)
    img = load(path)  # (3, X, Y), 0..255
    assert tuple(img.shape[1:]) == (pil_hwc.shape[1], pil_hwc.shape[0])
    out = SamResizePad(long_side)(img)
    assert tuple(out.shape) == (3, long_side, long_side)
    new_h, new_w = sam_resized_hw(img.shape[1:], long_side)
    assert ref.shape[:2] == (new_h, new_w)
    ours = out[:, :new_h, :new_w].permute(1, 2, 0).numpy()
    diff = np.abs(ours - ref)
    assert diff.mean() < MEAN_ABS_TOL, f"mean |diff| {diff.mean():.3f} grey levels"
    assert diff.max() <= MAX_ABS_TOL, f"max |diff| {diff.max():.3f} grey levels"
    assert torch.count_nonzero(out[:, new_h:, :]) == 0 and torch.count_nonzero(out[:, :, new_w:]) == 0


def test_transpose_convention_bright_pixel() -> None:
    size_x, size_y, long_side = 40, 100, 200  # non-square: H=Y=100 rows, W=X=40 columns; scale 2
    sl = torch.zeros((1, size_x, size_y))
    sl[0, 5, 20] = 1.0
    out = SamResizePad(long_side)(sl)
    assert tuple(out.shape) == (3, long_side, long_side)
    assert sam_resized_hw((size_x, size_y), long_side) == (200, 80)
    row, col = divmod(int(out[0].argmax()), long_side)
    assert abs(row - 20 * 2) <= 1 and abs(col - 5 * 2) <= 1
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # grey repeated to RGB


def test_channels_rgba_drops_alpha_and_others_raise() -> None:
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand((3, 12, 9), generator=gen)
    rgba = torch.cat([rgb, torch.full((1, 12, 9), 0.3)])
    torch.testing.assert_close(slice_to_sam_input(rgba, 32), slice_to_sam_input(rgb, 32))
    with pytest.raises(ValueError, match="1 \\(grey\\), 3 \\(RGB\\) or 4 \\(RGBA\\)"):
        SamResizePad(32)(torch.zeros((2, 12, 9)))
    with pytest.raises(ValueError, match="ExtractSlice"):
        SamResizePad(32)(torch.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="long_side"):
        SamResizePad(0)


def test_pad_value_and_no_normalisation() -> None:
    out = SamResizePad(64, pad_value=-1.0)(torch.full((1, 64, 32), 200.0))  # (H, W) = (32, 64)
    assert torch.all(out[:, :32, :] == 200.0)
    assert torch.all(out[:, 32:, :] == -1.0)


def test_affine_maps_sam_pixels_to_slice_pixel_centres() -> None:
    affine = torch.tensor([[0.5, 0, 0, 10.0], [0, 2.0, 0, -3.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]], dtype=torch.float64)
    sl = MetaTensor(torch.rand(1, 32, 16), affine=affine)
    out = SamResizePad(64)(sl)  # scale 2 on both axes: (H', W') = (32, 64)
    for row, col in [(0, 0), (5, 9), (31, 63)]:
        x, y = (col + 0.5) / 2 - 0.5, (row + 0.5) / 2 - 0.5
        np.testing.assert_allclose(
            out.affine.numpy() @ np.array([row, col, 0, 1.0]), affine.numpy() @ np.array([x, y, 0, 1.0]), atol=1e-9
        )


@pytest.mark.parametrize(("long_side", "min_iou"), [(1024, 0.995), (256, 0.95)])
def test_inverse_of_real_mask_nearest(
    dev_dir: Callable[[str], Path], load: LoadImage, long_side: int, min_iou: float
) -> None:
    mask_path = sorted((dev_dir("busi") / "masks").glob("*.png"))[1]
    mask = (load(mask_path) > 127).to(torch.float32)[:, :, 30:330]  # crop to a non-square (1, 416, 300) slice
    assert int(mask.sum()) > 1000
    xform = SamResizePad(long_side, inverse_mode="nearest")
    sam = xform(mask)
    label_sam = (sam[:1] > 0.5).to(torch.uint8)  # a label predicted at SAM input resolution
    back = xform.inverse(label_sam)
    assert tuple(back.shape) == tuple(mask.shape)
    assert back.dtype == torch.uint8
    # measured: IoU 1.0000 at 1024 (upsampling is exactly undone), 0.985 at 256 (downsampling loses detail)
    assert _iou(back, mask) > min_iou
    torch.testing.assert_close(back.affine, mask.affine)
    assert len(back.applied_operations) == len(mask.applied_operations)


def test_inverse_bilinear_restores_smooth_image_and_any_channel_count() -> None:
    x = torch.linspace(0.0, 1.0, 50)[:, None] * torch.linspace(0.0, 1.0, 30)[None, :]
    sl = MetaTensor(x[None])  # (1, X=50, Y=30)
    xform = SamResizePad(128)
    sam = xform(sl)
    back = xform.inverse(torch.cat([sam, sam[:1]]))  # 4 channels at SAM resolution
    assert tuple(back.shape) == (4, 50, 30)
    assert float((back[0] - sl[0]).abs().max()) < 0.02
    with pytest.raises(ValueError, match=r"\(C, 128, 128\)"):
        xform.inverse(xform(sl)[:, :64, :64])


def test_pure_inverse_matches_the_transform() -> None:
    sl = torch.rand(1, 37, 23)
    xform = SamResizePad(96)
    sam = xform(MetaTensor(sl))
    torch.testing.assert_close(xform.inverse(sam).as_tensor(), sam_input_to_slice(sam.as_tensor(), (37, 23)))
    with pytest.raises(ValueError, match="mode"):
        sam_input_to_slice(sam.as_tensor(), (37, 23), mode="bicubic")


def test_invertd_chain_volume_to_sam_and_back() -> None:
    vol = MetaTensor(torch.zeros((1, 24, 40, 8)))
    vol[0, 3:10, 20:35, 5] = 1.0
    pre = Compose(
        [
            ExtractSliced(keys="image", axis=2, index=5),
            SamResizePadd(keys=["image", "absent"], long_side=64, allow_missing_keys=True),
        ]
    )
    data = pre({"image": vol})
    assert tuple(data["image"].shape) == (3, 64, 64)
    pred = MetaTensor((data["image"][:1].as_tensor() > 0.5).to(torch.uint8))  # (1, 64, 64) label in the SAM frame
    out = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=True)({**data, "pred": pred})
    assert tuple(out["pred"].shape) == tuple(vol.shape)
    assert _iou(out["pred"].as_tensor(), vol.as_tensor()) > 0.99
    probs = MetaTensor(data["image"][:1].as_tensor().clone())
    soft = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=False)({**data, "pred": probs})
    assert tuple(soft["pred"].shape) == tuple(vol.shape)
    assert float((soft["pred"] - vol).abs().mean()) < 0.01  # bilinear blurs only the box edges
    assert _iou(soft["pred"].as_tensor() > 0.5, vol.as_tensor()) > 0.95

"""monai_baldsam.io readers: real dev files in MONAI's conventions, and clear errors for bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_baldsam.io import detect_format, load_image, load_mask, scan_dicom_series


def _pil_xy(path: Path) -> np.ndarray:
    """A picture as (C, X, Y) straight from PIL, for comparison."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)  # (rows, cols, C)
    return arr.transpose(2, 1, 0)


def _first_dicom_series(dev_dir, kind: str, case: str) -> Path:
    return dev_dir("pgbm_dicom") / kind / case


# ---------------------------------------------------------------- real dev files


def test_busi_png_channel_first_xy(dev_dir) -> None:
    path = dev_dir("busi") / "images" / "malignant_020.png"  # non-square picture
    width, height = Image.open(path).size
    assert width != height
    img = load_image(path)
    assert isinstance(img, MetaTensor)
    assert tuple(img.shape) == (3, width, height)
    assert img.dtype == torch.float32
    np.testing.assert_array_equal(img.numpy(), _pil_xy(path))
    assert img.meta["baldsam_kind"] == "2d"
    assert img.meta["modality"] == "unknown"
    assert img.meta["filename_or_obj"] == str(path)


def test_kvasir_jpg(dev_dir) -> None:
    path = dev_dir("kvasir") / "images" / "effisegnet_test_000.jpg"
    img = load_image(path)
    assert tuple(img.shape) == (3, 352, 352)
    np.testing.assert_array_equal(img.numpy(), _pil_xy(path))
    assert load_image(path, modality="endoscopy").meta["modality"] == "endoscopy"


def test_brats_nifti_matches_nibabel(dev_dir) -> None:
    path = dev_dir("brats_mri3d") / "images" / "brats_2013_pat0001_1.nii.gz"
    img = load_image(path)
    ref = nib.load(str(path))
    assert tuple(img.shape) == (1, 240, 240, 155)
    assert img.meta["baldsam_kind"] == "3d"
    np.testing.assert_allclose(np.asarray(img.affine), ref.affine, atol=1e-6)
    np.testing.assert_allclose(img.numpy()[0], ref.get_fdata(dtype=np.float32), atol=1e-6)


def test_brats_mask_binary_and_matches(dev_dir) -> None:
    d = dev_dir("brats_mri3d")
    img = load_image(d / "images" / "brats_2013_pat0001_1.nii.gz")
    mask = load_mask(d / "masks" / "brats_2013_pat0001_1.nii.gz", reference=img)
    raw = np.asarray(nib.load(str(d / "masks" / "brats_2013_pat0001_1.nii.gz")).dataobj)
    assert mask.dtype == torch.uint8 and tuple(mask.shape) == (1, 240, 240, 155)
    np.testing.assert_array_equal(mask.numpy()[0], (raw > 0).astype(np.uint8))


def test_pgbm_dicom_series(dev_dir) -> None:
    img = load_image(_first_dicom_series(dev_dir, "images", "PGBM-001"))
    mask = load_mask(_first_dicom_series(dev_dir, "masks", "PGBM-001"), reference=img)
    assert img.meta["baldsam_kind"] == "3d"
    assert img.meta["modality"] == "MR"
    assert img.ndim == 4 and img.shape[0] == 1
    assert tuple(mask.shape) == tuple(img.shape)
    assert set(np.unique(mask.numpy()).tolist()) == {0, 1}
    np.testing.assert_allclose(np.asarray(mask.affine), np.asarray(img.affine), atol=1e-4)


def test_pgbm_dicom_geometry_per_slice(dev_dir) -> None:
    """Each file's pixels sit at the voxel its ImagePositionPatient maps to (i = column, j = row, RAS affine)."""
    folder = _first_dicom_series(dev_dir, "images", "PGBM-001")
    img = load_image(folder)
    inv = np.linalg.inv(np.asarray(img.affine, dtype=np.float64))
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(str(f))
        lps = np.asarray(ds.ImagePositionPatient, float)
        ijk = inv @ np.array([-lps[0], -lps[1], lps[2], 1.0])
        np.testing.assert_allclose(ijk[:2], [0.0, 0.0], atol=1e-3)
        k = int(round(ijk[2]))
        assert abs(ijk[2] - k) < 1e-3
        assert tuple(img.shape[1:3]) == (ds.Columns, ds.Rows)
        np.testing.assert_allclose(img.numpy()[0, :, :, k], ds.pixel_array.T.astype(np.float32))


def test_single_dicom_file_is_2d(dev_dir) -> None:
    path = _first_dicom_series(dev_dir, "images", "PGBM-001") / "000000.dcm"
    ds = pydicom.dcmread(str(path))
    img = load_image(path)
    assert tuple(img.shape) == (1, ds.Columns, ds.Rows)
    assert img.meta["baldsam_kind"] == "2d"
    assert img.meta["modality"] == "MR"


def test_png_mask_0_255_and_shape_check(dev_dir) -> None:
    d = dev_dir("busi")
    img = load_image(d / "images" / "benign_001.png")
    mask = load_mask(d / "masks" / "benign_001.png", reference=img)
    raw = np.asarray(Image.open(d / "masks" / "benign_001.png").convert("L"))
    assert tuple(mask.shape) == (1,) + tuple(img.shape[1:])
    assert int(mask.sum()) == int((raw > 127).sum()) > 0
    other = load_image(d / "images" / "malignant_020.png")
    with pytest.raises(ValueError, match="spatial shape"):
        load_mask(d / "masks" / "benign_001.png", reference=other)


# ---------------------------------------------------------------- pictures with alpha / palettes


def test_alpha_dropped_and_palette_to_rgb(tmp_path: Path) -> None:
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    assert tuple(img.shape) == (3, 7, 5)
    assert float(img[0].max()) == 200.0

    Image.fromarray(np.full((5, 7, 2), 90, np.uint8), "LA").save(tmp_path / "la.png")
    assert tuple(load_image(tmp_path / "la.png").shape) == (1, 7, 5)

    Image.fromarray(rgba[..., :3], "RGB").convert("P").save(tmp_path / "pal.png")
    pal = load_image(tmp_path / "pal.png")
    assert tuple(pal.shape) == (3, 7, 5) and float(pal[0].max()) > 150.0
    assert tuple(load_image(tmp_path / "rgba.png", channel=0).shape) == (1, 7, 5)


def test_label_map_and_jpeg_noise_masks(tmp_path: Path) -> None:
    labels = np.zeros((6, 8), np.uint8)
    labels[1, 1], labels[2, 2] = 1, 3
    Image.fromarray(labels, "L").save(tmp_path / "labels.png")
    assert int(load_mask(tmp_path / "labels.png").sum()) == 2
    noisy = np.full((6, 8), 4, np.uint8)
    noisy[3, 5] = 250
    Image.fromarray(noisy, "L").save(tmp_path / "noisy.png")
    m = load_mask(tmp_path / "noisy.png")
    assert int(m.sum()) == 1 and int(m[0, 5, 3]) == 1


# ---------------------------------------------------------------- bad input


def test_missing_path() -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image("/nonexistent/folder/image.png")


def test_text_file_renamed_png(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ValueError, match="notes.png") as info:
        load_image(bad)
    assert "Supported inputs" in str(info.value)


def test_truncated_nifti(tmp_path: Path, dev_dir) -> None:
    src = dev_dir("brats_mri3d") / "images" / "brats_2013_pat0001_1.nii.gz"
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(src.read_bytes())[:5000]))
    with pytest.raises(ValueError, match="cut.nii.gz"):
        load_image(bad)


def test_unknown_extension(tmp_path: Path) -> None:
    odd = tmp_path / "volume.xyz"
    odd.write_bytes(b"\x00" * 200)
    with pytest.raises(ValueError, match=r"unknown file type '\.xyz'") as info:
        load_image(odd)
    assert ".nii.gz" in str(info.value) and ".png" in str(info.value)


def test_4d_nifti_needs_channel(tmp_path: Path) -> None:
    data = np.arange(6 * 5 * 4 * 3, dtype=np.float32).reshape(6, 5, 4, 3)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    path = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    with pytest.raises(ValueError, match="channel=k"):
        load_image(path)
    img = load_image(path, channel=1)
    assert tuple(img.shape) == (1, 6, 5, 4)
    np.testing.assert_array_equal(img.numpy()[0], data[..., 1])
    np.testing.assert_allclose(np.asarray(img.affine), affine)
    with pytest.raises(ValueError, match="out of range"):
        load_image(path, channel=3)


def _copy_slices(src: Path, dst: Path, prefix: str, count: int | None = None) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for f in sorted(src.glob("*.dcm"))[:count]:
        target = dst / f"{prefix}{f.name}"
        shutil.copyfile(f, target)
        out.append(target)
    return out


def test_dicom_folder_with_two_series(tmp_path: Path, dev_dir) -> None:
    mixed = tmp_path / "mixed"
    _copy_slices(_first_dicom_series(dev_dir, "images", "PGBM-001"), mixed, "a_", 3)
    _copy_slices(_first_dicom_series(dev_dir, "images", "PGBM-003"), mixed, "b_", 3)
    uids = {pydicom.dcmread(str(f), stop_before_pixels=True).SeriesInstanceUID for f in mixed.iterdir()}
    assert len(uids) == 2
    with pytest.raises(ValueError, match="mixes 2 DICOM series") as info:
        load_image(mixed)
    message = str(info.value)
    assert all(uid in message for uid in uids)
    assert "one series folder" in message


def test_empty_and_non_dicom_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no DICOM files"):
        load_image(empty)
    parent = tmp_path / "patient"
    (parent / "series1").mkdir(parents=True)
    (parent / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="sub-folders"):
        load_image(parent)


def test_series_folder_ignores_other_files(tmp_path: Path, dev_dir) -> None:
    src = _first_dicom_series(dev_dir, "images", "PGBM-001")
    folder = tmp_path / "series"
    _copy_slices(src, folder, "")
    (folder / "README.txt").write_text("not dicom")
    (folder / "sub").mkdir()
    img = load_image(folder)
    assert tuple(img.shape) == tuple(load_image(src).shape)
    assert detect_format(folder).value == "dicom_series"


def test_series_out_of_order_or_missing_slice(tmp_path: Path, dev_dir) -> None:
    src = _first_dicom_series(dev_dir, "images", "PGBM-001")
    swapped = tmp_path / "swapped"
    files = _copy_slices(src, swapped, "")
    a, b = (pydicom.dcmread(str(f)) for f in files[:2])
    a.InstanceNumber, b.InstanceNumber = b.InstanceNumber, a.InstanceNumber
    a.save_as(str(files[0]))
    b.save_as(str(files[1]))
    with pytest.raises(ValueError, match="not in spatial order"):
        load_image(swapped)

    gap = tmp_path / "gap"
    files = _copy_slices(src, gap, "")
    by_number = sorted(files, key=lambda f: int(pydicom.dcmread(str(f), stop_before_pixels=True).InstanceNumber))
    by_number[len(by_number) // 2].unlink()
    with pytest.raises(ValueError, match="unevenly spaced"):
        scan_dicom_series(gap)


def test_mask_affine_mismatch(tmp_path: Path) -> None:
    data = np.zeros((4, 5, 6), np.uint8)
    data[1, 2, 3] = 1
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), str(tmp_path / "img.nii.gz"))
    shifted = np.eye(4)
    shifted[:3, 3] = [10.0, 0.0, 0.0]
    nib.save(nib.Nifti1Image(data, shifted), str(tmp_path / "mask.nii.gz"))
    img = load_image(tmp_path / "img.nii.gz")
    with pytest.raises(ValueError, match="different affines"):
        load_mask(tmp_path / "mask.nii.gz", reference=img)
    assert int(load_mask(tmp_path / "mask.nii.gz", reference=img, check_affine=False).sum()) == 1

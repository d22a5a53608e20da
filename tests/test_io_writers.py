"""monai_baldsam.io writers: geometry round trips, refusal to clobber, atomicity, overlays."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import monai_baldsam.io.writers as writers_mod
from monai_baldsam.io import (
    TEMP_PREFIX,
    atomic_path,
    atomic_write_bytes,
    load_image,
    load_mask,
    save_overlay_png,
    write_mask,
    write_probability_map,
)


def _random_mask(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.7).astype(np.uint8)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX))


@pytest.fixture()
def png_copy(tmp_path: Path, dev_dir) -> Path:
    """A non-square busi picture copied into tmp_path (never write next to the shared data)."""
    src = dev_dir("busi") / "images" / "malignant_020.png"
    dst = tmp_path / "input" / "picture.png"
    dst.parent.mkdir()
    shutil.copyfile(src, dst)
    return dst


# ---------------------------------------------------------------- round trips


def test_nifti_round_trip(tmp_path: Path, dev_dir) -> None:
    src = dev_dir("brats_mri3d") / "images" / "brats_2013_pat0001_1.nii.gz"
    ref = load_image(src)
    mask = _random_mask(tuple(ref.shape[1:]))
    out = write_mask(torch.from_numpy(mask)[None], ref, tmp_path / "out" / "mask.nii.gz")
    assert out.is_file()
    back = nib.load(str(out))
    assert back.shape == (240, 240, 155)
    np.testing.assert_allclose(back.affine, nib.load(str(src)).affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.dataobj), mask)
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(load_mask(out, reference=ref).numpy()[0], mask)
    assert _leftovers(tmp_path) == []


def test_dicom_reference_to_nifti(tmp_path: Path, dev_dir) -> None:
    ref = load_image(dev_dir("pgbm_dicom") / "images" / "PGBM-001")
    mask = load_mask(dev_dir("pgbm_dicom") / "masks" / "PGBM-001", reference=ref)
    out = write_mask(mask, ref, tmp_path / "pgbm_mask.nii")
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, np.asarray(ref.affine), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(back.dataobj), mask.numpy()[0])
    again = load_mask(out, reference=ref)  # also checks the affine against the series
    np.testing.assert_array_equal(again.numpy(), mask.numpy())


def test_png_round_trip_orientation(tmp_path: Path, png_copy: Path) -> None:
    ref = load_image(png_copy)
    width, height = Image.open(png_copy).size
    assert tuple(ref.shape[1:]) == (width, height) and width != height
    mask = np.zeros((width, height), np.uint8)
    mask[3, 10] = 1  # x = 3 (column), y = 10 (row)
    out = write_mask(mask, ref, tmp_path / "masks" / "picture_mask.png")
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (height, width) and pixels.dtype == np.uint8
    assert pixels[10, 3] == 255
    assert int(pixels.sum()) == 255
    np.testing.assert_array_equal(load_mask(out, reference=ref).numpy()[0], mask)


def test_probability_map(tmp_path: Path, png_copy: Path) -> None:
    ref = load_image(png_copy)
    prob = np.zeros(tuple(ref.shape[1:]), np.float32)
    prob[3, 10], prob[4, 11] = 1.0, 0.5
    png = write_probability_map(prob, ref, tmp_path / "prob.png")
    pixels = np.asarray(Image.open(png))
    assert pixels[10, 3] == 255 and pixels[11, 4] == 128 and int(pixels.sum()) == 255 + 128
    nii = write_probability_map(prob, ref, tmp_path / "prob.nii.gz")
    back = nib.load(str(nii))
    assert back.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(back.dataobj), prob)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_probability_map(prob * 3.0, ref, tmp_path / "bad.nii.gz")


# ---------------------------------------------------------------- refusals


def test_overwrite_refused_original_untouched(tmp_path: Path, png_copy: Path) -> None:
    ref = load_image(png_copy)
    out = tmp_path / "mask.png"
    first = np.zeros(tuple(ref.shape[1:]), np.uint8)
    first[0, 0] = 1
    write_mask(first, ref, out)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_mask(1 - first, ref, out)
    assert out.read_bytes() == before
    write_mask(1 - first, ref, out, overwrite=True)
    assert out.read_bytes() != before
    assert _leftovers(tmp_path) == []


def test_never_writes_onto_input(tmp_path: Path, png_copy: Path) -> None:
    ref = load_image(png_copy)
    before = png_copy.read_bytes()
    mask = np.zeros(tuple(ref.shape[1:]), np.uint8)
    with pytest.raises(ValueError, match="input path"):
        write_mask(mask, ref, png_copy, overwrite=True)
    link = tmp_path / "alias.png"
    link.symlink_to(png_copy)
    with pytest.raises(ValueError, match="input path"):
        write_mask(mask, ref, link, overwrite=True)
    with pytest.raises(ValueError, match="input path"):
        save_overlay_png(ref, mask, png_copy, overwrite=True)
    assert png_copy.read_bytes() == before

    protected = tmp_path / "ground_truth.png"
    protected.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="protected"):
        write_mask(mask, ref, protected, overwrite=True, protected=[protected])
    assert protected.read_bytes() == b"keep me"


def test_never_writes_into_dicom_series_folder(tmp_path: Path, dev_dir) -> None:
    series = tmp_path / "series"
    shutil.copytree(dev_dir("pgbm_dicom") / "images" / "PGBM-001", series)
    ref = load_image(series)
    with pytest.raises(ValueError, match="inside the input folder"):
        write_mask(np.zeros(tuple(ref.shape[1:]), np.uint8), ref, series / "mask.nii.gz")
    assert not (series / "mask.nii.gz").exists()


def test_bad_outputs(tmp_path: Path, png_copy: Path, dev_dir) -> None:
    ref = load_image(png_copy)
    mask = np.zeros(tuple(ref.shape[1:]), np.uint8)
    with pytest.raises(ValueError, match=r"\.nii\.gz"):
        write_mask(mask, ref, tmp_path / "mask.jpg")
    with pytest.raises(ValueError, match="shape"):
        write_mask(mask[:-1], ref, tmp_path / "mask.png")
    with pytest.raises(ValueError, match="not binary"):
        write_mask(mask + 2, ref, tmp_path / "mask.png")
    vol = load_image(dev_dir("brats_mri3d") / "images" / "brats_2013_pat0002_1.nii.gz")
    with pytest.raises(ValueError, match="PNG"):
        write_mask(np.zeros(tuple(vol.shape[1:]), np.uint8), vol, tmp_path / "vol.png")
    assert list(tmp_path.glob("mask*")) == [] and not (tmp_path / "vol.png").exists()


# ---------------------------------------------------------------- atomicity


def test_failed_write_leaves_nothing(tmp_path: Path, png_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = load_image(png_copy)
    mask = np.ones(tuple(ref.shape[1:]), np.uint8)

    def half_write(data: np.ndarray, tmp: Path) -> None:
        tmp.write_bytes(b"\x89PNG partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(writers_mod, "_save_png", half_write)
    out = tmp_path / "out" / "mask.png"
    with pytest.raises(OSError, match="simulated"):
        write_mask(mask, ref, out)
    assert not out.exists()
    assert _leftovers(tmp_path) == []

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"old")
    with pytest.raises(OSError, match="simulated"):
        write_mask(mask, ref, existing, overwrite=True)
    assert existing.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_helpers(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "scores.json"
    assert atomic_write_bytes(target, b"{}") == target
    assert target.read_bytes() == b"{}"
    with pytest.raises(FileExistsError, match="--overwrite"):
        atomic_write_bytes(target, b"[]")
    assert target.read_bytes() == b"{}"
    atomic_write_bytes(target, b"[]", overwrite=True)
    assert target.read_bytes() == b"[]"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(tmp_path / "c.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "c.txt").exists()
    with pytest.raises(RuntimeError, match="did not create"):
        with atomic_path(tmp_path / "d.txt"):
            pass
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- overlay


def test_overlay_png(tmp_path: Path, png_copy: Path) -> None:
    ref = load_image(png_copy)
    width, height = Image.open(png_copy).size
    mask = np.zeros((width, height), np.uint8)
    mask[0:40, 200:260] = 1  # x in [0, 40), y in [200, 260): left edge, lower half
    out = save_overlay_png(
        ref, mask, tmp_path / "ov" / "overlay.png",
        points_xy=[[100, 50], [300, 400]], point_labels=[1, 0], box_xyxy=(10, 190, 60, 270),
    )
    pil = Image.open(out)
    pil.verify()
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert rgb.shape == (height, width, 3)
    original = np.asarray(Image.open(png_copy).convert("RGB")).astype(int)
    assert np.abs(rgb[230, 20] - original[230, 20]).sum() > 30  # inside the mask (row = y, col = x)
    np.testing.assert_array_equal(rgb[20, 230], original[20, 230])  # the transposed spot is untouched
    r, g, b = rgb[50, 100]
    assert g > 150 and r < 80  # green foreground click at (x=100, y=50)
    r, g, b = rgb[400, 300]
    assert r > 150 and g < 80  # red background click at (x=300, y=400)
    with pytest.raises(FileExistsError):
        save_overlay_png(ref, mask, out)
    assert _leftovers(tmp_path) == []

"""``baldsam segment`` end to end: real files in, masks out in the input's geometry; bad input writes nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.cli.main import main
from monai_baldsam.io import load_image, load_mask


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_segment_png_writes_mask_and_overlay(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("busi")
    truth = np.array(Image.open(folder / "masks" / "benign_002.png")) > 127  # rows x cols
    rows, cols = np.nonzero(truth)
    box = f"{cols.min()},{rows.min()},{cols.max()},{rows.max()}"  # pixel x = column, y = row
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    code, stdout, _ = _run(capsys, "segment", str(folder / "images" / "benign_002.png"), "--box", box,
                           "--out", str(out), "--overlay", str(overlay))
    assert code == 0
    report = json.loads(stdout)
    assert report["mask"] == str(out.resolve()) and report["foreground_voxels"] > 0
    mask = np.array(Image.open(out)) > 127
    assert mask.shape == truth.shape
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    assert Image.open(overlay).size == (truth.shape[1], truth.shape[0])


def test_segment_nifti_keeps_geometry(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("brats_mri3d")
    src = folder / "images" / "brats_2013_pat0002_1.nii.gz"
    truth = nib.load(folder / "masks" / src.name).get_fdata() > 0
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    i, j = np.nonzero(truth[:, :, k])
    out = tmp_path / "label.nii.gz"
    code, _, _ = _run(capsys, "segment", str(src), "--box", f"{i.min()},{j.min()},{k},{i.max()},{j.max()}",
                      "--out", str(out), "--overlay", str(tmp_path / "o.png"), "--no-propagate")
    assert code == 0
    written, original = nib.load(out), nib.load(src)
    assert written.shape == original.shape
    np.testing.assert_allclose(written.affine, original.affine, atol=1e-5)
    data = written.get_fdata() > 0
    assert data[:, :, k].sum() > 0 and (data[:, :, k] & truth[:, :, k]).sum() / (data[:, :, k] | truth[:, :, k]).sum() > 0.7


def test_segment_dicom_series_writes_nifti_with_series_geometry(tmp_path: Path, dev_dir, capsys) -> None:
    series = dev_dir("pgbm_dicom") / "images" / "PGBM-001"
    image = load_image(series)
    truth = load_mask(dev_dir("pgbm_dicom") / "masks" / "PGBM-001", reference=image)[0].numpy().astype(bool)
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    i, j = np.nonzero(truth[:, :, k])
    out = tmp_path / "seg.nii.gz"
    code, _, err = _run(capsys, "segment", str(series), "--box", f"{i.min()},{j.min()},{k},{i.max()},{j.max()}",
                        "--out", str(out))
    assert code == 0, err
    written = load_mask(out)
    assert tuple(written.shape[1:]) == tuple(image.shape[1:])
    np.testing.assert_allclose(written.affine.numpy(), image.affine.numpy(), atol=1e-3)
    pred = written[0].numpy().astype(bool)
    assert (pred[:, :, k] & truth[:, :, k]).sum() / (pred[:, :, k] | truth[:, :, k]).sum() > 0.5


def _nifti_4d(tmp_path: Path) -> Path:
    path = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 6, 2)).astype(np.float32), np.eye(4)), path)
    return path


@pytest.mark.parametrize(
    ("make_input", "extra", "pattern"),
    [
        (lambda d, t: t / "missing.png", ["--box", "1,1,5,5"], "does not exist|No such file|not found"),
        (lambda d, t: (t / "broken.png").write_text("not an image") and t / "broken.png", ["--box", "1,1,5,5"], "broken.png"),
        (lambda d, t: _nifti_4d(t), ["--box", "1,1,2,5,5"], "channel"),
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--box", "10,10,9000,50"], "outside"),
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--box", "50,50,50,80"], "empty"),
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--fg=-3,20"], "outside"),
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--box", "10,10,50,50", "--checkpoint", "__bad__"], "SHA-256|does not exist|cannot read"),
    ],
    ids=["missing", "unreadable", "4d", "box-outside", "box-empty", "click-outside", "wrong-checkpoint"],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, dev_dir, capsys, make_input, extra, pattern) -> None:
    source = make_input(dev_dir, tmp_path)
    if "__bad__" in extra:
        bad = tmp_path / "bad.pth"
        bad.write_bytes(b"\x00" * 1000)
        extra = [str(bad) if e == "__bad__" else e for e in extra]
    out = tmp_path / "out" / "mask.nii.gz"
    code, _, err = _run(capsys, "segment", str(source), *extra, "--out", str(out))
    assert code == 2
    assert err.startswith("baldsam: error:")
    assert re.search(pattern, err), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_existing_output_and_input_are_never_overwritten(tmp_path: Path, dev_dir, capsys) -> None:
    source = tmp_path / "img.png"
    shutil.copy(dev_dir("busi") / "images" / "benign_001.png", source)
    original = source.read_bytes()
    code, _, err = _run(capsys, "segment", str(source), "--box", "10,10,60,60", "--out", str(source), "--overwrite")
    assert code == 2 and "input" in err and source.read_bytes() == original
    existing = tmp_path / "mask.png"
    existing.write_bytes(b"keep me")
    code, _, err = _run(capsys, "segment", str(source), "--box", "10,10,60,60", "--out", str(existing))
    assert code == 2 and "--overwrite" in err and existing.read_bytes() == b"keep me"


def test_bad_prompt_syntax_is_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["segment", "x.png", "--box", "1,2,3", "--out", "y.png"])
    assert info.value.code == 2
    assert "--box needs 4 or 5" in capsys.readouterr().err


def test_segment_dicom_series_propagates_and_writes_dicom_seg(tmp_path: Path, dev_dir, capsys) -> None:
    from monai_baldsam.volume.dicom_seg import read_dicom_seg, series_sources

    series = dev_dir("pgbm_dicom") / "images" / "PGBM-003"
    image = load_image(series)
    truth = load_mask(dev_dir("pgbm_dicom") / "masks" / "PGBM-003", reference=image)[0].numpy().astype(bool)
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    i, j = np.nonzero(truth[:, :, k])
    out, seg_out = tmp_path / "seg.nii.gz", tmp_path / "seg.dcm"
    code, stdout, err = _run(capsys, "segment", str(series), "--box", f"{i.min()},{j.min()},{k},{i.max()},{j.max()}",
                             "--out", str(out), "--seg-out", str(seg_out))
    assert code == 0, err
    report = json.loads(stdout)
    assert report["axis"] == 2 and report["seg"] == str(seg_out.resolve())
    first, last = report["propagation"]["slices"]
    assert first < k < last  # propagated beyond the prompted slice, both ways
    assert {run["reason"] for run in report["propagation"]["runs"]} <= {"empty", "tiny", "low_iou", "appearance",
                                                                         "area_drop", "area_jump", "volume_end"}
    label = load_mask(out, reference=image)
    per_slice = label[0].numpy().sum(axis=(0, 1))
    assert per_slice[first] > 0 and per_slice[last] > 0 and per_slice[:first].sum() == per_slice[last + 1:].sum() == 0
    seg = read_dicom_seg(seg_out, image)
    assert torch.equal(seg.as_tensor(), label.as_tensor())
    import pydicom

    frames = pydicom.dcmread(seg_out).PerFrameFunctionalGroupsSequence
    assert sorted(str(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID) for f in frames) == \
        sorted(str(ds.SOPInstanceUID) for ds in series_sources(image))


def _series_copy(tmp_path: Path, dev_dir, drop_middle: bool = False, mix: bool = False) -> Path:
    folder = tmp_path / "series"
    folder.mkdir()
    files = sorted((dev_dir("pgbm_dicom") / "images" / "PGBM-003").iterdir())
    for n, f in enumerate(files):
        if drop_middle and n == len(files) // 2:
            continue
        shutil.copy(f, folder / f.name)
    if mix:
        for f in sorted((dev_dir("pgbm_dicom") / "images" / "PGBM-001").iterdir())[:3]:
            shutil.copy(f, folder / f"other_{f.name}")
    return folder


@pytest.mark.parametrize(
    ("make_input", "extra", "pattern"),
    [
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--box", "10,10,50,50", "--seg-out", "__out__/s.dcm"],
         "DICOM series"),
        (lambda d, t: d("brats_mri3d") / "images" / "brats_2013_pat0002_1.nii.gz",
         ["--box", "100,100,80,140,140", "--seg-out", "__out__/s.dcm"], "DICOM series"),
        (lambda d, t: d("busi") / "images" / "benign_001.png", ["--box", "10,10,50,50", "--propagate"], "3D volume"),
        (lambda d, t: d("pgbm_dicom") / "images" / "PGBM-003", ["--box", "50,140,10,90,200", "--seg-out",
                                                                 "__out__/s.nii.gz"], r"\.dcm"),
        (lambda d, t: d("pgbm_dicom") / "images" / "PGBM-003", ["--fg", "60,150,22"], "outside"),
        (lambda d, t: d("pgbm_dicom") / "images" / "PGBM-003", ["--box", "50,140,30,90,200"], "outside"),
        (lambda d, t: _series_copy(t, d, drop_middle=True), ["--box", "50,140,10,90,200"], "unevenly spaced|missing"),
        (lambda d, t: _series_copy(t, d, mix=True), ["--box", "50,140,10,90,200"], "mixes 2 DICOM series"),
        (lambda d, t: _nifti_4d(t), ["--box", "1,1,2,5,5", "--channel", "5"], "out of range"),
    ],
    ids=["seg-for-png", "seg-for-nifti", "propagate-2d", "seg-not-dcm", "click-outside-volume", "box-slice-outside",
         "series-missing-slice", "mixed-series", "4d-bad-channel"],
)
def test_bad_volume_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, dev_dir, capsys, make_input, extra,
                                                              pattern) -> None:
    source = make_input(dev_dir, tmp_path)
    out_dir = tmp_path / "out"
    extra = [e.replace("__out__", str(out_dir)) for e in extra]
    code, _, err = _run(capsys, "segment", str(source), *extra, "--out", str(out_dir / "mask.nii.gz"))
    assert code == 2
    assert err.startswith("baldsam: error:")
    assert re.search(pattern, err), err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_4d_volume_with_channel_segments_that_channel(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mask.nii.gz"
    code, stdout, err = _run(capsys, "segment", str(_nifti_4d(tmp_path)), "--channel", "1", "--box", "1,1,2,6,6",
                             "--out", str(out), "--no-propagate")
    assert code == 0, err
    assert nib.load(out).shape == (8, 8, 6) and json.loads(stdout)["slices"] == [2]

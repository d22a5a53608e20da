"""``baldsam segment`` end to end: real files in, masks out in the input's geometry; bad input writes nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
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
                      "--out", str(out), "--overlay", str(tmp_path / "o.png"))
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

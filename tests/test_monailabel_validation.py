"""The app's request checks, token fix and DICOM SEG writer, without a server (fast)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import jwt
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from cryptography.hazmat.primitives.asymmetric import rsa

from monai_baldsam.monailabel.lib.auth import JwtWithAlgorithms
from monai_baldsam.monailabel.lib.dicomweb import write_dicom_seg
from monai_baldsam.monailabel.lib.prompts import MAX_POINTS, fit_to_image, parse_request
from monai_baldsam.monailabel.lib.validation import (RequestError, check_image_id, check_label_tag, is_upload,
                                                     to_http)


@pytest.mark.parametrize("image_id", ["../x", "a/b", "/etc/passwd", "..", "a\\b", "a\x00b", "", "  ", None, 5,
                                      "x" * 300])
def test_image_ids_with_a_path_or_empty_are_refused(image_id: object) -> None:
    with pytest.raises(RequestError) as err:
        check_image_id(image_id)
    assert err.value.status == 400


def test_image_id_must_be_known_when_the_ids_are_given() -> None:
    assert check_image_id("1.2.840.1", ["1.2.840.1"]) == "1.2.840.1"  # a SeriesInstanceUID is a plain id
    assert check_image_id("benign 001..v2") == "benign 001..v2"  # dots inside a name are no path
    with pytest.raises(RequestError, match="not in the datastore") as err:
        check_image_id("other", ["1.2.840.1"])
    assert err.value.status == 404 and to_http(err.value).status_code == 404


@pytest.mark.parametrize("tag, ok", [("final", True), ("original", True), ("v2.reviewed-by_x", True),
                                     ("../../x", False), (".hidden", False), ("a/b", False), ("", False),
                                     ("x" * 65, False), (None, False)])
def test_label_tags_are_plain_names(tag: object, ok: bool) -> None:
    if ok:
        assert check_label_tag(tag) == tag
    else:
        with pytest.raises(RequestError, match="not a plain name"):
            check_label_tag(tag)


def test_only_uploads_and_session_files_count_as_uploads(tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(suffix=".nii.gz") as upload:
        assert is_upload(upload.name)
    assert not is_upload(upload.name)  # gone: nothing to read
    assert not is_upload("/etc/passwd") and not is_upload(str(tmp_path))
    session = tmp_path / "sessions" / "abc" / "image.nii.gz"
    session.parent.mkdir(parents=True)
    session.write_bytes(b"x")
    assert is_upload(str(session), tmp_path / "sessions")
    assert not is_upload(str(tmp_path / "other.nii.gz"), tmp_path / "sessions")
    assert not is_upload(str(tmp_path / "sessions" / ".." / "other.nii.gz"), tmp_path / "sessions")


def test_points_are_checked_against_the_image_and_the_roi_clipped() -> None:
    prompts = parse_request({"foreground": [[3, 4, 2]], "roi": [-5, 50, 2, 8, 0, 9]})
    fitted = fit_to_image(prompts, (20, 10, 3))
    np.testing.assert_array_equal(fitted.roi_ijk[0], [0, 2, 0])
    np.testing.assert_array_equal(fitted.roi_ijk[1], [19, 8, 2])
    np.testing.assert_array_equal(fitted.foreground_ijk, prompts.foreground_ijk)
    with pytest.raises(ValueError, match=r"point \[20, 4, 2\] is outside the image"):
        fit_to_image(parse_request({"background": [[20, 4, 2]]}), (20, 10, 3))
    with pytest.raises(ValueError, match="outside the image"):
        fit_to_image(parse_request({"foreground": [[3, 4, 1]]}), (20, 10))  # a picture: k must be 0
    with pytest.raises(ValueError, match="lies outside the image"):
        fit_to_image(parse_request({"roi": [25, 30, 0, 5, 0, 1]}), (20, 10, 3))
    assert fit_to_image(parse_request({"foreground": [[19, 9, 0]]}), (20, 10)).roi_ijk is None


def test_too_many_points_are_refused() -> None:
    half = [[1, 1, 0]] * (MAX_POINTS // 2 + 1)
    with pytest.raises(ValueError, match=f"at most {MAX_POINTS}"):
        parse_request({"foreground": half, "background": half})
    with pytest.raises(ValueError, match=f"at most {MAX_POINTS}"):
        parse_request({"foreground": [[1, 1, 0]] * (MAX_POINTS + 1)})
    assert len(parse_request({"foreground": [[1, 1, 0]] * MAX_POINTS}).foreground_ijk) == MAX_POINTS


def test_token_decode_names_the_algorithm() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, key, algorithm="RS256")
    with pytest.raises(jwt.DecodeError, match="algorithms"):  # what MONAI Label 0.8.5 does with PyJWT 2
        jwt.decode(token, key.public_key(), options={"verify_signature": True})
    fixed = JwtWithAlgorithms(jwt, ["RS256"])
    assert fixed.decode(token, key.public_key(), options={"verify_signature": True})["sub"] == "a"
    assert fixed.InvalidTokenError is jwt.InvalidTokenError  # the rest of the module is the module's
    secret = "s" * 32
    hs_token = jwt.encode({"sub": "a"}, secret, algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError):  # an algorithm not named is refused
        fixed.decode(hs_token, secret)
    with pytest.raises(ValueError, match="at least one"):
        JwtWithAlgorithms(jwt, [])


@pytest.fixture(scope="module")
def pgbm_series(shared_data: Path) -> tuple[Path, sitk.Image]:
    series = shared_data / "dev" / "pgbm_dicom" / "images" / "PGBM-003"
    if not series.is_dir():
        pytest.fail(f"dev DICOM series not found at {series}")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    return series, reader.Execute()


def test_dicom_seg_lies_on_the_image_slices(pgbm_series: tuple[Path, sitk.Image], tmp_path: Path) -> None:
    series, image = pgbm_series
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.uint8)  # (K, rows, columns)
    mask[9, 170:200, 40:90] = 1
    mask[11, 180:190, 50:60] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    sitk.WriteImage(label, str(tmp_path / "label.nii.gz"))
    out = write_dicom_seg(series, tmp_path / "label.nii.gz", [{"name": "tumour"}], tmp_path / "seg.dcm")
    seg = pydicom.dcmread(str(out))
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(str(f), stop_before_pixels=True)
                                                  for f in series.iterdir())}
    first = next(iter(sources.values()))
    assert seg.Modality == "SEG" and seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert seg.SegmentSequence[0].SegmentLabel == "tumour"
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    assert len(frames) == len(sources)  # empty slices are kept: one frame per image slice
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        source = sources[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, [float(v) for v in source.ImagePositionPatient], atol=1e-3)
        k = image.TransformPhysicalPointToIndex(position)[2]
        np.testing.assert_array_equal(frame, mask[k])


def test_empty_label_or_other_grid_is_refused(pgbm_series: tuple[Path, sitk.Image], tmp_path: Path) -> None:
    series, image = pgbm_series
    empty = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(image)
    sitk.WriteImage(empty, str(tmp_path / "empty.nii.gz"))
    with pytest.raises(ValueError, match="the label is empty"):
        write_dicom_seg(series, tmp_path / "empty.nii.gz", None, tmp_path / "seg.dcm")
    other = sitk.Image([s // 2 for s in image.GetSize()], sitk.sitkUInt8) + 1
    sitk.WriteImage(other, str(tmp_path / "other.nii.gz"))
    with pytest.raises(ValueError, match="is not the image's"):
        write_dicom_seg(series, tmp_path / "other.nii.gz", None, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_missing_orthanc_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from monai_baldsam.monailabel.lib import orthanc

    monkeypatch.setattr(orthanc.shutil, "which", lambda name: None)
    monkeypatch.setattr(orthanc.os, "access", lambda path, mode: False)
    with pytest.raises(FileNotFoundError, match="apt-get install orthanc orthanc-dicomweb"):
        orthanc.find_orthanc()
    monkeypatch.setattr(orthanc, "PLUGIN_FOLDERS", ())
    with pytest.raises(FileNotFoundError, match="DICOMweb plugin"):
        orthanc.find_dicomweb_plugin()

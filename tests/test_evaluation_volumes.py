"""Click simulation on volumes: the pure 3D click rules, and ``baldsam evaluate`` on a small synthetic NIfTI folder
with the real LiteMedSAM and the shipped general head (Dice over the volume after every click)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_baldsam.cli.main import main
from monai_baldsam.evaluation.volumes import first_box, oracle_voxel, random_error_voxel, range_error, slice_range
from monai_baldsam.io.cases import discover_volume_cases, is_volume_folder


def test_first_box_is_on_the_largest_slice() -> None:
    truth = np.zeros((10, 12, 5), dtype=bool)
    truth[2:5, 3:6, 1] = True
    truth[1:8, 2:9, 3] = True
    prompts = first_box(truth, axis=2)
    assert list(prompts.box) == [1, 2, 3, 7, 8]
    with pytest.raises(ValueError, match="empty"):
        first_box(np.zeros((3, 3, 3), dtype=bool), axis=2)


def test_first_box_on_the_central_slice_of_the_object() -> None:
    truth = np.zeros((10, 12, 8), dtype=bool)
    truth[2:5, 3:6, 1] = True
    truth[4:6, 5:7, 2:4] = True
    truth[1:8, 2:9, 6] = True  # the largest slice; slices 1..6 hold the object: central 3 (the lower of 3 and 4)
    assert list(first_box(truth, axis=2, on="central").box) == [4, 5, 3, 5, 6]
    assert list(first_box(np.moveaxis(truth, 2, 0), axis=0, on="central").box)[2] == 3
    with pytest.raises(ValueError, match="largest' or 'central"):
        first_box(truth, axis=2, on="middle")


def test_oracle_voxel_measures_distances_in_mm() -> None:
    truth = np.zeros((21, 21, 21), dtype=bool)
    truth[2:19, 2:19, 2:19] = True  # a 17-voxel cube
    pred = np.zeros_like(truth)
    valid = np.ones_like(truth)
    (i, j, k), label = oracle_voxel(pred, truth, (1.0, 1.0, 1.0), valid)
    assert label == 1 and (i, j, k) == (10, 10, 10)  # isotropic: the centre
    (i, j, k), label = oracle_voxel(pred, truth, (1.0, 1.0, 5.0), valid)
    assert (i, j, k) == (10, 10, 3)  # 5 mm slices: from slice 3 on the in-plane 9 mm limit; the first such wins
    pred = truth.copy()
    pred[0:2, :, 10] = True  # a thin false positive
    (i, j, k), label = oracle_voxel(pred, truth, (1.0, 1.0, 5.0), valid)
    assert label == 0 and k == 10 and i in (0, 1)
    assert oracle_voxel(truth, truth, (1.0, 1.0, 1.0), valid) is None
    rng = np.random.default_rng(0)
    (i, j, k), label = random_error_voxel(pred, truth, valid, rng)
    assert pred[i, j, k] != truth[i, j, k] and label == 0
    assert random_error_voxel(truth, truth, valid, rng) is None


def _synthetic_volume_folder(root: Path) -> Path:
    shape = (64, 56, 9)
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    inside = ((ii - 32) / 18.0) ** 2 + ((jj - 28) / 14.0) ** 2 + ((kk - 4) / 3.6) ** 2 <= 1.0
    data = (200.0 * inside + np.random.default_rng(0).normal(0, 10, shape)).astype(np.float32)
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    nib.save(nib.Nifti1Image(data, affine), root / "images" / "ellipsoid.nii.gz")
    nib.save(nib.Nifti1Image(inside.astype(np.uint8), affine), root / "masks" / "ellipsoid.nii.gz")
    return root


def test_evaluate_on_volumes_reports_dice_per_click(tmp_path: Path, capsys) -> None:
    folder = _synthetic_volume_folder(tmp_path / "volumes")
    assert is_volume_folder(folder) and [c.name for c in discover_volume_cases(folder)] == ["ellipsoid"]
    out = tmp_path / "run"
    code = main(["evaluate", "--data", str(folder), "--policy", "oracle,random_error,bald", "--first", "box",
                 "--clicks", "3", "--head", "general", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["policies"]) == {"oracle", "random_error", "bald"}
    truth = np.asarray(nib.load(folder / "masks" / "ellipsoid.nii.gz").dataobj).astype(bool)
    firsts = set()
    for policy, summary in report["policies"].items():
        volume = summary["per_volume"][0]
        assert len(volume["dice"]) == 3 and all(0.0 <= d <= 1.0 for d in volume["dice"])
        firsts.add(volume["dice"][0])
        for i, j, k, label in volume["clicks"]:
            assert label == int(truth[i, j, k])  # the simulated user answers from the truth
    assert len(firsts) == 1 and firsts.pop() > 0.6  # the same box first for every policy; propagation works
    assert report["policies"]["bald"]["per_volume"][0]["slices_scored"]
    # the slices covered against the truth's, after every interaction
    filled = np.nonzero(truth.any(axis=(0, 1)))[0]
    for summary in report["policies"].values():
        volume = summary["per_volume"][0]
        assert volume["axis"] == 2 and volume["truth_slices"] == [int(filled[0]), int(filled[-1])]
        assert len(volume["label_slices"]) == len(volume["slices_missed"]) == 3
        first, last = volume["label_slices"][0]
        assert volume["slices_missed"][0] == max(abs(first - filled[0]), abs(last - filled[-1]))
        assert summary["within_one_slice_after_box"] == float(volume["slices_missed"][0] <= 1)
    assert (out / "dice_vs_clicks.png").stat().st_size > 0
    central = tmp_path / "central"  # the first box on the central slice of the object (issue 18's protocol)
    code = main(["evaluate", "--data", str(folder), "--policy", "oracle", "--first", "box", "--clicks", "1",
                 "--box-slice", "central", "--out", str(central), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((central / "metrics.json").read_text())
    assert "central" in json.dumps(report) and report["policies"]["oracle"]["per_volume"][0]["dice"][0] > 0.6


def test_slice_range_and_how_many_slices_it_misses() -> None:
    mask = np.zeros((4, 5, 9), dtype=bool)
    mask[1, 2, 3] = mask[2, 2, 6] = True
    assert slice_range(mask, 2) == [3, 6] and slice_range(mask, 0) == [1, 2]
    assert slice_range(np.zeros((3, 3, 3), dtype=bool), 1) is None
    assert range_error([3, 6], [2, 6]) == 1 and range_error([3, 9], [3, 6]) == 3 and range_error([3, 6], [3, 6]) == 0
    assert range_error(None, [2, 6]) == 5  # an empty label misses the whole range

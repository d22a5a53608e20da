"""``baldsam segment`` reports UncertainSAM's predicted IoU and gaps; the API judges good and bad masks apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from monai_baldsam.cli.main import main
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.usam import load_usam

FIELDS = {"slice", "predicted_iou", "prompt_gap", "task_gap", "model_gap"}


def _box(folder: Path, name: str) -> str:
    truth = np.array(Image.open(folder / "masks" / f"{name}.png")) > 127
    rows, cols = np.nonzero(truth)
    return f"{cols.min()},{rows.min()},{cols.max()},{rows.max()}"


def _segment(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["segment", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_segment_report_carries_quality(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("busi")
    image = str(folder / "images" / "benign_002.png")
    code, report, _ = _segment(capsys, image, "--box", _box(folder, "benign_002"), "--out", str(tmp_path / "m.png"))
    assert code == 0 and report["usam"] == "general"
    (entry,) = report["quality"]
    assert set(entry) == FIELDS and entry["slice"] == 0 and entry["model_gap"] is None
    assert 0.0 < entry["predicted_iou"] < 1.0 and -1.0 < entry["prompt_gap"] < 1.0 and -1.0 < entry["task_gap"] < 1.0
    # a box over the whole picture gives a worse mask: its predicted IoU is lower
    height, width = np.array(Image.open(image)).shape[:2]
    code, loose, _ = _segment(capsys, image, "--box", f"0,0,{width - 1},{height - 1}", "--out",
                              str(tmp_path / "loose.png"))
    assert code == 0 and loose["quality"][0]["predicted_iou"] < entry["predicted_iou"]
    code, plain, _ = _segment(capsys, image, "--box", _box(folder, "benign_002"), "--out", str(tmp_path / "n.png"),
                              "--usam", "none")
    assert code == 0 and "quality" not in plain and "usam" not in plain


def test_segment_with_head_clicks_carries_quality(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("ph2")
    name = discover_cases(folder, limit=1)[0].name
    truth = np.array(Image.open(folder / "masks" / f"{name}.png")) > 127
    rows, cols = np.nonzero(truth)
    click = f"{int(np.median(cols))},{int(np.median(rows))}"
    code, report, _ = _segment(capsys, str(next((folder / "images").glob(f"{name}.*"))), "--fg", click,
                               "--head", "general", "--out", str(tmp_path / "m.png"))
    assert code == 0 and set(report["quality"][0]) == FIELDS
    assert 0.0 < report["quality"][0]["predicted_iou"] < 1.0


def test_segment_missing_usam_file_writes_nothing(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("busi")
    out = tmp_path / "m.png"
    code, _, err = _segment(capsys, str(folder / "images" / "benign_002.png"), "--box", _box(folder, "benign_002"),
                            "--out", str(out), "--usam", str(tmp_path / "missing.pt"))
    assert code == 2 and "UncertainSAM heads" in err and not out.exists()


def test_predicted_iou_ranks_dev_masks(dev_dir, lite_medsam) -> None:
    """On 4 busi dev images, exact boxes (good masks) get a higher predicted IoU than boxes shrunk to the object's
    central third (masks that miss most of the object) in most images, as the true IoU says."""
    usam = load_usam("general", click_model=SamClickModel(SamPredictor(lite_medsam)))
    wins = 0
    cases = discover_cases(dev_dir("busi"), limit=4)
    for case in cases:
        loaded = load_case(case)
        embedding = usam.encode(loaded.image)
        box = mask_boxes(loaded.truth[None])[0]
        third = (box[2:] - box[:2]) / 3.0
        small = np.concatenate([box[:2] + third, box[2:] - third])
        good, bad = (usam.assess(embedding, None, None, b, None) for b in (box, small))
        true = [float((r.output.mask & loaded.truth).sum() / (r.output.mask | loaded.truth).sum()) for r in (good, bad)]
        assert true[0] > true[1], case.name  # the setup itself: the shrunk box is worse
        wins += good.quality.iou > bad.quality.iou
    assert wins >= 3, f"the predicted IoU ranked the exact box above the shrunk one in only {wins} of {len(cases)}"

"""``baldsam evaluate`` and ``baldsam compare`` end to end on two busi images with the real LiteMedSAM.

The evaluate run happens once per module (in-process, reusing the session's backbone); the tests read its files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_baldsam.cli import evaluate_cmd
from monai_baldsam.cli.main import main
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.sam.predictor import SamPredictor

N_CLICKS = 3


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, lite_medsam, dev_dir) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval") / "run"
    patch = pytest.MonkeyPatch()
    model = SamClickModel(SamPredictor(lite_medsam))
    patch.setattr(evaluate_cmd, "click_model_from_args", lambda args: model)
    try:
        code = main(["evaluate", "--data", str(dev_dir("busi")), "--policy", "oracle", "--policy", "random",
                     "--first", "box", "--clicks", str(N_CLICKS), "--limit", "2", "--out", str(out), "--no-progress"])
    finally:
        patch.undo()
    assert code == 0
    return out, {p: json.loads((out / p / "metrics.json").read_text()) for p in ("oracle", "random")}


def test_evaluate_writes_consistent_files(evaluated) -> None:
    out, metrics = evaluated
    assert (out / "compare.png").is_file()
    for policy, m in metrics.items():
        folder = out / policy
        assert {p.name for p in folder.iterdir()} == {"metrics.json", "curves.csv", "iou_vs_clicks.png"}
        assert Image.open(folder / "iou_vs_clicks.png").format == "PNG"
        for key in ("policy", "first", "n_images", "noc80", "noc85", "noc90", "miou_at", "auc", "seconds_per_click",
                    "per_image", "backbone", "seed", "clicks", "data", "failures_at_budget"):
            assert key in m, key
        assert m["policy"] == policy and m["first"] == "box" and m["clicks"] == N_CLICKS and m["n_images"] == 2
        assert m["backbone"] == "lite_medsam" and m["seed"] == 0
        assert [item["name"] for item in m["per_image"]] == ["benign_001", "benign_002"]
        curves = np.array([item["iou"] for item in m["per_image"]])
        assert curves.shape == (2, N_CLICKS) and np.all((curves >= 0) & (curves <= 1))
        assert m["miou_at"]["1"] == pytest.approx(curves[:, 0].mean())
        assert m["miou_at"]["1"] > 0.75  # LiteMedSAM follows boxes
        assert m["auc"] == pytest.approx(curves.mean())
        for t in ("80", "85", "90"):
            assert 1 <= m[f"noc{t}"] <= N_CLICKS
            assert 0 <= m["failures_at_budget"][t] <= 2
        assert m["seconds_per_click"] > 0
        rows = list(csv.DictReader((folder / "curves.csv").open()))
        assert len(rows) == 2 * N_CLICKS
        np.testing.assert_allclose([float(r["iou"]) for r in rows], curves.reshape(-1), atol=1e-6)
        assert all(r["click_x"] == "" for r in rows if r["interaction"] == "1")  # the box: no click
        assert all(r["click_label"] in ("0", "1") for r in rows if r["interaction"] != "1")
    # the first prompt (the box) is identical for every policy
    assert metrics["oracle"]["miou_at"]["1"] == metrics["random"]["miou_at"]["1"]
    firsts = {p: [item["iou"][0] for item in m["per_image"]] for p, m in metrics.items()}
    assert firsts["oracle"] == firsts["random"]


def test_compare_plots_and_prints_a_table(evaluated, tmp_path: Path, capsys) -> None:
    out, metrics = evaluated
    png = tmp_path / "cmp.png"
    assert main(["compare", str(out / "oracle"), str(out / "random"), "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "| box + oracle | oracle | box | 2 |" in printed and "| box + random |" in printed
    assert f"{metrics['oracle']['miou_at']['1']:.3f}" in printed
    assert Image.open(png).format == "PNG"
    assert main(["compare", str(out), "--out", str(png)]) == 2  # exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    # a multi-policy folder stands for its policy sub-folders
    assert main(["compare", str(out), "--out", str(png), "--overwrite", "--labels", "a,b"]) == 0
    assert "| a | oracle |" in capsys.readouterr().out


def test_evaluate_refuses_before_loading_anything(evaluated, tmp_path: Path, dev_dir, capsys) -> None:
    out, _ = evaluated
    base = ["evaluate", "--data", str(dev_dir("busi")), "--first", "box", "--clicks", "2", "--limit", "1"]
    assert main([*base, "--policy", "oracle", "--out", str(out)]) == 2  # a non-empty folder
    assert "not empty" in capsys.readouterr().err
    assert main([*base, "--policy", "bald_typo", "--out", str(tmp_path / "a")]) == 2
    assert "unknown click policy" in capsys.readouterr().err
    volumes = ["evaluate", "--data", str(dev_dir("brats_mri3d")), "--out", str(tmp_path / "b")]
    for extra, pattern in [(["--first", "box", "--policy", "entropy"], "not available on volumes"),
                           (["--first", "click", "--policy", "oracle"], "--first box"),
                           (["--first", "box", "--policy", "bald", "--head", "none"], "needs a Bayesian head")]:
        assert main([*volumes, *extra]) == 2
        assert pattern in capsys.readouterr().err
    assert main([*base, "--policy", "oracle", "--box-jitter", "0.1", "--first", "click",
                 "--out", str(tmp_path / "c")]) == 2
    assert main([*base, "--policy", "oracle", "--box-slice", "central", "--out", str(tmp_path / "d")]) == 2
    assert "volumes only" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c", "d"))

"""Finding and loading evaluation cases: folder layout, MONAI datalists, orientation, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.interaction.cases import load_case
from monai_baldsam.io.cases import discover_cases, validate_masks


def _pair(folder: Path, name: str, hw: tuple[int, int] = (6, 9), suffix: str = ".png") -> np.ndarray:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    truth = np.zeros(hw, bool)
    truth[1:3, 2:7] = True  # rows 1..2, columns 2..6
    picture = np.zeros((*hw, 3), np.uint8)
    picture[..., 0] = np.arange(hw[1], dtype=np.uint8)[None, :] * 20  # red grows with the column
    Image.fromarray(picture).save(folder / "images" / f"{name}{suffix}")
    Image.fromarray(truth.astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")
    return truth


def test_folder_layout_sorted_matched_and_limited(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        _pair(tmp_path, name, suffix=".jpg" if name == "c" else ".png")
    cases = discover_cases(tmp_path)
    assert [c.name for c in cases] == ["a", "b", "c"]
    assert cases[2].image.name == "c.jpg" and cases[2].mask.name == "c.png"
    assert [c.name for c in discover_cases(tmp_path, limit=2)] == ["a", "b"]


def test_load_case_is_in_sam_orientation(tmp_path: Path) -> None:
    truth = _pair(tmp_path, "a")
    loaded = load_case(discover_cases(tmp_path)[0])
    np.testing.assert_array_equal(loaded.truth, truth)  # rows x columns, as the picture shows it
    assert loaded.image.shape == (1, 3, 6, 9) and loaded.image.dtype == torch.float32
    assert float(loaded.image.min()) >= 0.0 and float(loaded.image.max()) <= 1.0
    red = loaded.image[0, 0]
    assert torch.all(red[:, 1:] >= red[:, :-1]) and red[0, -1] > red[0, 0]  # columns along W


def test_datalist_relative_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _pair(data, "x")
    _pair(data, "y")
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"training": [{"image": "data/images/y.png", "label": "data/masks/y.png"}],
                                    "testing": [{"image": "data/images/x.png", "label": "data/masks/x.png"}]}))
    cases = discover_cases(datalist)
    assert [c.name for c in cases] == ["data/images/x"]  # "testing" comes first
    assert cases[0].image == tmp_path / "data" / "images" / "x.png"
    assert [c.image.name for c in discover_cases(datalist, "training")] == ["y.png"]
    with pytest.raises(ValueError, match="validation"):
        discover_cases(datalist, "validation")


def test_refusals_are_clear(tmp_path: Path) -> None:
    _pair(tmp_path / "orphan", "a")
    (tmp_path / "orphan" / "masks" / "a.png").unlink()
    with pytest.raises(ValueError, match="no mask"):
        discover_cases(tmp_path / "orphan")
    (tmp_path / "vol" / "images").mkdir(parents=True)
    (tmp_path / "vol" / "masks").mkdir()
    (tmp_path / "vol" / "images" / "v.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="3D"):
        discover_cases(tmp_path / "vol")
    with pytest.raises(ValueError, match="images/ and masks/"):
        discover_cases(tmp_path)
    with pytest.raises(FileNotFoundError):
        discover_cases(tmp_path / "missing")
    empty = tmp_path / "empty"
    _pair(empty, "a")
    Image.fromarray(np.zeros((6, 9), np.uint8)).save(empty / "masks" / "a.png")
    with pytest.raises(ValueError, match="empty"):
        load_case(discover_cases(empty)[0])
    with pytest.raises(ValueError, match="empty"):
        validate_masks(discover_cases(empty))

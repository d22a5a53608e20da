"""Head training data from 3D volumes: slices along the through-plane axis, windowed per volume, split by volume,
empty neighbours prompted by their neighbour's box; a tiny-ViT training run on a synthetic volume folder, and the
split of the real ``train/brats_mri3d``."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_baldsam.head.train.data import EMPTY_NEIGHBOURS, VAL_SLICE_STRIDE, load_items, split_cases
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.simulation import FirstKind, start_sessions
from monai_baldsam.head.train.trainer import TrainConfig, train_head
from monai_baldsam.head.train.volume_slices import VolumeSliceCase, VolumeSliceLoader, volume_slice_cases

_FAST = TrainConfig(epochs=1, batch_size=4, min_rounds=2, max_rounds=2, val_rounds=2, laplace_rounds=1,
                    laplace_pixels_per_state=64, temperatures=(1.0, 100.0), eval_interactions=2)


def _volume_folder(root: Path, n: int = 3) -> Path:
    """``n`` volumes (12 x 40 x 36, voxels 3 x 1 x 1 mm: the through-plane axis is 0) with a blob on slices 4..7."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    affine = np.diag([3.0, 1.0, 1.0, 1.0])
    for v in range(n):
        mask = np.zeros((12, 40, 36), dtype=np.uint8)
        mask[4:8, 10 + v:26 + v, 8:24] = 1
        # an intensity ramp along the through-plane axis: per-slice min-max would erase it, a per-volume window not
        ramp = np.linspace(0.0, 300.0, 12)[:, None, None]
        image = (ramp + rng.random(mask.shape) * 40 + mask * 400).astype(np.float32)
        nib.save(nib.Nifti1Image(image, affine), root / "images" / f"vol_{v}.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine), root / "masks" / f"vol_{v}.nii.gz")
    return root


def test_volume_folder_is_split_by_volume_with_empty_neighbours_in_training(tmp_path) -> None:
    folder = _volume_folder(tmp_path / "vols")
    train, val = split_cases([folder], 0.3, seed=0)
    again = split_cases([folder], 0.3, seed=0)
    assert [c.name for _, c in train] == [c.name for _, c in again[0]]
    train_volumes = {c.volume for _, c in train}
    val_volumes = {c.volume for _, c in val}
    assert len(val_volumes) == 1 and len(train_volumes) == 2 and not train_volumes & val_volumes  # no volume leaks
    assert all(isinstance(c, VolumeSliceCase) and c.axis == 0 for _, c in train + val)  # the through-plane axis
    assert sorted(c.index for _, c in val) == [4, 5, 6, 7][::VAL_SLICE_STRIDE] and not any(c.is_empty for _, c in val)
    for volume in train_volumes:
        cases = [c for _, c in train if c.volume == volume]
        empty = {c.index: c.neighbour for c in cases if c.is_empty}
        assert [c.index for c in cases if not c.is_empty] == [4, 5, 6, 7]
        assert empty == {2: 4, 3: 4, 8: 7, 9: 7} and EMPTY_NEIGHBOURS == 2
    with pytest.raises(ValueError, match="empty_neighbours"):
        volume_slice_cases("vol_0", folder / "images" / "vol_0.nii.gz", folder / "masks" / "vol_0.nii.gz", -1)


def test_slices_are_windowed_per_volume_in_sam_orientation(tmp_path) -> None:
    folder = _volume_folder(tmp_path / "vols", n=1)
    cases = volume_slice_cases("vol_0", folder / "images" / "vol_0.nii.gz", folder / "masks" / "vol_0.nii.gz", 2)
    loader = VolumeSliceLoader()
    by_index = {c.index: c for c in cases}
    low, _ = loader.load(by_index[2])
    high, _ = loader.load(by_index[7])
    mask = np.asarray(nib.load(folder / "masks" / "vol_0.nii.gz").dataobj).astype(bool)
    np.testing.assert_array_equal(high.truth, mask[7].T)  # [x, y] of the slice -> SAM's (H = y, W = x)
    assert high.image.shape == (1, 3, 36, 40) and not low.truth.any()
    # one window for the volume: the ramp survives (a per-slice min-max would give both slices the range [0, 1])
    assert float(low.image.max()) < 0.6 < float(high.image.max())
    _, prompt_truth = loader.load(by_index[2])
    np.testing.assert_array_equal(prompt_truth, mask[4].T)  # an empty slice is prompted by its neighbour's box


def test_empty_slices_start_from_their_neighbours_box_and_train(tiny_vit, tmp_path) -> None:
    folder = _volume_folder(tmp_path / "vols")
    train, val = split_cases([folder], 0.3, seed=0)
    items = load_items(train, tiny_vit, EmbeddingStore(tmp_path / "store"), keep_images=False, progress=False)
    empty = [i for i in items if i.is_empty]
    assert empty and all(not i.target.any() and i.box_xy[2] > i.box_xy[0] for i in empty)
    state = start_sessions(empty, FirstKind.CLICK, np.random.default_rng(0), tiny_vit.img_size,
                           int(tiny_vit.low_res_hw[0]))
    assert state.has_box.all() and all(not p for p in state.points_sam_xy)  # no click on a slice without the object
    result = train_head([folder], tmp_path / "head.pt", backbone=tiny_vit, seed=0, val_fraction=0.3,
                        store_dir=tmp_path / "store", config=_FAST, progress=False)
    card = result.card
    assert card["counts"]["train"]["vols"] == len(items) and card["counts"]["val"]["vols"] == len(val)
    described = card["data"]["train"]
    assert {d["volume"] for d in described}.isdisjoint({d["volume"] for d in card["data"]["val"]})
    assert all(d["axis"] == 0 and "slice" in d for d in described)
    assert sorted(d["neighbour"] for d in described if "neighbour" in d) == sorted(i.case.neighbour for i in empty)


def test_train_brats_mri3d_splits_by_volume(shared_data) -> None:
    folder = shared_data / "train" / "brats_mri3d"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing: the brain head's training data")
    train, val = split_cases([folder], 0.15, seed=0)
    train_volumes, val_volumes = {c.volume for _, c in train}, {c.volume for _, c in val}
    assert len(train_volumes) == 2 and len(val_volumes) == 1 and not train_volumes & val_volumes
    assert all(c.axis == 2 for _, c in train + val)  # 1 mm isotropic: ties go to axis 2
    for volume in train_volumes:
        cases = [c for _, c in train if c.volume == volume]
        filled = [c.index for c in cases if not c.is_empty]
        assert len(filled) > 30  # every tumour slice of a brats volume (60-80 of them)
        ends = {c.index for c in cases if c.is_empty}
        assert ends and all(min(abs(k - f) for f in filled) <= EMPTY_NEIGHBOURS for k in ends)
    loaded, _ = VolumeSliceLoader().load(val[len(val) // 2][1])
    assert loaded.truth.any() and 0.0 <= float(loaded.image.min()) and float(loaded.image.max()) <= 1.0
    assert isinstance(loaded.image, torch.Tensor)


def test_brain_mri_head_is_shipped_and_trained_on_train_volumes_split_by_volume(lite_medsam) -> None:
    import json

    from monai_baldsam.head.checkpoint import load_head
    from monai_baldsam.head.registry import resolve_head

    found = resolve_head("brats")
    assert found.path == resolve_head("brain_mri").path and found.path.name == "brats_v1.pt"
    card = json.loads(found.path.with_suffix(".json").read_text())
    assert card["data_dirs"] == ["train/brats_mri3d"] and card["init"]["file"] == "general_v1.pt"
    train_volumes = {d["volume"] for d in card["data"]["train"]}
    val_volumes = {d["volume"] for d in card["data"]["val"]}
    assert train_volumes and val_volumes and not train_volumes & val_volumes  # split by volume
    assert all(d["axis"] == 2 for d in card["data"]["train"] + card["data"]["val"])
    assert any("neighbour" in d for d in card["data"]["train"])  # empty neighbours were trained on
    trained = load_head(found.path, lite_medsam, sha256=found.sha256)
    assert trained.head.n_channels == trained.laplace.n_channels

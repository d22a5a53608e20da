"""Head training: synthetic images on the tiny ViT (seeded reproducibility, files written), one smoke run on the
real LiteMedSAM, and the pure pieces (low-res targets, seeded split, loss)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.head.checkpoint import head_decoder, load_head
from monai_baldsam.head.train.data import low_res_target, split_cases
from monai_baldsam.head.train.trainer import TrainConfig, segmentation_loss, train_head

_FAST = TrainConfig(epochs=1, batch_size=3, min_rounds=2, max_rounds=2, val_rounds=2, laplace_rounds=1,
                    laplace_pixels_per_state=64, temperatures=(1.0, 100.0), eval_interactions=2)


def _synthetic_folder(root: Path, n: int = 5) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        h, w = 40 + 4 * i, 48
        y0, x0 = rng.integers(3, 15), rng.integers(3, 20)
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[y0:y0 + 15, x0:x0 + 18] = 255
        image = (rng.random((h, w)) * 60 + mask * 0.6).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"case_{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"case_{i}.png")
    return root


def test_low_res_target_follows_sam_geometry() -> None:
    truth = np.zeros((30, 60), dtype=bool)
    truth[10:20, 0:30] = True
    target, valid = low_res_target(truth, img_size=64, low_res=16)
    assert target.shape == valid.shape == (16, 16)
    assert valid[:8].all() and not valid[8:].any()  # 30 x 60 -> 32 x 64, padded to 64 x 64: rows 0..7 of 16 valid
    assert target[3:5, 1:7].all() and not target[:, 9:].any()


def test_split_is_seeded_and_by_image(tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "a", n=5)
    train, val = split_cases([folder], 0.4, seed=1)
    again_train, again_val = split_cases([folder], 0.4, seed=1)
    assert [c.name for _, c in train] == [c.name for _, c in again_train] and len(val) == 2 and len(train) == 3
    assert not {c.name for _, c in train} & {c.name for _, c in val}
    limited, _ = split_cases([folder], 0.0, seed=1, max_per_folder={"a": 2})
    assert len(limited) == 2
    with pytest.raises(ValueError, match="val_fraction"):
        split_cases([folder], 1.0, seed=1)


def test_segmentation_loss_counts_valid_pixels_only() -> None:
    target = torch.zeros((1, 4, 4))
    target[0, :2] = 1
    valid = torch.ones((1, 4, 4), dtype=torch.bool)
    good = segmentation_loss((target[:, None] * 20 - 10), target, valid)
    bad = segmentation_loss((10 - target[:, None] * 20), target, valid)
    assert good < 0.01 < bad
    valid[0, 2:] = False
    masked = segmentation_loss(torch.full((1, 1, 4, 4), 10.0), target, valid)
    assert masked < 0.01


def test_train_head_tiny_vit_is_reproducible(tiny_vit, tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "synthetic")
    states = []
    for run in ("a", "b"):
        result = train_head([folder], tmp_path / run / "head.pt", backbone=tiny_vit, seed=3, val_fraction=0.4,
                            store_dir=tmp_path / "store", config=_FAST, progress=False)
        assert result.path.is_file() and result.card_path == tmp_path / run / "head.json"
        trained = load_head(result.path, tiny_vit, sha256=result.card["head_sha256"])
        states.append((trained.head.state_dict(), trained.laplace.posterior_covariance))
    for key, value in states[0][0].items():
        torch.testing.assert_close(states[1][0][key], value)
    torch.testing.assert_close(states[0][1], states[1][1])
    card = json.loads(result.card_path.read_text())
    assert card["counts"] == {"train": {"synthetic": 3}, "val": {"synthetic": 2}}
    assert len(card["data"]["train"]) == 3 and len(card["data"]["train"][0]["image_sha256"]) == 64
    assert set(card["validation_full_res_oracle"]["head"]) == {"box", "click"}
    with pytest.raises(FileExistsError):
        train_head([folder], result.path, backbone=tiny_vit, config=_FAST, progress=False)


@pytest.mark.slow
def test_train_head_smoke_lite_medsam(lite_medsam, shared_data, tmp_path) -> None:
    """One epoch on 4 busi training images with the real backbone: the pipeline runs and writes head + card."""
    busi = shared_data / "train" / "busi"
    result = train_head([busi], tmp_path / "head.pt", backbone=lite_medsam, seed=0, val_fraction=0.25,
                        max_per_folder=4, store_dir=tmp_path / "store", config=_FAST, progress=False)
    card = json.loads(result.card_path.read_text())
    assert card["counts"] == {"train": {"busi": 3}, "val": {"busi": 1}}
    assert card["backbone"]["backbone"] == "lite_medsam" and card["laplace"]["fitted_pixels"] > 0
    head_box = card["validation_full_res_oracle"]["head"]["box"]["miou_per_interaction"]
    assert len(head_box) == 2 and all(0.0 <= v <= 1.0 for v in head_box)
    trained = load_head(result.path, lite_medsam, sha256=card["head_sha256"])
    assert trained.head.n_channels == trained.laplace.n_channels
    assert result.path.stat().st_size < 5 << 20


def test_fine_tuning_starts_from_the_init_head_and_keeps_validation_unseen(tiny_vit, tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "synthetic", n=6)
    store = tmp_path / "store"
    first = train_head([folder], tmp_path / "a" / "head.pt", backbone=tiny_vit, seed=3, val_fraction=0.4,
                       store_dir=store, config=_FAST, progress=False)
    tuned = train_head([folder], tmp_path / "b" / "head.pt", backbone=tiny_vit, seed=4, val_fraction=0.5,
                       store_dir=store, config=_FAST, progress=False, init=first.path)
    card = tuned.card
    assert card["init"] == {"file": "head.pt", "sha256": first.card["head_sha256"]}
    assert card["history"][0]["epoch"] == 0 and "val_miou" in card["history"][0]
    seen = {d["image_sha256"] for d in first.card["data"]["train"]}
    assert not seen & {d["image_sha256"] for d in card["data"]["val"]}  # validation never saw training
    assert len(card["data"]["train"]) + len(card["data"]["val"]) == 6
    assert card["data_dirs"][0].endswith("/synthetic") and not card["data_dirs"][0].startswith("/")  # no abs paths
    with pytest.raises(ValueError, match="may only set 'features'"):
        train_head([folder], tmp_path / "c" / "head.pt", backbone=tiny_vit, config=_FAST, progress=False,
                   init=first.path, head_options={"hidden_channels": 4})
    # moving a head to a click-trained decoder keeps its layers and changes only how the decoder is prompted
    moved = train_head([folder], tmp_path / "d" / "head.pt", backbone=tiny_vit, seed=4, val_fraction=0.5,
                       store_dir=store, config=_FAST, progress=False, init=first.path,
                       head_options={"features": {"decoder_clicks": "always"}})
    assert first.card["head_config"]["features"]["decoder_clicks"] == "without_box"
    assert moved.card["head_config"]["features"]["decoder_clicks"] == "always"
    assert {k: v for k, v in moved.card["head_config"].items() if k != "features"} == \
        {k: v for k, v in first.card["head_config"].items() if k != "features"}
    assert head_decoder(moved.path) == "original" and moved.card["encoder_runtime"] == "torch"


def test_uncertain_training_clicks_go_where_the_prediction_is_least_certain() -> None:
    from monai_baldsam.head.train.simulation import uncertain_click

    logits = np.full((32, 32), 8.0)
    logits[:, 16:] = -8.0
    logits[10:22, 14:18] = 0.0  # an uncertain stretch of the boundary
    truth = np.zeros((32, 32), dtype=bool)
    truth[:, :15] = True
    valid = np.ones((32, 32), dtype=bool)
    u, v, label = uncertain_click(logits, truth, valid)
    assert 14 <= u < 18 and 10 <= v < 22 and label == int(truth[v, u])
    valid[10:22, 14:18] = False  # clicked already: the next most uncertain place is elsewhere
    u, v, _ = uncertain_click(logits, truth, valid)
    assert not (14 <= u < 18 and 10 <= v < 22)
    assert uncertain_click(logits, truth, np.zeros_like(valid)) is None
    with pytest.raises(ValueError, match="uncertain_click_fraction"):
        TrainConfig(uncertain_click_fraction=1.5)

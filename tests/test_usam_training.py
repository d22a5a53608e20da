"""train_usam end to end on a tiny synthetic folder with tiny random ViTs: the model gap head, the card, the state
cache, and seeded reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.sam.backbones import build_sam_vit
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.usam.checkpoint import load_usam_file
from monai_baldsam.usam.train.data import StateConfig, StateStore
from monai_baldsam.usam.train.trainer import UsamTrainConfig, choose_cases, train_usam


def _folder(root, n: int = 6):
    rng = np.random.default_rng(0)
    folder = root / "synth"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        image = (rng.random((48, 64)) * 80).astype(np.uint8)
        mask = np.zeros((48, 64), dtype=np.uint8)
        y0, x0 = rng.integers(4, 20), rng.integers(4, 30)
        mask[y0:y0 + 16, x0:x0 + 20] = 255
        image[mask > 0] += 120
        Image.fromarray(image).save(folder / "images" / f"case{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"case{i}.png")
    return folder


def test_choose_cases_puts_seen_images_last(tmp_path):
    folder = _folder(tmp_path)
    seen = {file_sha256(folder / "images" / f"case{i}.png") for i in (0, 1, 2)}
    train, val, seen_names = choose_cases([folder], seed=0, val_fraction=0.2, max_per_folder=4, seen_sha256=seen)
    chosen = [c.name for _, c in val + train]
    assert len(val) == 1 and len(train) == 3
    assert {"case3", "case4", "case5"} <= set(chosen)  # all unseen images come first
    assert seen_names == set(chosen) - {"case3", "case4", "case5"}
    with pytest.raises(ValueError, match="val_fraction"):
        choose_cases([folder], 0, 1.0)


def test_train_usam_with_model_gap(tiny_vit, tiny_head, tmp_path):
    folder = _folder(tmp_path)
    torch.manual_seed(3)
    large = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64, window_size=2,
                          name="tiny_large").eval().requires_grad_(False)
    head_model = BayesianHeadClickModel(SamPredictor(tiny_vit), *tiny_head)
    kwargs = dict(backbone=tiny_vit, head=head_model, large_backbone=large, seed=0, val_fraction=0.3,
                  states=StateConfig(sam_jitters=1, head_rounds=2, dense_clicks=1),
                  config=UsamTrainConfig(epochs=15, patience=15), head_options={"hidden": 16},
                  store_dir=tmp_path / "emb", state_dir=tmp_path / "states", progress=False)
    result = train_usam([folder], tmp_path / "u.pt", **kwargs)
    card = json.loads(result.card_path.read_text())
    assert card["usam_sha256"] == file_sha256(result.path)
    assert card["targets"] == ["iou", "prompt_gap", "task_gap", "model_gap"]
    assert card["large_backbone"]["backbone"] == "tiny_large"
    assert card["counts"]["train_images"] == 4 and card["counts"]["val_images"] == 2
    # per image: 2 plain-decoder states (box, 1 jitter), head box + 2 session states
    assert card["counts"]["train_states"] == 4 * 5
    assert {e["name"] for e in card["data"]["train"] + card["data"]["val"]} == {f"case{i}" for i in range(6)}
    assert card["val_metrics"]["mae_model_gap"] is not None
    loaded = load_usam_file(result.path, tiny_vit, sha256=card["usam_sha256"])
    assert loaded.heads.config.model_gap
    assert len(StateStore(tmp_path / "states")) == 6
    with pytest.raises(FileExistsError):
        train_usam([folder], tmp_path / "u.pt", **kwargs)
    again = train_usam([folder], tmp_path / "u2.pt", **kwargs)  # states from the cache, same seed: same heads
    assert len(StateStore(tmp_path / "states")) == 6
    x = torch.randn((4, loaded.heads.config.in_features), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(load_usam_file(again.path, tiny_vit).heads.raw(x), loaded.heads.raw(x))

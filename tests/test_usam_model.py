"""UncertainSAM heads: forward ranges, gradients, save/load with hash and backbone checks, the shipped heads."""

from __future__ import annotations

import json

import pytest
import torch

from monai_baldsam.sam.backbones import build_sam_vit
from monai_baldsam.sam.checkpoints import CheckpointError, file_sha256
from monai_baldsam.usam import load_usam
from monai_baldsam.usam.checkpoint import WEIGHTS_DIR, load_usam_file, resolve_usam, save_usam
from monai_baldsam.usam.model import MaskQuality, UsamConfig, UsamHeads


def _heads(tiny_vit, model_gap: bool = False) -> UsamHeads:
    torch.manual_seed(0)
    return UsamHeads(UsamConfig.for_decoder(tiny_vit.mask_decoder, hidden=16, model_gap=model_gap))


def test_forward_ranges_and_shapes(tiny_vit):
    heads = _heads(tiny_vit).eval()
    x = torch.randn((5, heads.config.in_features), generator=torch.Generator().manual_seed(0)) * 10
    quality = heads(x)
    assert quality.iou.shape == (5,) and quality.model_gap is None
    assert bool(((quality.iou > 0) & (quality.iou < 1)).all())
    assert bool((quality.prompt_gap.abs() < 1).all()) and bool((quality.task_gap.abs() < 1).all())
    with_gap = _heads(tiny_vit, model_gap=True).eval()(x)
    assert with_gap.model_gap.shape == (5,)


def test_wrong_feature_width_is_refused(tiny_vit):
    heads = _heads(tiny_vit)
    with pytest.raises(ValueError, match="another decoder"):
        heads(torch.zeros((2, heads.config.in_features + 1)))


def test_backward_reaches_every_head(tiny_vit):
    heads = _heads(tiny_vit, model_gap=True).train()
    x = torch.randn((8, heads.config.in_features), generator=torch.Generator().manual_seed(1))
    heads.raw(x).sum().backward()
    for name, head in heads.heads.items():
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and bool(g.abs().sum() > 0) for g in grads), name


def test_normalisation_is_fitted(tiny_vit):
    heads = _heads(tiny_vit)
    x = torch.randn((50, heads.config.in_features), generator=torch.Generator().manual_seed(2)) * 3 + 7
    heads.set_normalisation(x)
    torch.testing.assert_close(heads.feature_mean, x.mean(0))
    assert float(heads.feature_std.min()) >= 1e-4


def test_quality_to_dict():
    q = MaskQuality(torch.tensor([0.91234]), torch.tensor([0.05]), torch.tensor([0.0]), None)
    assert q.to_dict() == {"predicted_iou": 0.9123, "prompt_gap": 0.05, "task_gap": 0.0, "model_gap": None}
    with pytest.raises(ValueError, match="one mask"):
        MaskQuality(torch.zeros(2), torch.zeros(2), torch.zeros(2)).to_dict()


def test_save_load_roundtrip(tiny_vit, tmp_path):
    heads = _heads(tiny_vit, model_gap=True).eval()
    heads.set_normalisation(torch.randn((10, heads.config.in_features)))
    path = save_usam(tmp_path / "u.pt", heads, tiny_vit, meta={"seed": 3})
    loaded = load_usam_file(path, tiny_vit, sha256=file_sha256(path))
    x = torch.randn((3, heads.config.in_features))
    torch.testing.assert_close(loaded.heads.raw(x), heads.raw(x))
    assert loaded.meta == {"seed": 3} and loaded.heads.config == heads.config
    with pytest.raises(FileExistsError):
        save_usam(path, heads, tiny_vit)


def test_load_refuses_wrong_hash_backbone_and_file(tiny_vit, tiny_head, tmp_path):
    heads = _heads(tiny_vit)
    path = save_usam(tmp_path / "u.pt", heads, tiny_vit)
    with pytest.raises(CheckpointError, match="SHA-256|sha256|hash"):
        load_usam_file(path, tiny_vit, sha256="0" * 64)
    torch.manual_seed(1)
    other = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64, window_size=2,
                          name="other_vit")
    with pytest.raises(ValueError, match="trained on backbone"):
        load_usam_file(path, other)
    from monai_baldsam.head.checkpoint import save_head

    head_file = save_head(tmp_path / "head.pt", *tiny_head, tiny_vit)
    with pytest.raises(CheckpointError, match="not an UncertainSAM heads file"):
        load_usam_file(head_file, tiny_vit)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_usam_file(broken, tiny_vit)
    with pytest.raises(FileNotFoundError, match="neither shipped"):
        resolve_usam(tmp_path / "missing.pt")


def test_shipped_heads_card_and_lite_medsam(lite_medsam):
    found = resolve_usam("general")
    card = json.loads(found.path.with_suffix(".json").read_text())
    assert found.path.parent == WEIGHTS_DIR
    assert card["usam_sha256"] == file_sha256(found.path) == found.sha256
    assert card["backbone"]["backbone"] == "lite_medsam" and card["large_backbone"] is None
    assert card["targets"] == ["iou", "prompt_gap", "task_gap"]
    assert all(entry["image_sha256"] and entry["mask_sha256"] for entry in card["data"]["train"])
    assert all(not d.startswith("dev") for d in card["data_dirs"])
    model = load_usam("general", backbone=lite_medsam)
    assert model.heads.config.model_gap is False

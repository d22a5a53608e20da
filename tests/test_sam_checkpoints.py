"""Checkpoint loading: hash verification, safe loading and clear errors for bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from monai_baldsam.sam import backbones
from monai_baldsam.sam.backbones import BackboneSpec, build_sam_vit, load_backbone, register_backbone
from monai_baldsam.sam.checkpoints import CheckpointError, file_sha256, load_state_dict, verify_sha256

LITE_SHA = backbones.get_backbone_spec("lite_medsam").checkpoint_sha256


def _tiny_spec(name: str) -> BackboneSpec:
    return BackboneSpec(name=name, build=lambda: build_sam_vit(32, 2, 2, (1,), img_size=64, window_size=2, name=name),
                        checkpoint_sha256=None)


def test_packaged_lite_medsam_matches_published_hash() -> None:
    path = backbones.get_backbone_spec("lite_medsam").packaged_checkpoint()
    assert file_sha256(path) == LITE_SHA


def test_truncated_checkpoint_names_file_and_expected_hash(tmp_path: Path) -> None:
    source = backbones.get_backbone_spec("lite_medsam").packaged_checkpoint()
    broken = tmp_path / "lite_medsam.pth"
    broken.write_bytes(source.read_bytes()[: 1 << 20])
    with pytest.raises(CheckpointError) as info:
        load_backbone("lite_medsam", checkpoint=broken)
    message = str(info.value)
    assert str(broken) in message and LITE_SHA in message


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone("lite_medsam", checkpoint=tmp_path / "nope.pth")


def test_vit_without_checkpoint_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALDSAM_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError) as info:
        load_backbone("vit_b")
    message = str(info.value)
    assert "sam_vit_b_01ec64.pth" in message and str(tmp_path) in message and "--checkpoint" in message


def test_checkpoint_found_in_cache_folder_is_hash_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALDSAM_CACHE", str(tmp_path))
    fake = tmp_path / "checkpoints" / "sam_vit_b_01ec64.pth"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="ec2df62732614e57"):
        load_backbone("vit_b")


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as handle:
        pickle.dump({"x": object()}, handle)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_state_dict(evil)


def test_wrong_architecture_is_refused_even_with_matching_hash(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save({"image_encoder.foo": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="does not fit backbone"):
        load_backbone("lite_medsam", checkpoint=other, checkpoint_sha256=file_sha256(other))


def test_fine_tuned_vit_checkpoint_loads_with_its_own_hash(tmp_path: Path) -> None:
    register_backbone(_tiny_spec("tiny_ckpt"), overwrite=True)
    try:
        source = build_sam_vit(32, 2, 2, (1,), img_size=64, window_size=2)
        state = {f"{part}.{k}": v for part in ("image_encoder", "prompt_encoder", "mask_decoder")
                 for k, v in getattr(source, part).state_dict().items()}
        path = tmp_path / "tiny.pth"
        torch.save({"model": state}, path)
        with pytest.raises(CheckpointError, match="SHA-256"):
            verify_sha256(path, "0" * 64)
        model = load_backbone("tiny_ckpt", checkpoint=path, checkpoint_sha256=file_sha256(path))
        key = "image_encoder.patch_embed.proj.weight"
        assert torch.equal(model.state_dict()[key], state[key])
        assert model.checkpoint_sha256 == file_sha256(path)
        assert not any(p.requires_grad for p in model.parameters())
    finally:
        backbones.BACKBONES.pop("tiny_ckpt", None)


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(ValueError, match="lite_medsam.*vit_b|vit_b.*lite_medsam"):
        load_backbone("vit_x")

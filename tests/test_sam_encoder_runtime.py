"""The image encoder's runtimes: OpenVINO against the fp32 eager reference (tiny ViT, and LiteMedSAM on real dev
images: masks from the fast path equal the reference's), the converted-model cache, runtime selection errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.encoder_runtime import (
    EncoderRuntime,
    OpenVinoEncoder,
    TorchEncoder,
    default_encoder_runtime,
    make_encoder,
)
from monai_baldsam.sam.predictor import SamPredictor


def test_openvino_f32_matches_the_eager_encoder_on_the_tiny_vit(tiny_vit, tmp_path) -> None:
    inputs = torch.rand(2, 3, 64, 64)
    reference = TorchEncoder(tiny_vit)(inputs)
    fast = OpenVinoEncoder(tiny_vit, precision="f32", cache_dir=tmp_path)
    torch.testing.assert_close(fast(inputs), reference, atol=1e-4, rtol=1e-4)
    assert fast.tag == "openvino-f32" and not list(tmp_path.iterdir())  # random weights are never cached
    bf16 = OpenVinoEncoder(tiny_vit, precision="bf16", cache_dir=tmp_path)(inputs)
    assert (bf16 - reference).abs().max() < 0.1 * reference.abs().max()
    with pytest.raises(ValueError, match="encoder inputs"):
        fast(torch.rand(1, 3, 32, 32))


def test_converted_model_is_cached_by_checkpoint_and_reused(tiny_vit, tmp_path) -> None:
    tiny_vit.checkpoint_sha256 = "ab" * 32
    OpenVinoEncoder(tiny_vit, precision="f32", cache_dir=tmp_path)
    (xml,) = tmp_path.glob("*.xml")
    assert "abab" in xml.name and xml.with_suffix(".bin").is_file() and not list(tmp_path.glob(".converting-*"))
    before = xml.stat().st_mtime_ns
    OpenVinoEncoder(tiny_vit, precision="bf16", cache_dir=tmp_path)  # another precision: same converted model
    assert xml.stat().st_mtime_ns == before and len(list(tmp_path.glob("*.xml"))) == 1


def test_runtime_selection(tiny_vit) -> None:
    assert default_encoder_runtime("cpu") is EncoderRuntime.OPENVINO_F32
    assert default_encoder_runtime("cuda") is EncoderRuntime.TORCH
    assert isinstance(make_encoder(tiny_vit, "torch"), TorchEncoder)
    with pytest.raises(ValueError, match="unknown encoder runtime 'fast'"):
        make_encoder(tiny_vit, "fast")
    with pytest.raises(ValueError, match="precision"):
        OpenVinoEncoder(tiny_vit, precision="int4")
    reference, fast = SamPredictor(tiny_vit), SamPredictor(tiny_vit, encoder=make_encoder(tiny_vit, "openvino-f32"))
    assert reference.model_name == "tiny_vit" and fast.model_name == "tiny_vit+openvino-f32"  # distinct cache keys


@pytest.mark.slow
def test_default_fast_encoder_gives_the_reference_masks_on_dev_images(lite_medsam, dev_dir) -> None:
    """Box masks of LiteMedSAM from the default fast encoder (OpenVINO f32) against the fp32 eager encoder on real dev
    images of four domains: IoU >= 0.99 on each (the criterion), and the embedding difference is small but not 0
    (another implementation of the same graph)."""
    reference = SamPredictor(lite_medsam)
    fast = SamPredictor(lite_medsam, encoder=make_encoder(lite_medsam, "auto"))
    assert fast.encoder.tag == "openvino-f32"
    worst_iou, worst_diff, scale, ious = 1.0, 0.0, 0.0, []
    for domain in ("busi", "kvasir", "ph2", "ct2d"):
        for case in discover_cases(dev_dir(domain))[:2]:
            loaded = load_case(case)
            box = mask_boxes(loaded.truth[None])[0]
            image = (loaded.image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            masks, features = [], []
            for predictor in (reference, fast):
                features.append(predictor.set_image(image).features)
                masks.append(predictor.predict(box=box)[0][0])
            worst_diff = max(worst_diff, float((features[1] - features[0]).abs().max()))
            scale = max(scale, float(features[0].abs().max()))
            union = np.logical_or(*masks).sum()
            iou = np.logical_and(*masks).sum() / union if union else 1.0
            worst_iou = min(worst_iou, float(iou))
            ious.append(float(iou))
            assert iou >= 0.99, f"{domain}/{case.name}: OpenVINO f32 mask IoU {iou:.4f} with the fp32 reference"
    print(f"mean mask IoU {np.mean(ious):.4f}, worst {worst_iou:.4f}; max embedding difference {worst_diff:.4f} "
          f"of max |value| {scale:.3f}")
    assert np.mean(ious) >= 0.99
    assert 0 < worst_diff < 1e-3 * scale  # OpenVINO's kernels differ from PyTorch's in rounding only

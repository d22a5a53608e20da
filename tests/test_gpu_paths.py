"""The head, BALD suggestion and volume session on CUDA agree with the CPU (marked gpu: skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_baldsam.io import load_image
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.suggestion import suggest_2d
from monai_baldsam.transforms.prompts import UserPrompts

pytestmark = pytest.mark.gpu


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_head_segmentation_and_suggestion_on_cuda_match_cpu(dev_dir) -> None:
    image = load_image(dev_dir("busi") / "images" / "benign_001.png")
    prompts = UserPrompts(box=[100, 100, 250, 250], foreground=[[175, 175]])
    found = {}
    for device in ("cpu", "cuda"):
        segmenter = Segmenter(device=device, head="general")
        label = segmenter(image, prompts)[0].cpu().numpy() > 0
        found[device] = (label, suggest_2d(segmenter, image, prompts))
    (label_cpu, s_cpu), (label_gpu, s_gpu) = found["cpu"], found["cuda"]
    assert label_cpu.any() and _iou(label_cpu, label_gpu) > 0.98
    np.testing.assert_allclose(s_gpu.maps["mutual_information"], s_cpu.maps["mutual_information"], atol=2e-2)
    assert abs(s_gpu.score - s_cpu.score) < 0.02 * max(s_cpu.score, 1e-3) + 1e-3


def test_volume_session_on_cuda(dev_dir) -> None:
    image = load_image(dev_dir("brats_mri3d") / "images" / "brats_2013_pat0002_1.nii.gz")
    mask = load_image(dev_dir("brats_mri3d") / "masks" / "brats_2013_pat0002_1.nii.gz")[0].numpy() > 0
    k = int(mask.sum(axis=(0, 1)).argmax())
    ii, jj = np.nonzero(mask[:, :, k])
    segmenter = Segmenter(device="cuda", head="general")
    label = segmenter(image, UserPrompts(box=[ii.min(), jj.min(), k, ii.max(), jj.max()]), propagate=True)
    predicted = label[0].cpu().numpy() > 0
    dice = 2 * (predicted & mask).sum() / (predicted.sum() + mask.sum())
    assert dice > 0.8, f"whole-volume Dice {dice:.3f} on CUDA"

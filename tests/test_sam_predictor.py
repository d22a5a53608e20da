"""The encode-once / prompt-many predictor on the real LiteMedSAM and on a tiny random ViT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.sam.embedding_cache import EmbeddingCache, EmbeddingKey
from monai_baldsam.sam.predictor import SamPredictor


def _load_pair(folder: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    image = next((folder / "images").glob(f"{stem}.*"))
    return np.array(Image.open(image).convert("RGB")), np.array(Image.open(folder / "masks" / f"{stem}.png")) > 127


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize(("domain", "stem"), [("busi", "benign_002"), ("ph2", "IMD002"), ("kvasir", "effisegnet_test_000")])
def test_box_prompt_segments_dev_images(lite_medsam, dev_dir, domain: str, stem: str) -> None:
    image, mask = _load_pair(dev_dir(domain), stem)
    predictor = SamPredictor(lite_medsam)
    predictor.set_image(image)
    masks, iou_pred, low_res = predictor.predict(box=_box(mask))
    assert masks.shape == (1, *mask.shape) and low_res.shape == (1, 256, 256) and iou_pred.shape == (1,)
    assert _iou(masks[0], mask) > 0.8


def test_batched_prompts_equal_single_prompts(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit)
    rng = np.random.default_rng(0)
    predictor.set_image(rng.random((48, 40, 3)).astype(np.float32))
    coords = torch.tensor([[[10.0, 20.0]], [[30.0, 5.0]], [[1.0, 50.0]]])
    labels = torch.tensor([[1], [0], [1]])
    batched = predictor.predict_torch(coords, labels)
    assert batched.logits.shape == (3, 1, 48, 40) and batched.low_res_logits.shape == (3, 1, 16, 16)
    for b in range(3):
        single = predictor.predict_torch(coords[b:b + 1], labels[b:b + 1])
        torch.testing.assert_close(single.logits, batched.logits[b:b + 1], atol=1e-4, rtol=1e-4)


def test_mask_feedback_and_multimask(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit)
    predictor.set_image(np.zeros((30, 60), np.uint8))
    masks, iou, low_res = predictor.predict(point_coords=np.array([[5, 5]]), point_labels=np.array([1]),
                                            multimask_output=True)
    assert masks.shape == (3, 30, 60) and iou.shape == (3,)
    again, _, _ = predictor.predict(point_coords=np.array([[5, 5]]), point_labels=np.array([1]),
                                    mask_input=low_res[:1])
    assert again.shape == (1, 30, 60)


def test_repeated_prompts_never_re_encode(tiny_vit) -> None:
    calls = []
    tiny_vit.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    image = np.full((32, 32), 128, np.uint8)
    key = EmbeddingKey("img", -1, 0, tiny_vit.name, "random")
    for _ in range(3):
        predictor.set_image(image, cache_key=key)
        predictor.predict(point_coords=np.array([[3, 4]]), point_labels=np.array([1]))
    assert len(calls) == 1 and predictor.cache.hits == 2


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"point_coords": np.array([[40, 3]]), "point_labels": np.array([1])}, r"outside the image of size \(32, 24\)"),
        ({"point_coords": np.array([[-1, 3]]), "point_labels": np.array([1])}, "outside"),
        ({"box": np.array([5, 5, 5, 10])}, "empty"),
        ({"box": np.array([0, 0, 40, 10])}, "outside"),
        ({"point_coords": np.array([[1, 1]]), "point_labels": np.array([2])}, "labels must be 1"),
        ({}, "at least one prompt"),
    ],
)
def test_bad_prompts_raise_clear_errors(tiny_vit, kwargs: dict, pattern: str) -> None:
    predictor = SamPredictor(tiny_vit)
    predictor.set_image(np.zeros((24, 32), np.uint8))
    with pytest.raises(ValueError, match=pattern):
        predictor.predict(**kwargs)


def test_bad_images_raise_clear_errors(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit)
    with pytest.raises(ValueError, match=r"window the image first"):
        predictor.set_image(np.full((8, 8), 300.0, np.float32))
    with pytest.raises(ValueError, match="shape"):
        predictor.set_image(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(RuntimeError, match="no image is set"):
        predictor.predict(box=np.array([0, 0, 3, 3]))

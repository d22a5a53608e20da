"""The slice-wise SAM inferer and the Segmenter on real dev images and volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_baldsam.inferers import SlicePrompt, SliceWiseSamInferer
from monai_baldsam.io import load_image, load_mask
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.transforms.prompts import UserPrompts, to_slice_prompts


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def segmenter(lite_medsam) -> Segmenter:
    return Segmenter(lite_medsam)  # the session's backbone, not loaded again


def test_2d_box_gives_good_masks_in_input_geometry(segmenter, dev_dir) -> None:
    folder = dev_dir("busi")
    ious = []
    for path in sorted((folder / "images").glob("*.png"))[:5]:
        image = load_image(path)
        truth = load_mask(folder / "masks" / path.name, reference=image)[0].numpy().astype(bool)
        xs, ys = np.nonzero(truth)  # MONAI order: index [x, y]
        label = segmenter(image, UserPrompts(box=[xs.min(), ys.min(), xs.max(), ys.max()]))
        assert isinstance(label, MetaTensor) and label.shape == (1, *image.shape[1:]) and label.dtype == torch.uint8
        assert torch.equal(label.affine, image.affine)
        ious.append(_iou(label[0].numpy().astype(bool), truth))
    assert min(ious) > 0.6 and float(np.mean(ious)) > 0.8, ious


def test_3d_box_segments_its_slice_only(segmenter, dev_dir) -> None:
    folder = dev_dir("brats_mri3d")
    image = load_image(folder / "images" / "brats_2013_pat0001_1.nii.gz")
    truth = load_mask(folder / "masks" / "brats_2013_pat0001_1.nii.gz", reference=image)[0].numpy().astype(bool)
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    i, j = np.nonzero(truth[:, :, k])
    label = segmenter(image, UserPrompts(box=[i.min(), j.min(), k, i.max(), j.max()]))
    assert label.shape == image.shape and torch.allclose(label.affine, image.affine)
    per_slice = label[0].numpy().sum(axis=(0, 1))
    assert per_slice[k] > 0 and per_slice.sum() == per_slice[k]
    assert _iou(label[0, :, :, k].numpy().astype(bool), truth[:, :, k]) > 0.7


def test_batched_encoding_matches_single_and_is_cached(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    inferer = SliceWiseSamInferer(axis=1, batch_size=3)
    volume = MetaTensor(torch.rand(1, 20, 7, 30))
    batched = inferer.encode(volume, predictor)
    assert sorted(batched) == list(range(7)) and batched[0].original_hw == (30, 20)
    single = SamPredictor(tiny_vit).encode(inferer.sam_images(volume, [4]))
    torch.testing.assert_close(batched[4].features, single, atol=1e-4, rtol=1e-4)
    calls = []
    tiny_vit.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    inferer.encode(volume, predictor)
    assert not calls and predictor.cache.hits == 7


def test_inferer_rejects_bad_input(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit)
    inferer = SliceWiseSamInferer()
    with pytest.raises(ValueError, match="channel-first"):
        inferer(torch.rand(1, 2, 3, 4, 5), predictor, prompts=SlicePrompt(box_xyxy=np.array([0, 0, 1, 1])))
    with pytest.raises(ValueError, match="no prompts"):
        inferer(torch.rand(1, 8, 8), predictor)
    with pytest.raises(ValueError, match="slice index 9 is outside"):
        inferer(torch.rand(1, 8, 8, 4), predictor, prompts={9: SlicePrompt(box_xyxy=np.array([0, 0, 3, 3]))})
    with pytest.raises(ValueError, match="axis must be"):
        SliceWiseSamInferer(axis=3)


def test_prompt_grouping_and_validation() -> None:
    grouped = to_slice_prompts(UserPrompts(box=[1, 2, 5, 6, 7], foreground=[[3, 3, 5], [2, 2, 9]],
                                           background=[[4, 4, 5]]), (10, 10, 12), axis=2)
    assert sorted(grouped) == [5, 9]
    np.testing.assert_array_equal(grouped[5].box_xyxy, [1, 2, 6, 7])
    np.testing.assert_array_equal(grouped[5].labels, [1, 0])
    assert grouped[9].box_xyxy is None and grouped[9].points_xy.tolist() == [[2.0, 2.0]]
    on_axis0 = to_slice_prompts(UserPrompts(box=[1, 2, 3, 4, 6]), (10, 10, 12), axis=0)
    assert list(on_axis0) == [3]
    with pytest.raises(ValueError, match="outside the image"):
        to_slice_prompts(UserPrompts(foreground=[[3, 3, 12]]), (10, 10, 12))
    with pytest.raises(ValueError, match="empty"):
        to_slice_prompts(UserPrompts(box=[5, 5, 5, 5]), (10, 10))
    with pytest.raises(ValueError, match="outside the volume"):
        to_slice_prompts(UserPrompts(box=[1, 1, 40, 5, 5]), (10, 10, 12))
    with pytest.raises(ValueError, match=r"\(x, y\) pixels"):
        to_slice_prompts(UserPrompts(foreground=[[1, 2, 3]]), (10, 10))
    with pytest.raises(ValueError, match="no prompt"):
        to_slice_prompts(UserPrompts(), (10, 10))

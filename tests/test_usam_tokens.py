"""Token capture: shapes, and the readout reproduces the decoder's own masks and IoU predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.head.features import FeatureExtractor, HeadPrompts
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.usam.features import DESCRIPTOR_NAMES, feature_dim, quality_features, valid_low_res
from monai_baldsam.usam.tokens import TokenCapture, decoder_readout


def _embedding(seed: int = 0) -> SliceEmbedding:
    g = torch.Generator().manual_seed(seed)
    return SliceEmbedding(torch.randn((1, 256, 4, 4), generator=g), (48, 64))


def test_tokens_have_the_decoder_shapes(tiny_vit):
    model = SamClickModel(SamPredictor(tiny_vit))
    decoder = tiny_vit.mask_decoder
    with TokenCapture(decoder) as capture:
        model.predict(_embedding(), np.array([[10.0, 12.0]]), np.array([1]), np.array([4.0, 4.0, 40.0, 30.0]), None)
    tokens = capture.last()
    assert len(capture.calls) == 1
    assert tokens.iou_token.shape == (1, decoder.transformer_dim)
    assert tokens.mask_tokens.shape == (1, decoder.num_mask_tokens, decoder.transformer_dim)
    assert tokens.upscaled.shape == (1, decoder.transformer_dim // 8, *tiny_vit.low_res_hw)
    # the hooks are gone after the block: a later call records nothing
    model.predict(_embedding(), None, None, np.array([4.0, 4.0, 40.0, 30.0]), None)
    assert len(capture.calls) == 1


def test_readout_reproduces_the_decoder(tiny_vit):
    predictor = SamPredictor(tiny_vit)
    embedding = _embedding(1)
    _, _, box = predictor.prompts_to_torch(None, None, np.array([5.0, 6.0, 50.0, 40.0]), embedding.original_hw)
    with TokenCapture(tiny_vit.mask_decoder) as capture:
        single = predictor.predict_torch(boxes=box, embedding=embedding)
    multi = predictor.predict_torch(boxes=box, multimask_output=True, embedding=embedding)
    iou, masks = decoder_readout(tiny_vit.mask_decoder, capture.last())
    torch.testing.assert_close(masks[:, :1], single.low_res_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(masks[:, 1:], multi.low_res_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(iou[:, :1], single.iou)
    torch.testing.assert_close(iou[:, 1:], multi.iou)


def test_capture_works_through_the_head_decoder(tiny_vit):
    """The prediction head runs its own copy of predict_masks: the hooks see it too."""
    extractor = FeatureExtractor(tiny_vit)
    prompts = HeadPrompts(torch.tensor([[[20.0, 20.0]]]), torch.tensor([[1]]), torch.zeros((1, 4)),
                          torch.tensor([False]))
    with TokenCapture(tiny_vit.mask_decoder) as capture:
        inputs = extractor(_embedding(2).features, prompts)
    _, masks = decoder_readout(tiny_vit.mask_decoder, capture.last())
    torch.testing.assert_close(masks[:, :1], inputs.sam_logits, rtol=1e-5, atol=1e-5)


def test_capture_errors():
    with pytest.raises(ValueError, match="MaskDecoder"):
        TokenCapture(torch.nn.Linear(2, 2))


def test_nothing_captured_is_an_error(tiny_vit):
    with TokenCapture(tiny_vit.mask_decoder) as capture:
        pass
    with pytest.raises(RuntimeError, match="not called"):
        capture.last()


def test_features_width_and_sam_mask_agreement(tiny_vit):
    model = SamClickModel(SamPredictor(tiny_vit))
    embedding = _embedding(3)
    with TokenCapture(tiny_vit.mask_decoder) as capture:
        out = model.predict(embedding, None, None, np.array([4.0, 4.0, 40.0, 30.0]), None)
    valid = valid_low_res(embedding.original_hw, tiny_vit.img_size, tiny_vit.low_res_hw[0])
    features = quality_features(tiny_vit.mask_decoder, capture.last(), out.low_res_logits, valid, False)
    decoder = tiny_vit.mask_decoder
    assert features.shape == (1, feature_dim(decoder.transformer_dim, decoder.num_mask_tokens))
    descriptor = dict(zip(DESCRIPTOR_NAMES, features[0, -len(DESCRIPTOR_NAMES):].tolist()))
    assert descriptor["agreement_iou"] == pytest.approx(1.0)  # SAM judged against itself
    assert descriptor["from_head"] == 0.0

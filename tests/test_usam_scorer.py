"""UsamModel on tiny random ViTs: plain decoder and Bayesian head, the click-model protocol, bad wiring refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.interaction.model import ClickModel, SamClickModel
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.usam import UsamModel
from monai_baldsam.usam.model import UsamConfig, UsamHeads


def _heads(decoder, **overrides) -> UsamHeads:
    torch.manual_seed(0)
    return UsamHeads(UsamConfig.for_decoder(decoder, hidden=8, **overrides)).eval()


def _image() -> torch.Tensor:
    return torch.rand((1, 3, 48, 64), generator=torch.Generator().manual_seed(0))


def test_head_masks_are_flagged_and_judged(tiny_vit, tiny_head):
    model = UsamModel(BayesianHeadClickModel(SamPredictor(tiny_vit), *tiny_head), _heads(tiny_vit.mask_decoder))
    assert isinstance(model, ClickModel) and model.from_head
    embedding = model.encode(_image())
    result = model.assess(embedding, np.array([[20.0, 20.0]]), np.array([1]), None)
    assert result.features[0, -1].item() == 1.0  # the "from a head" flag
    assert result.output.mask.shape == (48, 64) and 0.0 < result.quality.iou < 1.0
    # the protocol's predict leaves the quality of its prediction in last_quality
    output = model.predict(embedding, None, None, np.array([2.0, 3.0, 40.0, 30.0]), result.output.low_res_logits)
    assert output.mask.shape == (48, 64) and model.last_quality is not None
    assert model.last_quality != result.quality


def test_a_box_left_to_the_decoder_is_judged_as_the_decoder_s_mask(tiny_vit, tiny_head):
    """A head with ``box_alone='decoder'`` returns the decoder's mask for a box alone: judged like the plain decoder's
    (the "from a head" flag off, the same quality); a prompt with a click is still the head's."""
    predictor = SamPredictor(tiny_vit)
    heads = _heads(tiny_vit.mask_decoder)
    head_model = UsamModel(BayesianHeadClickModel(predictor, *tiny_head, box_alone="decoder"), heads)
    plain = UsamModel(SamClickModel(predictor), heads)
    embedding = head_model.encode(_image())
    box = np.array([2.0, 3.0, 40.0, 30.0])
    by_head, by_decoder = head_model.assess(embedding, None, None, box), plain.assess(embedding, None, None, box)
    assert by_head.features[0, -1].item() == 0.0
    torch.testing.assert_close(by_head.features, by_decoder.features, atol=1e-4, rtol=1e-4)
    clicked = head_model.assess(embedding, np.array([[20.0, 20.0]]), np.array([1]), box)
    assert clicked.features[0, -1].item() == 1.0


def test_plain_decoder_and_whole_image_box(tiny_vit):
    model = UsamModel(SamClickModel(SamPredictor(tiny_vit)), _heads(tiny_vit.mask_decoder))
    assert not model.from_head
    automatic = model.assess_image(_image())
    explicit = model.assess(model.encode(_image()), None, None, np.array([0.0, 0.0, 63.0, 47.0]))
    assert automatic.quality == explicit.quality  # no prompt = the whole image as the box
    assert automatic.features[0, -1].item() == 0.0


def test_bad_wiring_is_refused(tiny_vit):
    class NoPredictor:
        signature = "x"

    with pytest.raises(ValueError, match="SamPredictor"):
        UsamModel(NoPredictor(), _heads(tiny_vit.mask_decoder))  # type: ignore[arg-type]
    wrong = UsamHeads(UsamConfig(token_dim=128, n_mask_tokens=4, hidden=8))
    with pytest.raises(ValueError, match="width"):
        UsamModel(SamClickModel(SamPredictor(tiny_vit)), wrong)

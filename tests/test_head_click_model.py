"""The Bayesian head behind the ClickModel protocol, and its checkpoint file (tiny random ViT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.head.checkpoint import load_head, save_head
from monai_baldsam.head.click_model import EPIG_KEY, EXTRA_KEYS, BayesianHeadClickModel
from monai_baldsam.head.features import HeadPrompts
from monai_baldsam.interaction.model import ClickModel, prompt_tensors
from monai_baldsam.sam.backbones import build_sam_vit
from monai_baldsam.sam.checkpoints import CheckpointError, file_sha256
from monai_baldsam.sam.predictor import SamPredictor


def _image(h: int = 40, w: int = 52) -> torch.Tensor:
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(5))


def test_click_model_outputs_and_uncertainty_maps(tiny_vit, tiny_head) -> None:
    head, laplace = tiny_head
    model = BayesianHeadClickModel(SamPredictor(tiny_vit), head, laplace)
    assert isinstance(model, ClickModel)
    embedding = model.encode(_image())
    calls = []
    handle = tiny_vit.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        first = model.predict(embedding, np.array([[10, 12]]), np.array([1]), None, None)
        second = model.predict(embedding, np.array([[10, 12], [30, 20]]), np.array([1, 0]),
                               np.array([2, 3, 45, 35]), first.low_res_logits)
    finally:
        handle.remove()
    assert calls == []  # decoding never re-runs the image encoder
    for out in (first, second):
        assert out.probability.shape == out.mask.shape == (40, 52) and out.mask.dtype == bool
        assert out.low_res_logits.shape == (1, 1, 16, 16)
        assert set(out.extras) == set(EXTRA_KEYS)
        for key in EXTRA_KEYS:
            assert out.extras[key].shape == (40, 52) and np.isfinite(out.extras[key]).all()
        assert (out.extras["mutual_information"] >= 0).all()
        assert (out.extras["mutual_information"] <= out.extras["predictive_entropy"] + 1e-5).all()
        assert np.array_equal(out.mask, out.probability > 0.5)
    with pytest.raises(ValueError, match="at least a click or a box"):
        model.predict(embedding, None, None, None, None)
    with pytest.raises(ValueError, match="outside"):
        model.predict(embedding, np.array([[99, 12]]), np.array([1]), None, None)


def test_the_epig_map_is_returned_only_when_asked_and_leaves_the_rest_alone(tiny_vit, tiny_head) -> None:
    head, laplace = tiny_head
    predictor = SamPredictor(tiny_vit)
    plain = BayesianHeadClickModel(predictor, head, laplace)
    with_epig = BayesianHeadClickModel(predictor, head, laplace, epig=True)
    assert with_epig.extra_keys == (*EXTRA_KEYS, EPIG_KEY) and plain.extra_keys == EXTRA_KEYS
    assert with_epig.signature == plain.signature + "+epig"
    embedding = plain.encode(_image())
    outputs = [m.predict(embedding, np.array([[10, 12]]), np.array([1]), np.array([2, 3, 45, 35]), None)
               for m in (plain, with_epig)]
    assert set(outputs[0].extras) == set(EXTRA_KEYS)
    epig = outputs[1].extras[EPIG_KEY]
    assert epig.shape == (40, 52) and np.isfinite(epig).all() and (epig >= 0).all() and epig.max() > 0
    assert np.array_equal(outputs[0].mask, outputs[1].mask)
    for key in EXTRA_KEYS:
        np.testing.assert_array_equal(outputs[0].extras[key], outputs[1].extras[key])


def test_monte_carlo_maps_are_seeded(tiny_vit, tiny_head) -> None:
    head, laplace = tiny_head
    predictor = SamPredictor(tiny_vit)
    runs = []
    for seed in (3, 3, 4):
        model = BayesianHeadClickModel(predictor, head, laplace, uncertainty="mc", n_samples=8, seed=seed)
        embedding = model.encode(_image())
        runs.append(model.predict(embedding, np.array([[10, 12]]), np.array([1]), None, None).extras)
    assert np.array_equal(runs[0]["mutual_information"], runs[1]["mutual_information"])
    assert not np.array_equal(runs[0]["mutual_information"], runs[2]["mutual_information"])


def test_checkpoint_round_trip(tiny_vit, tiny_head, tmp_path) -> None:
    head, laplace = tiny_head
    path = save_head(tmp_path / "head.pt", head, laplace, tiny_vit, meta={"seed": 0})
    trained = load_head(path, tiny_vit, sha256=file_sha256(path))
    for key, value in head.state_dict().items():
        torch.testing.assert_close(trained.head.state_dict()[key], value)
    torch.testing.assert_close(trained.laplace.posterior_covariance, laplace.posterior_covariance)
    assert trained.config == head.config and trained.meta == {"seed": 0}
    assert not any(p.requires_grad for p in trained.head.parameters())
    with pytest.raises(FileExistsError):
        save_head(path, head, laplace, tiny_vit)
    model = BayesianHeadClickModel.from_trained(SamPredictor(tiny_vit), trained)
    assert trained.sha256[:16] in model.signature


def test_checkpoint_refuses_other_backbone_bad_hash_and_corrupt_file(tiny_vit, tiny_head, tmp_path) -> None:
    head, laplace = tiny_head
    path = save_head(tmp_path / "head.pt", head, laplace, tiny_vit)
    other = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64,
                          window_size=2, name="other_vit")
    with pytest.raises(ValueError, match="trained on backbone"):
        load_head(path, other)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_head(path, tiny_vit, sha256="0" * 64)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_head(corrupt, tiny_vit)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a head checkpoint"):
        load_head(foreign, tiny_vit)


def test_box_alone_answered_by_the_decoder(tiny_vit, tiny_head, tmp_path) -> None:
    """``box_alone='decoder'``: a box without clicks gives exactly SAM's decoder mask (with the head's maps); any prompt
    with a click is still the head's; the head file's meta sets the default; Monte Carlo maps are refused."""
    head, laplace = tiny_head
    predictor = SamPredictor(tiny_vit)
    by_head = BayesianHeadClickModel(predictor, head, laplace)
    by_decoder = BayesianHeadClickModel(predictor, head, laplace, box_alone="decoder")
    assert by_head.signature != by_decoder.signature
    embedding = by_head.encode(_image())
    box = np.array([2, 3, 45, 35])
    decoded = by_decoder.predict(embedding, None, None, box, None)
    headed = by_head.predict(embedding, None, None, box, None)
    inputs = by_decoder.extractor(embedding.features, _box_prompt(by_decoder, embedding, box))
    torch.testing.assert_close(decoded.low_res_logits, inputs.sam_logits.cpu())
    assert not torch.allclose(headed.low_res_logits, decoded.low_res_logits)
    assert decoded.extras["mutual_information"].shape == (40, 52)
    assert not np.array_equal(decoded.extras["mutual_information"], headed.extras["mutual_information"])
    clicks = (np.array([[10, 12]]), np.array([1]))
    torch.testing.assert_close(by_decoder.predict(embedding, *clicks, box, decoded.low_res_logits).low_res_logits,
                               by_head.predict(embedding, *clicks, box, decoded.low_res_logits).low_res_logits)
    path = save_head(tmp_path / "head.pt", head, laplace, tiny_vit, meta={"box_alone": "decoder"})
    trained = load_head(path, tiny_vit)
    assert BayesianHeadClickModel.from_trained(predictor, trained).box_alone.value == "decoder"
    assert BayesianHeadClickModel.from_trained(predictor, trained, box_alone="head").box_alone.value == "head"
    with pytest.raises(ValueError, match="quadrature"):
        BayesianHeadClickModel(predictor, head, laplace, uncertainty="mc", box_alone="decoder")
    with pytest.raises(ValueError, match="box_alone|BoxAlone|valid"):
        BayesianHeadClickModel(predictor, head, laplace, box_alone="sometimes")


def _box_prompt(model: BayesianHeadClickModel, embedding, box: np.ndarray) -> HeadPrompts:
    coords, labels, box_t = prompt_tensors(model.predictor, embedding, None, None, box)
    return HeadPrompts.single(coords, labels, box_t, None)

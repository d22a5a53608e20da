"""Head features and network on the tiny random ViT: decoder parity, no re-encoding, shapes and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from monai_baldsam.bayes import LastLayerLaplace
from monai_baldsam.head.features import (
    DecoderClicks,
    FeatureConfig,
    FeatureExtractor,
    HeadPrompts,
    decoder_channels,
    run_mask_decoder,
)
from monai_baldsam.head.model import HeadConfig, PredictionHead


def _embedding(backbone, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((1, backbone.prompt_encoder.embed_dim, *backbone.embedding_hw), generator=g)


def _prompts(batch: int = 1, with_prev: bool = False) -> HeadPrompts:
    points = torch.tensor([[[10.0, 20.0], [40.0, 30.0]]]).expand(batch, -1, -1)
    labels = torch.tensor([[1, 0]]).expand(batch, -1)
    boxes = torch.tensor([[5.0, 6.0, 50.0, 40.0]]).expand(batch, -1)
    has_box = torch.tensor([True] + [False] * (batch - 1))
    prev = torch.randn((batch, 1, 16, 16), generator=torch.Generator().manual_seed(1)) if with_prev else None
    return HeadPrompts(points.clone(), labels.clone(), boxes.clone(), has_box, prev)


def test_decoder_reimplementation_matches_sam(tiny_vit) -> None:
    emb = _embedding(tiny_vit)
    pe = tiny_vit.prompt_encoder
    points = (torch.tensor([[[10.0, 20.0], [30.0, 5.0]]]), torch.tensor([[1, 0]]))
    sparse, dense = pe(points=points, boxes=torch.tensor([[2.0, 3.0, 50.0, 60.0]]), masks=None)
    reference, _ = tiny_vit.mask_decoder(image_embeddings=emb, image_pe=pe.get_dense_pe(),
                                         sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                         multimask_output=False)
    logits, upscaled = run_mask_decoder(tiny_vit.mask_decoder, emb, pe.get_dense_pe(), sparse, dense)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)
    assert upscaled.shape == (1, decoder_channels(tiny_vit), 16, 16)  # transformer_dim // 8 on the 16 x 16 grid


def test_features_shapes_and_no_image_encoder_call(tiny_vit) -> None:
    calls = []
    handle = tiny_vit.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        extractor = FeatureExtractor(tiny_vit)
        inputs = extractor(_embedding(tiny_vit), _prompts(batch=3, with_prev=True))
    finally:
        handle.remove()
    assert calls == []
    assert inputs.decoder_embedding.shape == (3, decoder_channels(tiny_vit), 16, 16)
    assert inputs.sam_logits.shape == inputs.prev_logits.shape == inputs.box_map.shape == (3, 1, 16, 16)
    assert inputs.click_maps.shape == (3, 4, 16, 16) and inputs.image_embedding.shape == (3, 256, 4, 4)
    assert inputs.has_previous.all() and inputs.has_box.all()  # rows 2 and 3 get the previous mask's box


def test_batched_features_equal_single(tiny_vit) -> None:
    extractor = FeatureExtractor(tiny_vit)
    emb = _embedding(tiny_vit)
    prompts = _prompts(batch=2)
    batched = extractor(emb, prompts)
    for b in range(2):
        single = extractor(emb, HeadPrompts(prompts.points_sam_xy[b:b + 1], prompts.labels[b:b + 1],
                                            prompts.boxes_sam_xy[b:b + 1], prompts.has_box[b:b + 1]))
        torch.testing.assert_close(single.sam_logits, batched.sam_logits[b:b + 1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(single.click_maps, batched.click_maps[b:b + 1])


def test_features_come_from_the_decoder_the_backbone_routes_the_prompt_to(tiny_vit) -> None:
    """With a click decoder loaded, prompts that give the decoder clicks are decoded by it (the head reads the logits
    of the decoder it runs on), a box alone by the backbone's own (or by the click decoder when it answers boxes)."""
    backbone = copy.deepcopy(tiny_vit)
    backbone.click_prompt_encoder = copy.deepcopy(backbone.prompt_encoder)
    backbone.click_mask_decoder = copy.deepcopy(backbone.mask_decoder)
    with torch.no_grad():
        for param in backbone.click_mask_decoder.parameters():
            param.add_(0.05 * torch.randn_like(param))
    emb = _embedding(backbone)
    extractor = FeatureExtractor(backbone, FeatureConfig(decoder_clicks=DecoderClicks.ALWAYS))
    points = torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]])
    box = torch.tensor([[5.0, 6.0, 50.0, 40.0]])

    def reference(pe, decoder, with_points: bool) -> torch.Tensor:
        sparse, dense = pe(points=points if with_points else None, boxes=box, masks=None)
        return run_mask_decoder(decoder, emb, pe.get_dense_pe(), sparse, dense)[0]

    click = HeadPrompts.single(points[0], points[1], box)
    logits, _ = extractor.decode(emb, click, click.boxes_sam_xy, click.has_box)
    torch.testing.assert_close(logits, reference(backbone.click_prompt_encoder, backbone.click_mask_decoder, True))
    assert (logits - reference(backbone.prompt_encoder, backbone.mask_decoder, True)).abs().max() > 1e-3
    alone = HeadPrompts.single(None, None, box)
    logits, _ = extractor.decode(emb, alone, alone.boxes_sam_xy, alone.has_box)
    torch.testing.assert_close(logits, reference(backbone.prompt_encoder, backbone.mask_decoder, False))
    backbone.click_decoder_for_boxes = True
    logits, _ = extractor.decode(emb, alone, alone.boxes_sam_xy, alone.has_box)
    torch.testing.assert_close(logits, reference(backbone.click_prompt_encoder, backbone.click_mask_decoder, False))


def test_box_from_previous_mask(tiny_vit) -> None:
    extractor = FeatureExtractor(tiny_vit)
    prev = torch.full((1, 1, 16, 16), -5.0)
    prev[..., 4:8, 2:6] = 5.0
    prompts = HeadPrompts.single(torch.tensor([[[40.0, 40.0]]]), torch.tensor([[1]]), None, prev)
    boxes, has_box = extractor.decoder_boxes(prompts)
    # mask columns 2..5, rows 4..7, plus the positive click at low-res pixel (10, 10); centres in sam_xy (s = 4)
    assert bool(has_box[0])
    torch.testing.assert_close(boxes[0], torch.tensor([2 * 4 + 1.5, 4 * 4 + 1.5, 10 * 4 + 1.5, 10 * 4 + 1.5]))
    empty = HeadPrompts.single(torch.tensor([[[40.0, 40.0]]]), torch.tensor([[1]]), None, torch.full_like(prev, -1))
    assert not bool(extractor.decoder_boxes(empty)[1][0])


def test_head_shapes_gradients_and_frozen_backbone(tiny_vit) -> None:
    config = HeadConfig.for_backbone(tiny_vit, hidden_channels=8, context_channels=8, image_channels=4)
    torch.manual_seed(0)
    head = PredictionHead(config)
    inputs = FeatureExtractor(tiny_vit)(_embedding(tiny_vit), _prompts(batch=2))
    out = head(inputs)
    assert out.phi.shape == (2, 8, 8, 8) and out.logits.shape == (2, 1, 16, 16)
    out.logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert all(p.grad is None and not p.requires_grad for p in tiny_vit.parameters())
    assert not inputs.decoder_embedding.requires_grad and not inputs.sam_logits.requires_grad


def test_head_starts_as_sam_and_last_layer_is_the_laplace_layer(tiny_vit) -> None:
    head = PredictionHead(HeadConfig.for_backbone(tiny_vit, hidden_channels=8, context_channels=8))
    inputs = FeatureExtractor(tiny_vit)(_embedding(tiny_vit), _prompts(batch=2))
    with torch.no_grad():
        out = head(inputs)
    clip = head.config.logit_clip
    skip = inputs.sam_logits.clamp(-clip, clip) * inputs.has_box.float().view(-1, 1, 1, 1)
    assert (out.logits - skip).abs().max() < 0.5  # near-zero initial correction on SAM's (boxed) logit
    assert torch.equal(out.sam_skip, skip)
    full = PredictionHead.last_layer_features(out)
    assert full.shape == (2, head.n_channels, 16, 16)
    laplace = LastLayerLaplace.from_module(head.last_layer, dtype=torch.float32)
    laplace.fit([(full, (out.logits[:, 0] > 0).float())])
    mean, _ = laplace.logit_moments(full)
    torch.testing.assert_close(mean, out.logits[:, 0], atol=1e-4, rtol=1e-4)
    assert PredictionHead.half_res_features(out).shape == (2, head.n_channels, 8, 8)


def test_head_config_round_trip_and_validation(tiny_vit) -> None:
    config = HeadConfig.for_backbone(tiny_vit, hidden_channels=8, context_dilations=(1, 3))
    assert HeadConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown head config keys"):
        HeadConfig.from_dict({**config.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="positive"):
        HeadConfig(hidden_channels=0)

"""The fused attention path of SAM's ViT encoder gives the reference implementation's features with the same weights
(issue 20: fused attention with SAM's relative-position bias); the GPU speed is measured by
``benchmarks/encoder_throughput.py --device cuda``."""

from __future__ import annotations

import copy

import torch
from segment_anything.modeling import image_encoder

from monai_baldsam.sam.fused_attention import use_fused_attention


def _randomise_rel_pos(module: torch.nn.Module, generator: torch.Generator) -> None:
    """SAM initialises the relative-position tables to zero: give them values so that the bias is exercised."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "rel_pos" in name:
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))


def test_a_global_vit_b_block_matches_the_reference() -> None:
    """One ViT-B block with global attention and relative positions (768 channels, 12 heads) on a 24 x 24 grid."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    block = image_encoder.Block(dim=768, num_heads=12, use_rel_pos=True, window_size=0, input_size=(24, 24)).eval()
    _randomise_rel_pos(block, generator)
    fused = copy.deepcopy(block)
    assert use_fused_attention(fused) == 1
    x = torch.randn(2, 24, 24, 768, generator=generator)
    with torch.no_grad():
        expected, got = block(x), fused(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=2e-4, rtol=1e-4), float((got - expected).abs().max())


def test_a_whole_encoder_with_windows_and_global_blocks_matches_the_reference() -> None:
    """A small ViT with SAM's layout (windowed blocks, padding of a window that does not divide the grid, a global
    block, the neck): the fused encoder's features equal the reference's."""
    torch.manual_seed(1)
    encoder = image_encoder.ImageEncoderViT(img_size=160, patch_size=16, embed_dim=96, depth=3, num_heads=4,
                                            out_chans=32, use_rel_pos=True, window_size=4,
                                            global_attn_indexes=(2,)).eval()
    _randomise_rel_pos(encoder, torch.Generator().manual_seed(1))
    fused = copy.deepcopy(encoder)
    assert use_fused_attention(fused) == 3
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        expected, got = encoder(x), fused(x)
    assert got.shape == (1, 32, 10, 10)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), float((got - expected).abs().max())


def test_an_encoder_without_sam_attention_is_left_as_it_is(lite_medsam) -> None:
    assert use_fused_attention(lite_medsam.image_encoder) == 0

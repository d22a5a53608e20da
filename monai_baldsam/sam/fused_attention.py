"""SAM ViT attention through one fused kernel: ``scaled_dot_product_attention`` with SAM's relative-position bias.

Meta's ``segment_anything`` image encoder computes each attention block as written in the paper: the full
``(B * heads, N, N)`` score matrix, the decomposed relative-position terms added to it, a softmax, then the product
with the values, every step a separate kernel with its own ``N x N`` intermediate (``N`` = 4096 tokens in the global
blocks of a 1024 px input). :func:`use_fused_attention` replaces the forward of every such block of an encoder by
one call to :func:`torch.nn.functional.scaled_dot_product_attention`, passing the relative-position terms as its
additive mask: on a GPU this runs the memory-efficient kernel (no score matrix in memory, bf16 inputs), on a CPU
PyTorch's fused CPU kernel. The weights are not touched, so the same checkpoint gives the same features up to float
rounding (``tests/test_sam_fused_attention.py`` checks it against the reference implementation with the same
weights).

LiteMedSAM's TinyViT encoder has no ``segment_anything`` attention block; :func:`use_fused_attention` returns 0 for it.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fused_attention_forward", "use_fused_attention", "relative_position_bias"]


def relative_position_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, hw: tuple[int, int]
                           ) -> torch.Tensor:
    """SAM's decomposed relative-position terms as an additive attention mask ``(B, heads, N, N)``.

    Args:
        q: queries ``(B, heads, N, C)`` before scaling (as SAM adds them), ``N = h * w``.
        rel_pos_h, rel_pos_w: the block's tables ``(2h - 1, C)``, ``(2w - 1, C)``.
        hw: the token grid ``(h, w)``.
    """
    from segment_anything.modeling.image_encoder import get_rel_pos  # only SAM's ViT blocks come here

    h, w = hw
    batch, heads, tokens, channels = q.shape
    r_q = q.reshape(batch * heads, h, w, channels)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, rel_pos_h).to(q.dtype))
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, rel_pos_w).to(q.dtype))
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return bias.reshape(batch, heads, tokens, tokens)


def fused_attention_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The forward of ``segment_anything``'s ``Attention`` (``x`` ``(B, H, W, dim)``) as one fused attention call."""
    batch, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(batch, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, N, C)
    bias = relative_position_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w)) if self.use_rel_pos else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(batch, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(batch, h, w, -1)
    return self.proj(out)


def use_fused_attention(image_encoder: nn.Module) -> int:
    """Route every ``segment_anything`` attention block of ``image_encoder`` through :func:`fused_attention_forward`
    (in place; the weights are unchanged). Returns how many blocks were changed (0 for an encoder without them,
    such as LiteMedSAM's TinyViT)."""
    try:
        from segment_anything.modeling.image_encoder import Attention
    except ImportError:  # no segment_anything: no ViT encoder to change
        return 0
    changed = 0
    for module in image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(fused_attention_forward, module)
            changed += 1
    return changed

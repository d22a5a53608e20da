"""The mask decoder's output tokens, captured while the decoder runs (no copy of ``segment_anything`` code).

SAM's ``MaskDecoder`` runs a two-way transformer over ``[IoU token, mask tokens 0..M-1, prompt tokens]`` and
reads its answers off the output tokens: the IoU token goes to ``iou_prediction_head`` (SAM's predicted IoU), mask
token ``i`` to ``output_hypernetworks_mlps[i]``, whose output is multiplied with the upscaled image embedding
(``output_upscaling``) to give mask ``i``. UncertainSAM's heads read the same tokens.

:class:`TokenCapture` installs forward hooks on ``mask_decoder.transformer`` (output ``hs``: the tokens) and
``mask_decoder.output_upscaling`` (the upscaled embedding), so the tokens come for free from the decoder call that
produced the mask: SAM's own ``predict_masks`` (plain decoder) or the prediction head's
:func:`~monai_baldsam.head.features.run_mask_decoder` alike. From them :func:`decoder_readout` recomputes SAM's
predicted IoUs and all ``M`` mask logits with the decoder's own modules (mask 0 is the single-mask output, masks
1..M-1 the multimask outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["DecoderTokens", "TokenCapture", "decoder_readout"]


@dataclass(frozen=True)
class DecoderTokens:
    """The decoder's output tokens for ``B`` prompts.

    Attributes:
        iou_token: ``(B, C)`` the IoU token after the transformer.
        mask_tokens: ``(B, M, C)`` the mask tokens after the transformer (token 0: the single-mask output).
        upscaled: ``(B, C/8, L, L)`` the upscaled image embedding (the masks' basis), or None when not captured.
    """

    iou_token: torch.Tensor
    mask_tokens: torch.Tensor
    upscaled: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.iou_token.shape[0])

    def select(self, index: int) -> DecoderTokens:
        """The tokens of prompt ``index`` (batch of one)."""
        up = None if self.upscaled is None else self.upscaled[index:index + 1]
        return DecoderTokens(self.iou_token[index:index + 1], self.mask_tokens[index:index + 1], up)


class TokenCapture:
    """Context manager: records the output tokens of every call of ``decoder`` made inside the ``with`` block.

    Args:
        decoder: a SAM ``MaskDecoder`` (``transformer``, ``output_upscaling``, ``num_mask_tokens``).

    Example::

        with TokenCapture(backbone.mask_decoder) as capture:
            output = click_model.predict(embedding, clicks, labels, box, None)
        tokens = capture.last()
    """

    def __init__(self, decoder: nn.Module) -> None:
        for name in ("transformer", "output_upscaling", "num_mask_tokens", "iou_prediction_head",
                     "output_hypernetworks_mlps"):
            if not hasattr(decoder, name):
                raise ValueError(f"{type(decoder).__name__} has no {name!r}: token capture needs a SAM MaskDecoder")
        self.decoder = decoder
        self.calls: list[DecoderTokens] = []
        self._pending: list[torch.Tensor] = []
        self._handles: list[Any] = []

    def _on_transformer(self, module: nn.Module, args: Any, output: Any) -> None:
        hs = output[0]
        m = int(self.decoder.num_mask_tokens)
        self._pending.append(hs[:, :1 + m].detach())

    def _on_upscaling(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if not self._pending:  # the upscaling ran outside a decoder call: nothing to pair it with
            return
        hs = self._pending.pop(0)
        self.calls.append(DecoderTokens(hs[:, 0], hs[:, 1:], output.detach()))

    def __enter__(self) -> TokenCapture:
        if self._handles:
            raise RuntimeError("this TokenCapture is already active")
        self.calls.clear()
        self._pending.clear()
        self._handles = [self.decoder.transformer.register_forward_hook(self._on_transformer),
                         self.decoder.output_upscaling.register_forward_hook(self._on_upscaling)]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for hs in self._pending:  # a transformer call without upscaling: tokens only
            self.calls.append(DecoderTokens(hs[:, 0], hs[:, 1:], None))
        self._pending.clear()

    def last(self) -> DecoderTokens:
        """The tokens of the last decoder call; ``RuntimeError`` when the decoder never ran."""
        if not self.calls:
            raise RuntimeError("the mask decoder was not called inside the capture: nothing to read")
        return self.calls[-1]


@torch.no_grad()
def decoder_readout(decoder: nn.Module, tokens: DecoderTokens) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's predicted IoUs ``(B, M)`` and all mask logits ``(B, M, L, L)`` from captured tokens, computed by the
    decoder's own ``iou_prediction_head`` and ``output_hypernetworks_mlps`` (as ``MaskDecoder.predict_masks``)."""
    if tokens.upscaled is None:
        raise ValueError("the tokens carry no upscaled embedding: capture them from a full decoder call")
    iou = decoder.iou_prediction_head(tokens.iou_token)
    hyper = torch.stack([mlp(tokens.mask_tokens[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
                        dim=1)
    b, c, h, w = tokens.upscaled.shape
    masks = (hyper @ tokens.upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    return iou, masks

""":class:`SamBackbone`, a loaded (frozen) SAM: its three modules, its input geometry and the decoder for clicks.

Building one by name with checked weights is :func:`monai_baldsam.sam.backbones.load_backbone`; the click-trained
decoders it may carry are :mod:`monai_baldsam.sam.decoders`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SAM_PIXEL_MEAN", "SAM_PIXEL_STD", "SamBackbone"]

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


class SamBackbone(nn.Module):
    """A frozen SAM: ``image_encoder``, ``prompt_encoder`` and ``mask_decoder`` plus its input geometry.

    ``pixel_mean`` / ``pixel_std`` are in 0..255 units: an input in [0, 1] is scaled by 255, then
    normalised as ``(x - mean) / std``.
    """

    def __init__(self, image_encoder: nn.Module, prompt_encoder: nn.Module, mask_decoder: nn.Module,
                 img_size: int, pixel_mean: tuple[float, ...], pixel_std: tuple[float, ...], name: str = "custom",
                 checkpoint_sha256: str | None = None) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.img_size = int(img_size)
        self.name = name
        self.checkpoint_sha256 = checkpoint_sha256
        #: the decoder for prompts with clicks (:mod:`monai_baldsam.sam.decoders`): ``original`` (the checkpoint's
        #: own for every prompt) or a click-trained one held in ``click_prompt_encoder`` / ``click_mask_decoder``
        self.decoder_name = "original"
        self.decoder_sha256: str | None = None
        self.click_prompt_encoder: nn.Module | None = None
        self.click_mask_decoder: nn.Module | None = None
        #: whether the click decoder is given the previous low-resolution logits (chosen on validation, in its file)
        self.click_mask_feedback = True
        #: whether the loaded decoder also answers a box alone (a domain decoder trained on box rounds, its file says
        #: so); otherwise a box alone goes to the checkpoint's own decoder
        self.click_decoder_for_boxes = False
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def decoder_modules(self, has_clicks: bool) -> tuple[nn.Module, nn.Module]:
        """``(prompt_encoder, mask_decoder)`` for a prompt with or without clicks: the click-trained pair for a prompt
        holding a click (when one is loaded), else the checkpoint's own (a box alone, a mask alone), unless the
        loaded decoder was trained on box rounds too (:attr:`click_decoder_for_boxes`): then it answers every prompt."""
        routed = has_clicks or self.click_decoder_for_boxes
        if routed and self.click_mask_decoder is not None and self.click_prompt_encoder is not None:
            return self.click_prompt_encoder, self.click_mask_decoder
        return self.prompt_encoder, self.mask_decoder

    @property
    def embedding_hw(self) -> tuple[int, int]:
        """Spatial size of the image embedding, e.g. (64, 64)."""
        return tuple(int(s) for s in self.prompt_encoder.image_embedding_size)  # type: ignore[return-value]

    @property
    def low_res_hw(self) -> tuple[int, int]:
        """Size of the decoder's low-resolution mask logits (4x the embedding)."""
        h, w = self.embedding_hw
        return 4 * h, 4 * w

    @property
    def signature(self) -> str:
        """Identifies backbone and weights, for reports: ``name@sha256-prefix``, plus ``+decoder@sha256-prefix``
        when the decoder is not the original one (image embeddings depend on the encoder only)."""
        base = f"{self.name}@{(self.checkpoint_sha256 or 'random')[:16]}"
        if self.decoder_name == "original":
            return base
        return f"{base}+{self.decoder_name}@{(self.decoder_sha256 or 'unsaved')[:16]}"



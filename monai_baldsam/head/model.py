"""The prediction head: a small conv net on the frozen decoder's features whose last layer is Bayesian.

Design (why it looks like this):

* **Residual on SAM.** The head does not replace SAM's mask; its last layer is a 1x1 conv over
  ``[phi; s]``, the head's features ``phi`` *and SAM's own logit* ``s`` (clipped), initialised to weight 1 on
  ``s`` and ~0 on ``phi``: at initialisation the head returns SAM's mask, and training learns a correction
  ``w . phi + b`` added to ``w_s * s``. Folding the skip connection into the last layer keeps the output an exact
  per-pixel logistic layer ``f = theta . [phi; s; 1]``, which is what
  :class:`~monai_baldsam.bayes.LastLayerLaplace` covers (no offset term needed), and the posterior also says how
  far SAM's own logit is to be trusted. ``s`` is clipped to +-8 (a confident SAM stays correctable) and is 0 when
  the decoder had no box (LiteMedSAM's click-only answer is an empty mask, nothing to build on; the trunk still
  sees it as an input).
* **Two resolutions, cheap on CPU.** The decoder's upscaled embedding, the click maps, the previous logits and the
  box are stacked on the ``L x L`` low-resolution grid (256 for LiteMedSAM), average-pooled to ``L / 2`` and
  mixed by a 1x1 conv to ``hidden_channels``. A context branch at ``L / 4`` (the image embedding's resolution,
  where the learned 1x1 reduction of the image embedding joins) runs residual dilated 3x3 convs (dilations 1, 2,
  4, 8: a receptive field of about half the image, so a single click can reach the object's boundary); it is
  added back at ``L / 2``, refined by a 3x3 conv, and gives ``phi``. The correction ``w . phi`` is computed at
  ``L / 2`` and upsampled bilinearly (upsampling commutes with the linear layer); SAM's logit stays at full
  ``L``, so boundaries keep SAM's resolution. About 0.12 M parameters and ~0.5 GMAC per prompt: a fraction of
  one decoder call (the budget: a BALD click within 1.5x a plain decoder call on CPU).
* Gradients never reach the backbone: the features are computed under ``torch.no_grad`` from a frozen backbone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from monai_baldsam.head.clicks import CLICK_MAP_CHANNELS
from monai_baldsam.head.features import FeatureConfig, HeadInputs, decoder_channels
from monai_baldsam.sam.model import SamBackbone

__all__ = ["HeadConfig", "HeadOutput", "PredictionHead"]

_EXTRA_INPUTS = 4  # sam logit, previous logit, has-previous flag, box map


@dataclass(frozen=True)
class HeadConfig:
    """Architecture of :class:`PredictionHead` and its feature settings (saved with the weights).

    Attributes:
        decoder_channels: channels of the decoder's upscaled embedding (32 for SAM and LiteMedSAM).
        embedding_channels: channels of the image embedding (256).
        hidden_channels: ``C``, the channels of ``phi`` (the Bayesian layer has ``C + 2`` parameters).
        context_channels: width of the ``L / 4`` context branch.
        image_channels: the learned 1x1 reduction of the image embedding (0: not used).
        context_dilations, fine_dilations: dilations of the residual 3x3 convs of each branch.
        logit_clip: SAM's logit enters the last layer clipped to ``[-logit_clip, logit_clip]`` (and only when the
            decoder had a box: LiteMedSAM's click-only logit is no mask to correct).
        features: :class:`~monai_baldsam.head.features.FeatureConfig`.
    """

    decoder_channels: int = 32
    embedding_channels: int = 256
    hidden_channels: int = 32
    context_channels: int = 48
    image_channels: int = 32
    context_dilations: tuple[int, ...] = (1, 2, 4, 8)
    fine_dilations: tuple[int, ...] = (1,)
    logit_clip: float = 8.0
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        for name in ("decoder_channels", "embedding_channels", "hidden_channels", "context_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive number of channels, got {getattr(self, name)}")
        if self.image_channels < 0 or self.logit_clip <= 0:
            raise ValueError(f"image_channels must be >= 0 and logit_clip > 0, got {self.image_channels}, "
                             f"{self.logit_clip}")
        if any(int(d) < 1 for d in (*self.context_dilations, *self.fine_dilations)):
            raise ValueError("dilations must be positive integers")
        object.__setattr__(self, "context_dilations", tuple(int(d) for d in self.context_dilations))
        if isinstance(self.features, Mapping):  # from a config file or a checkpoint
            object.__setattr__(self, "features", FeatureConfig(**self.features))
        object.__setattr__(self, "fine_dilations", tuple(int(d) for d in self.fine_dilations))

    @classmethod
    def for_backbone(cls, backbone: SamBackbone, **kwargs: Any) -> HeadConfig:
        """A config whose input widths are read from ``backbone`` (other fields from ``kwargs``)."""
        embedding = int(backbone.prompt_encoder.embed_dim)
        return cls(decoder_channels=decoder_channels(backbone), embedding_channels=embedding, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (loads with ``weights_only=True``)."""
        return {"decoder_channels": self.decoder_channels, "embedding_channels": self.embedding_channels,
                "hidden_channels": self.hidden_channels, "context_channels": self.context_channels,
                "image_channels": self.image_channels, "context_dilations": list(self.context_dilations),
                "fine_dilations": list(self.fine_dilations), "logit_clip": float(self.logit_clip),
                "features": self.features.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a checkpoint of another version)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown head config keys {sorted(unknown)}: the checkpoint is from another version")
        values = dict(data)
        for key in ("context_dilations", "fine_dilations"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class HeadOutput:
    """``phi (B, C, L/2, L/2)`` last-layer features, ``sam_skip (B, 1, L, L)`` clipped SAM logit and the MAP
    ``logits (B, 1, L, L)``."""

    phi: torch.Tensor
    sam_skip: torch.Tensor
    logits: torch.Tensor


def _conv(channels: int, dilation: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)


class PredictionHead(nn.Module):
    """Conv head on :class:`~monai_baldsam.head.features.HeadInputs` ending in the Bayesian 1x1 layer ``last_layer``.

    ``last_layer`` is ``nn.Conv2d(C + 1, 1, 1)`` over ``[phi; s]`` (see the module docstring); build its posterior
    with ``LastLayerLaplace.from_module(head.last_layer)`` on :meth:`last_layer_features`.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        c, cc = config.hidden_channels, config.context_channels
        in_channels = config.decoder_channels + len(CLICK_MAP_CHANNELS) + _EXTRA_INPUTS
        self.stem = nn.Conv2d(in_channels, c, 1)
        self.image_proj = nn.Conv2d(config.embedding_channels, config.image_channels, 1) if config.image_channels \
            else None
        self.context_in = nn.Conv2d(c + config.image_channels, cc, 1)
        self.context = nn.ModuleList(_conv(cc, d) for d in config.context_dilations)
        self.context_out = nn.Conv2d(cc, c, 1)
        self.fine = nn.ModuleList(_conv(c, d) for d in config.fine_dilations)
        self.last_layer = nn.Conv2d(c + 1, 1, 1)
        with torch.no_grad():
            nn.init.normal_(self.last_layer.weight, std=0.01)
            self.last_layer.weight[0, c] = 1.0
            self.last_layer.bias.zero_()

    @property
    def n_channels(self) -> int:
        """``C + 1``, the inputs of the Bayesian layer."""
        return self.config.hidden_channels + 1

    def _inputs(self, inputs: HeadInputs) -> torch.Tensor:
        flag = inputs.has_previous.float().view(-1, 1, 1, 1).expand_as(inputs.prev_logits)
        return torch.cat([inputs.decoder_embedding, torch.tanh(inputs.sam_logits / 5.0),
                          torch.tanh(inputs.prev_logits / 5.0) * flag, flag, inputs.click_maps, inputs.box_map], dim=1)

    def features(self, inputs: HeadInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi (B, C, L/2, L/2), sam_skip (B, 1, L, L))``."""
        size = inputs.sam_logits.shape[-1]
        # channels-last: the pooling and the convolutions run about 25 % faster on a CPU (the same numbers)
        stacked = self._inputs(inputs).contiguous(memory_format=torch.channels_last)
        fine = F.relu(self.stem(F.avg_pool2d(stacked, 2)))
        context = F.avg_pool2d(fine, 2)
        if self.image_proj is not None:
            image = F.relu(self.image_proj(inputs.image_embedding))
            if tuple(image.shape[-2:]) != tuple(context.shape[-2:]):
                image = F.interpolate(image, context.shape[-2:], mode="bilinear", align_corners=False)
            context = torch.cat([context, image], dim=1)
        context = self.context_in(context)
        for conv in self.context:
            context = context + conv(F.relu(context))
        context = F.interpolate(self.context_out(F.relu(context)), fine.shape[-2:], mode="bilinear",
                                align_corners=False)
        x = fine + context
        for conv in self.fine:
            x = x + conv(F.relu(x))
        phi = F.relu(x)
        if phi.shape[-1] * 2 != size:
            raise ValueError(f"the low-resolution grid must have an even side, got {size}")
        clip = self.config.logit_clip
        boxed = inputs.has_box.to(phi.dtype).view(-1, 1, 1, 1)
        return phi, inputs.sam_logits.clamp(-clip, clip) * boxed

    def combine(self, phi: torch.Tensor, sam_skip: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """MAP logits ``(B, 1, L, L)`` = ``up(w . phi) + w_s * s + b``; ``theta`` ``(C + 2,)`` = ``[w; w_s; b]``
        replaces the layer's own parameters (e.g. a posterior conditioned on an image's clicks)."""
        c = self.config.hidden_channels
        if theta is None:
            weight, bias = self.last_layer.weight, self.last_layer.bias.view(1, 1, 1, 1)
        else:
            theta = theta.to(phi.device, phi.dtype)
            weight, bias = theta[:-1].view(1, c + 1, 1, 1), theta[-1]
        correction = F.conv2d(phi, weight[:, :c])
        correction = F.interpolate(correction, sam_skip.shape[-2:], mode="bilinear", align_corners=False)
        return correction + weight[:, c:c + 1] * sam_skip + bias

    def forward(self, inputs: HeadInputs) -> HeadOutput:
        phi, sam_skip = self.features(inputs)
        return HeadOutput(phi=phi, sam_skip=sam_skip, logits=self.combine(phi, sam_skip))

    @staticmethod
    def last_layer_features(output: HeadOutput) -> torch.Tensor:
        """``(B, C + 1, L, L)`` = ``[up(phi); s]``: the exact inputs of the Bayesian layer at full ``L`` (for fitting)."""
        phi = F.interpolate(output.phi, output.sam_skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([phi, output.sam_skip], dim=1)

    @staticmethod
    def half_res_features(output: HeadOutput) -> torch.Tensor:
        """``(B, C + 1, L/2, L/2)`` = ``[phi; avgpool(s)]``: the same layer's inputs at ``L / 2`` (cheap predictive)."""
        return torch.cat([output.phi, F.avg_pool2d(output.sam_skip, 2)], dim=1)

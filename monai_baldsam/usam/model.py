"""The UncertainSAM heads: small MLPs from the decoder's tokens (+ mask descriptor) to per-mask quality numbers.

* ``iou``: the predicted IoU of the judged mask with the (unknown) truth, in [0, 1] (sigmoid output);
* ``prompt_gap``: IoU with a dense set of prompts minus IoU with the given prompts (how much more prompting would
  help), in [-1, 1] (tanh output);
* ``task_gap``: the best of SAM's multimask outputs (the judged mask included) minus the judged mask (how much the
  prompt is ambiguous about *which* object is meant), in [-1, 1];
* ``model_gap``: IoU of a larger backbone on the same prompt minus this one's (how much a bigger model would help);
  only when the heads were trained with two backbones (``UsamConfig.model_gap``).

Each target has its own MLP (``depth`` hidden layers of ``hidden`` units, GELU); the inputs are standardised with a
mean and standard deviation fitted on the training features and stored with the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn

from monai_baldsam.usam.features import feature_dim

__all__ = ["TARGETS", "UsamConfig", "MaskQuality", "UsamHeads"]

#: Output names, in the order of the targets tensor used in training.
TARGETS: tuple[str, ...] = ("iou", "prompt_gap", "task_gap", "model_gap")


@dataclass(frozen=True)
class UsamConfig:
    """Architecture of :class:`UsamHeads` (saved with the weights).

    Attributes:
        token_dim: the decoder's transformer width ``C`` (256 for SAM and LiteMedSAM).
        n_mask_tokens: the decoder's mask tokens ``M`` (4).
        hidden: width of each MLP's hidden layers.
        depth: hidden layers per MLP.
        dropout: dropout after each hidden layer (training only).
        model_gap: whether a model-gap head exists (trained with a second, larger backbone).
    """

    token_dim: int = 256
    n_mask_tokens: int = 4
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1
    model_gap: bool = False

    def __post_init__(self) -> None:
        if self.token_dim < 1 or self.n_mask_tokens < 1 or self.hidden < 1 or self.depth < 1:
            raise ValueError(f"token_dim, n_mask_tokens, hidden and depth must be >= 1, got {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def in_features(self) -> int:
        return feature_dim(self.token_dim, self.n_mask_tokens)

    @property
    def targets(self) -> tuple[str, ...]:
        return TARGETS if self.model_gap else TARGETS[:3]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UsamConfig:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    @classmethod
    def for_decoder(cls, decoder: nn.Module, **overrides: Any) -> UsamConfig:
        """Sizes read from a SAM ``MaskDecoder``."""
        return cls(token_dim=int(decoder.transformer_dim), n_mask_tokens=int(decoder.num_mask_tokens), **overrides)


@dataclass(frozen=True)
class MaskQuality:
    """Quality of one mask (floats) or of ``B`` masks (``(B,)`` tensors); ``model_gap`` is None without that head."""

    iou: Any
    prompt_gap: Any
    task_gap: Any
    model_gap: Any = None

    def to_dict(self, digits: int = 4) -> dict[str, float | None]:
        """Plain floats for JSON (a batch of one is unwrapped)."""
        def value(v: Any) -> float | None:
            if v is None:
                return None
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise ValueError("to_dict needs the quality of one mask: index the batch first")
                v = v.item()
            return round(float(v), digits)

        return {"predicted_iou": value(self.iou), "prompt_gap": value(self.prompt_gap),
                "task_gap": value(self.task_gap), "model_gap": value(self.model_gap)}

    def item(self, index: int = 0) -> MaskQuality:
        """Mask ``index`` of a batch, as floats."""
        def pick(v: Any) -> float | None:
            return None if v is None else float(v[index])

        return MaskQuality(pick(self.iou), pick(self.prompt_gap), pick(self.task_gap), pick(self.model_gap))


def _mlp(config: UsamConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = config.in_features
    for _ in range(config.depth):
        layers += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
        width = config.hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class UsamHeads(nn.Module):
    """One MLP per target on standardised features ``(B, F)``.

    Args:
        config: :class:`UsamConfig`.
    """

    def __init__(self, config: UsamConfig | None = None) -> None:
        super().__init__()
        self.config = config or UsamConfig()
        self.heads = nn.ModuleDict({name: _mlp(self.config) for name in self.config.targets})
        self.register_buffer("feature_mean", torch.zeros(self.config.in_features))
        self.register_buffer("feature_std", torch.ones(self.config.in_features))

    def set_normalisation(self, features: torch.Tensor) -> None:
        """Fit the input standardisation on training features ``(N, F)`` (std floored at 1e-4)."""
        if features.ndim != 2 or features.shape[1] != self.config.in_features:
            raise ValueError(f"features must be (N, {self.config.in_features}), got {tuple(features.shape)}")
        self.feature_mean.copy_(features.mean(dim=0))
        self.feature_std.copy_(features.std(dim=0, unbiased=False).clamp_min(1e-4))

    def raw(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` outputs in target units (``T = len(config.targets)``): sigmoid for IoU, tanh for the gaps."""
        if features.ndim != 2 or features.shape[1] != self.config.in_features:
            raise ValueError(f"expected features (B, {self.config.in_features}) for this head, got "
                             f"{tuple(features.shape)}: the head was made for another decoder")
        x = (features.to(self.feature_mean) - self.feature_mean) / self.feature_std
        outs = []
        for name in self.config.targets:
            y = self.heads[name](x)[:, 0]
            outs.append(torch.sigmoid(y) if name == "iou" else torch.tanh(y))
        return torch.stack(outs, dim=1)

    def forward(self, features: torch.Tensor) -> MaskQuality:
        """:class:`MaskQuality` of ``(B,)`` tensors."""
        out = self.raw(features)
        gap = out[:, 3] if self.config.model_gap else None
        return MaskQuality(iou=out[:, 0], prompt_gap=out[:, 1], task_gap=out[:, 2], model_gap=gap)

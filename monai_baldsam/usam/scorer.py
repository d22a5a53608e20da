"""A click model with UncertainSAM heads: every prediction comes with its :class:`~monai_baldsam.usam.model.MaskQuality`.

:class:`UsamModel` wraps any click model that decodes with a SAM backbone (the plain decoder,
:class:`~monai_baldsam.interaction.model.SamClickModel`, or a Bayesian prediction head,
:class:`~monai_baldsam.head.click_model.BayesianHeadClickModel`). The decoder's tokens are captured by hooks during
the model's own decoder call, so the quality costs one pass of the small heads and a few reductions on the
low-resolution grid, never a second decoder call. It follows the click-model protocol itself (``predict`` returns
the wrapped model's :class:`ModelOutput`; the quality of that prediction is :attr:`UsamModel.last_quality`), so it
plugs into the evaluation harness and policies can read the quality (see :mod:`monai_baldsam.usam.stopping`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monai_baldsam.image_selection import whole_picture_box
from monai_baldsam.interaction.model import ClickModel, ModelOutput, SamClickModel
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.usam.features import quality_features, valid_low_res
from monai_baldsam.usam.model import MaskQuality, UsamHeads
from monai_baldsam.usam.tokens import DecoderTokens, TokenCapture

__all__ = ["Assessment", "UsamModel"]


@dataclass(frozen=True)
class Assessment:
    """One prediction and its quality; ``features`` ``(1, F)`` are the heads' inputs, ``tokens`` the decoder's."""

    output: ModelOutput
    quality: MaskQuality
    features: torch.Tensor
    tokens: DecoderTokens


class UsamModel:
    """``click_model`` + ``heads``: a click model whose predictions carry a :class:`MaskQuality`.

    Args:
        click_model: a click model with a ``predictor`` (:class:`SamPredictor`) whose backbone the heads belong to.
        heads: trained :class:`UsamHeads` (eval mode).
        name: identifies the heads in :attr:`signature` (e.g. their file hash).
    """

    def __init__(self, click_model: ClickModel, heads: UsamHeads, name: str = "usam") -> None:
        predictor = getattr(click_model, "predictor", None)
        if not isinstance(predictor, SamPredictor):
            raise ValueError(f"{type(click_model).__name__} has no SamPredictor: UncertainSAM heads need the SAM "
                             "decoder's tokens")
        decoder = predictor.backbone.mask_decoder
        if heads.config.token_dim != int(decoder.transformer_dim):
            raise ValueError(f"the heads expect decoder tokens of width {heads.config.token_dim}, the backbone's "
                             f"decoder has {decoder.transformer_dim}: load heads trained for this backbone")
        self.click_model = click_model
        self.heads = heads.eval().requires_grad_(False)
        self.name = name
        self.from_head = not isinstance(click_model, SamClickModel)
        self.last_quality: MaskQuality | None = None

    @property
    def predictor(self) -> SamPredictor:
        return self.click_model.predictor  # type: ignore[attr-defined, no-any-return]

    @property
    def signature(self) -> str:
        return f"{self.click_model.signature}+{self.name}"

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        """Encode one SAM image ``1 x 3 x H x W`` in [0, 1] (the wrapped model's encoder and cache)."""
        return self.click_model.encode(image)

    @torch.no_grad()
    def assess(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
               box_xy: np.ndarray | None, mask_input: torch.Tensor | None = None) -> Assessment:
        """Decode one prompt with the wrapped model and judge the mask it returns.

        Args:
            embedding: the image's embedding (:meth:`encode`).
            point_coords_xy: ``N x 2`` clicks ``(x, y)`` in slice pixels, or None; ``point_labels`` ``N`` (1/0).
            box_xy: ``(x0, y0, x1, y1)`` in slice pixels, or None.
            mask_input: ``1 x 1 x L x L`` low-resolution logits of the previous prediction, or None.
        """
        with TokenCapture(self.predictor.backbone.mask_decoder) as capture:
            output = self.click_model.predict(embedding, point_coords_xy, point_labels, box_xy, mask_input)
        tokens = capture.last()
        # a head that leaves a box alone to the decoder returns the decoder's own mask: judged as such
        answered_by_decoder = getattr(self.click_model, "decoder_answers", None)
        from_head = self.from_head and not (answered_by_decoder is not None
                                            and answered_by_decoder(point_labels, box_xy))
        quality, features = self.judge(embedding, tokens, output.low_res_logits, from_head=from_head)
        return Assessment(output=output, quality=quality, features=features, tokens=tokens)

    @torch.no_grad()
    def judge(self, embedding: SliceEmbedding, tokens: DecoderTokens, low_res_logits: torch.Tensor | np.ndarray,
              from_head: bool | None = None) -> tuple[MaskQuality, torch.Tensor]:
        """The quality of a mask made by a decoder call whose tokens were captured (:class:`TokenCapture`), without
        decoding again: for a caller that decodes itself (a volume session's prompted slices). The decode must be
        the one this model's :meth:`assess` would make (the wrapped click model's, or SAM's decoder on the same
        prompt when the wrapped model is the plain decoder).

        Args:
            embedding: the slice's embedding (its ``original_hw`` decides the valid low-resolution grid).
            tokens: the captured tokens of that one decoder call (batch of one).
            low_res_logits: the judged mask's low-resolution logits, ``L x L`` values (``1 x 1 x L x L``).
            from_head: whether a prediction head made the mask (default: the wrapped model is a head).

        Returns:
            The :class:`MaskQuality` (floats) and the heads' input features ``(1, F)``; :attr:`last_quality` is set.
        """
        if tokens.batch_size != 1:
            raise RuntimeError(f"the decoder answered {tokens.batch_size} prompts for one: cannot tell which is judged")
        backbone = self.predictor.backbone
        valid = valid_low_res(embedding.original_hw, backbone.img_size, int(backbone.low_res_hw[0]), backbone.device)
        logits = torch.as_tensor(low_res_logits).to(backbone.device, torch.float32).reshape(1, 1, *valid.shape)
        features = quality_features(backbone.mask_decoder, tokens, logits, valid,
                                    self.from_head if from_head is None else from_head)
        quality = self.heads(features).item(0)
        self.last_quality = quality
        return quality, features

    def predict(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
                box_xy: np.ndarray | None, mask_input: torch.Tensor | None) -> ModelOutput:
        """The click-model protocol: the wrapped model's output; its quality is left in :attr:`last_quality`."""
        return self.assess(embedding, point_coords_xy, point_labels, box_xy, mask_input).output

    def assess_image(self, image: torch.Tensor, box_xy: np.ndarray | None = None,
                     point_coords_xy: np.ndarray | None = None, point_labels: np.ndarray | None = None) -> Assessment:
        """Encode ``image`` (``1 x 3 x H x W`` in [0, 1], through the cache) and assess one prompt on it. Without
        any prompt the whole image is the box (the automatic prompt used to rank unlabelled images)."""
        embedding = self.encode(image)
        if box_xy is None and point_coords_xy is None:
            box_xy = whole_picture_box(embedding.original_hw)
        return self.assess(embedding, point_coords_xy, point_labels, box_xy, None)

"""The Bayesian prediction head as a :class:`~monai_baldsam.interaction.model.ClickModel`.

One interaction = one decoder call (the frozen prompt encoder and mask decoder on the stored embedding), one head
pass and the last-layer Laplace predictive, all batched tensor code:

* mask and probability: the MAP logit at full low-resolution ``L`` (SAM's boundary resolution), moderated by the
  probit factor ``1 / sqrt(1 + pi v / 8)`` with the logit variance ``v`` computed at ``L / 2`` and upsampled
  (the sign, hence the mask, is the MAP's);
* ``extras``: ``mutual_information`` (BALD, ``H[E p] - E H[p]``), ``predictive_entropy`` and ``expected_entropy``
  at ``L / 2``, either deterministic by Gauss-Hermite quadrature over each pixel's Gaussian logit
  (:class:`UncertaintyMethod` ``quadrature``, default) or from ``n_samples`` posterior weight samples drawn with a
  generator seeded per call (``mc``);
* the probability is brought to slice size as SAM's masks are (low-res -> ``img_size`` -> crop padding ->
  original size, :func:`~monai_baldsam.sam.geometry.postprocess_low_res_logits`); the uncertainty maps, which only
  rank pixels, are cropped on their grid and resized once.
"""

from __future__ import annotations

import math
import os
from enum import Enum

import numpy as np
import torch

from monai_baldsam.bayes import LastLayerLaplace, gaussian_logit_uncertainty_maps, uncertainty_maps
from monai_baldsam.bayes.conditioning import condition_on_labels
from monai_baldsam.bayes.epig import expected_variance_reduction
from monai_baldsam.bayes.predictive import logit_moments, sample_parameters, sampled_probabilities
from monai_baldsam.head.checkpoint import TrainedHead, head_decoder, load_head
from monai_baldsam.head.clicks import sam_xy_to_low_xy
from monai_baldsam.head.features import FeatureExtractor, HeadPrompts
from monai_baldsam.head.model import PredictionHead
from monai_baldsam.interaction.model import ModelOutput, prompt_tensors
from monai_baldsam.sam.backbones import DEFAULT_BACKBONE, load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.encoder_runtime import EncoderRuntime, make_encoder
from monai_baldsam.sam.geometry import postprocess_low_res_logits, preprocess_shape
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding

__all__ = ["UncertaintyMethod", "BoxAlone", "EXTRA_KEYS", "EPIG_KEY", "BayesianHeadClickModel",
           "load_head_click_model"]

#: The uncertainty maps returned in :attr:`ModelOutput.extras`.
EXTRA_KEYS: tuple[str, ...] = ("mutual_information", "predictive_entropy", "expected_entropy")
#: The extra map of a model made with ``epig=True`` (:func:`~monai_baldsam.bayes.epig.expected_variance_reduction`).
EPIG_KEY = "epig"


class UncertaintyMethod(str, Enum):
    """How the uncertainty maps are computed from the Gaussian posterior of the last layer."""

    QUADRATURE = "quadrature"  # deterministic Gauss-Hermite over each pixel's logit (n_samples nodes)
    MC = "mc"  # n_samples weight samples from a generator seeded per call


class BoxAlone(str, Enum):
    """Who answers a prompt that is a box and no click (the first interaction of a box session)."""

    HEAD = "head"  # the head's MAP mask, as for every other prompt
    DECODER = "decoder"  # the decoder's own mask (the head only adds its uncertainty around it): a box alone is
    # answered exactly as without a head, and the head corrects from the first click on


class BayesianHeadClickModel:
    """Frozen SAM + trained head + last-layer Laplace, behind the click-model protocol.

    Args:
        predictor: a :class:`SamPredictor` of the backbone the head was trained on (its cache holds embeddings).
        head: the trained :class:`PredictionHead` (eval mode).
        laplace: the fitted :class:`LastLayerLaplace` of ``head.last_layer``.
        uncertainty: :class:`UncertaintyMethod`.
        n_samples: quadrature nodes or Monte Carlo samples (default 32).
        seed: seed of the per-call generator (``mc``).
        name: identifies the head in :attr:`signature` (e.g. its file hash).
        click_weight: when > 0, the last layer's posterior is conditioned on the clicks of each prompt (each click's
            label at its pixel counts ``click_weight`` pixels; :func:`~monai_baldsam.bayes.conditioning.
            condition_on_labels`), so that a click updates the layer's weights for the whole image; 0 (default): the
            trained posterior as it is.
        box_alone: :class:`BoxAlone`, who answers a box without clicks (default ``head``); with ``decoder`` the
            mask is the decoder's and the uncertainty maps are the head's posterior variance around the decoder's
            logit.
        epig: also return the :data:`EPIG_KEY` map (expected predictive information gain over the image, Gaussian
            form; :mod:`monai_baldsam.bayes.epig`) in ``extras``, for the ``epig`` click policy.
    """

    def __init__(self, predictor: SamPredictor, head: PredictionHead, laplace: LastLayerLaplace,
                 uncertainty: UncertaintyMethod | str = UncertaintyMethod.QUADRATURE, n_samples: int = 32,
                 seed: int = 0, name: str = "head", click_weight: float = 0.0,
                 box_alone: BoxAlone | str = BoxAlone.HEAD, epig: bool = False) -> None:
        if laplace.n_channels != head.n_channels:
            raise ValueError(f"the posterior has {laplace.n_channels} inputs but the head's last layer has "
                             f"{head.n_channels}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        self.predictor = predictor
        self.head = head.eval().requires_grad_(False)
        self.laplace = laplace
        self.uncertainty = UncertaintyMethod(uncertainty)
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.name = name
        if click_weight < 0:
            raise ValueError(f"click_weight must be >= 0, got {click_weight}")
        self.click_weight = float(click_weight)
        self.box_alone = BoxAlone(box_alone)
        self.epig = bool(epig)
        if self.box_alone is BoxAlone.DECODER and self.uncertainty is UncertaintyMethod.MC:
            raise ValueError("box_alone='decoder' needs uncertainty='quadrature': its maps are computed around the "
                             "decoder's logit, which Monte Carlo weight samples of the head do not give")
        self.extractor = FeatureExtractor(predictor.backbone, head.config.features)

    @classmethod
    def from_trained(cls, predictor: SamPredictor, trained: TrainedHead, box_alone: BoxAlone | str | None = None,
                     **kwargs: object) -> BayesianHeadClickModel:
        """From :func:`~monai_baldsam.head.checkpoint.load_head`'s result; ``box_alone`` ``None`` takes the head
        file's own setting (its ``meta["box_alone"]``, ``head`` when absent)."""
        name = f"head@{(trained.sha256 or 'unsaved')[:16]}"
        if box_alone is None:
            box_alone = str(trained.meta.get("box_alone", BoxAlone.HEAD.value))
        return cls(predictor, trained.head, trained.laplace, name=name, box_alone=box_alone,
                   **kwargs)  # type: ignore[arg-type]

    @property
    def signature(self) -> str:
        conditioned = f"+clicks{self.click_weight:g}" if self.click_weight else ""
        box = "+box_decoder" if self.box_alone is BoxAlone.DECODER else ""
        epig = "+epig" if self.epig else ""
        return (f"{self.predictor.backbone.signature}+{self.name}+{self.uncertainty.value}{self.n_samples}"
                f"{conditioned}{box}{epig}")

    @property
    def extra_keys(self) -> tuple[str, ...]:
        """The maps this model returns in :attr:`ModelOutput.extras`."""
        return (*EXTRA_KEYS, EPIG_KEY) if self.epig else EXTRA_KEYS

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        """Encode one SAM image ``1 x 3 x H x W`` in [0, 1] (through the predictor's cache)."""
        return self.predictor.encode_image(image)

    @torch.no_grad()
    def predict_low_res(self, embedding: SliceEmbedding, prompts: HeadPrompts
                        ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(MAP logits (B, 1, L, L), logit variance (B, 1, L/2, L/2), maps name -> (B, 1, L/2, L/2))``."""
        inputs = self.extractor(embedding.features, prompts)
        output = self.head(inputs)
        features = PredictionHead.half_res_features(output)
        conditioned = self._conditioned_posterior(features, prompts)
        if conditioned is None:
            logits = output.logits
            mean, variance = self.laplace.logit_moments(features)
        else:
            theta, covariance = conditioned
            logits = self.head.combine(output.phi, output.sam_skip, theta)
            scale = torch.linalg.cholesky(covariance)
            mean, variance = logit_moments(features, theta, scale, diagonal=False)
        boxes_alone = self._boxes_alone(prompts).to(logits.device)
        if bool(boxes_alone.any()):  # the decoder's logit, with the head's variance around it
            logits = torch.where(boxes_alone.view(-1, 1, 1, 1), inputs.sam_logits, logits)
            decoder_mean = torch.nn.functional.avg_pool2d(inputs.sam_logits, 2).reshape(mean.shape)
            mean = torch.where(boxes_alone.view(-1, *([1] * (mean.ndim - 1))), decoder_mean, mean)
        if self.uncertainty is UncertaintyMethod.QUADRATURE:
            maps = gaussian_logit_uncertainty_maps(mean, variance, n_points=self.n_samples)
        else:
            generator = torch.Generator(device=features.device).manual_seed(self.seed)
            if conditioned is None:
                probs = self.laplace.predict_mc(features, self.n_samples, generator=generator)
            else:
                probs = sampled_probabilities(features, *sample_parameters(theta, scale, False, self.n_samples,
                                                                           generator))
            maps = uncertainty_maps(probs)
        if self.epig:
            posterior = self.laplace.posterior_covariance if conditioned is None else covariance
            maps = {**maps, EPIG_KEY: expected_variance_reduction(features, mean, variance, posterior)}
        return logits, variance[:, None], {k: maps[k][:, None] for k in self.extra_keys}

    def decoder_answers(self, point_labels: np.ndarray | None, box_xy: np.ndarray | None) -> bool:
        """Whether this prompt's mask is the decoder's own (``box_alone='decoder'`` and a box without clicks): the
        one-prompt form of :meth:`_boxes_alone`, for callers that hold the user's prompt (UncertainSAM's judge)."""
        labels = np.zeros(0) if point_labels is None else np.asarray(point_labels).reshape(-1)
        prompts = HeadPrompts(torch.zeros((1, labels.size, 2)), torch.as_tensor(labels, dtype=torch.int64)[None],
                              torch.zeros((1, 4)), torch.tensor([box_xy is not None]))
        return bool(self._boxes_alone(prompts)[0])

    def _boxes_alone(self, prompts: HeadPrompts) -> torch.Tensor:
        """``(B,)`` bool: the prompts the decoder answers (``box_alone='decoder'``: a box and no click)."""
        if self.box_alone is BoxAlone.HEAD:
            return torch.zeros(prompts.batch_size, dtype=torch.bool)
        return prompts.has_box.cpu() & ~(prompts.labels.cpu() >= 0).any(dim=1)

    def _conditioned_posterior(self, features: torch.Tensor, prompts: HeadPrompts
                               ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The last layer's posterior given the clicks of ``prompts`` (one prompt), or None when not conditioning."""
        labels = prompts.labels[0]
        keep = labels >= 0
        if self.click_weight == 0 or not bool(keep.any()):
            return None
        if prompts.batch_size != 1:
            raise ValueError("conditioning on clicks works on one prompt at a time")
        half = features.shape[-1]
        low_xy = sam_xy_to_low_xy(prompts.points_sam_xy[0][keep], self.predictor.img_size, 2 * half) / 2.0
        columns = low_xy[:, 0].floor().long().clamp(0, half - 1).to(features.device)
        rows = low_xy[:, 1].floor().long().clamp(0, half - 1).to(features.device)
        pixel_inputs = features[0][:, rows, columns].T  # (K, C + 1)
        design = torch.cat([pixel_inputs, torch.ones_like(pixel_inputs[:, :1])], dim=1)
        covariance = self.laplace.posterior_covariance
        if covariance.ndim == 1:
            covariance = torch.diag(covariance)
        return condition_on_labels(self.laplace.mean.to(features.device), covariance.to(features.device), design,
                                   labels[keep].to(features.device), self.click_weight)

    def predict(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
                box_xy: np.ndarray | None, mask_input: torch.Tensor | None) -> ModelOutput:
        """Decode one prompt (see :class:`~monai_baldsam.interaction.model.ClickModel`); ``extras`` holds the
        :data:`EXTRA_KEYS` maps at slice size."""
        coords, labels, box = prompt_tensors(self.predictor, embedding, point_coords_xy, point_labels, box_xy)
        size = self.extractor.low_res
        if mask_input is not None:
            mask_input = torch.as_tensor(mask_input, dtype=torch.float32)
            if tuple(mask_input.shape[-2:]) != (size, size):
                raise ValueError(f"mask_input must be (1, 1, {size}, {size}) low-resolution logits, got "
                                 f"{tuple(mask_input.shape)}")
            mask_input = mask_input.reshape(1, 1, size, size)
        prompts = HeadPrompts.single(coords, labels, box, mask_input)
        logits, variance, maps = self.predict_low_res(embedding, prompts)
        half = torch.nn.functional.interpolate(variance, logits.shape[-2:], mode="bilinear", align_corners=False)
        moderated = logits * torch.rsqrt(1.0 + math.pi / 8.0 * half.clamp_min(0.0))  # same sign as the MAP logit
        img_size, hw = self.predictor.img_size, embedding.original_hw
        full = postprocess_low_res_logits(moderated, img_size, hw)[0, 0].float().cpu()
        stacked = torch.cat([maps[k] for k in self.extra_keys], dim=1)
        extras_t = _maps_to_slice(stacked, img_size, hw)[0].clamp_min(0.0).float().cpu()
        probability = torch.sigmoid(full)
        extras = {k: extras_t[n].numpy() for n, k in enumerate(self.extra_keys)}
        return ModelOutput(probability=probability.numpy(), mask=(full > 0).numpy(),
                           low_res_logits=logits.detach().cpu(), extras=extras)


def _maps_to_slice(maps: torch.Tensor, img_size: int, original_hw: tuple[int, int]) -> torch.Tensor:
    """``(B, K, l, l)`` maps over SAM's padded input -> ``(B, K, H, W)``: crop the padding on the ``l`` grid, then one
    bilinear resize (SAM's two-step path, fused: these maps only rank pixels)."""
    resized_hw = preprocess_shape(int(original_hw[0]), int(original_hw[1]), img_size)
    size = maps.shape[-1]
    crop_h = max(1, math.ceil(resized_hw[0] * size / img_size))
    crop_w = max(1, math.ceil(resized_hw[1] * size / img_size))
    return torch.nn.functional.interpolate(maps[..., :crop_h, :crop_w], tuple(int(v) for v in original_hw),
                                           mode="bilinear", align_corners=False)


def load_head_click_model(path: str | os.PathLike[str], backbone: str = DEFAULT_BACKBONE,
                          checkpoint: str | None = None, checkpoint_sha256: str | None = None,
                          head_sha256: str | None = None, device: str | torch.device = "cpu", cache_items: int = 64,
                          uncertainty: UncertaintyMethod | str = UncertaintyMethod.QUADRATURE, n_samples: int = 32,
                          seed: int = 0, click_weight: float = 0.0,
                          encoder: EncoderRuntime | str = EncoderRuntime.TORCH,
                          box_alone: BoxAlone | str | None = None, epig: bool = False) -> BayesianHeadClickModel:
    """Backbone (verified) with the decoder the head was trained on + head file (verified when ``head_sha256`` is
    given) as a click model; ``encoder`` says how the image encoder runs, ``box_alone`` who answers a box alone
    (:class:`BoxAlone`; ``None``: the head file's setting), ``epig`` whether it also returns the EPIG map."""
    model = load_backbone(backbone, checkpoint=checkpoint, device=device, checkpoint_sha256=checkpoint_sha256,
                          decoder=head_decoder(path))
    trained = load_head(path, model, sha256=head_sha256)
    predictor = SamPredictor(model, EmbeddingCache(max_items=cache_items), encoder=make_encoder(model, encoder))
    return BayesianHeadClickModel.from_trained(predictor, trained, uncertainty=uncertainty, n_samples=n_samples,
                                               seed=seed, click_weight=click_weight, box_alone=box_alone,
                                               epig=epig)

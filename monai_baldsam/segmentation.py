"""From an image in its own coordinates and a user's prompts to a label: windowing, prompt mapping, inference.

Coordinates are those of the loaded array (see :mod:`monai_baldsam.io.readers`): a 2D picture's pixel
``(x, y)`` (x = column, y = row), a volume's voxel ``(i, j, k)``. A 3D box is given on one slice along
``axis`` as ``(a0, b0, index, a1, b1)``; for the default ``axis=2`` that is ``(i0, j0, k, i1, j1)``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from monai.data import MetaTensor

from monai_baldsam.cache import BoundedLRU
from monai_baldsam.head.checkpoint import head_decoder, load_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.interaction.model import ModelOutput, SamClickModel
from monai_baldsam.sam.backbones import DEFAULT_BACKBONE, load_backbone
from monai_baldsam.sam.decoders import ORIGINAL_DECODER, default_decoder, follows_clicks
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.encoder_runtime import EncoderRuntime, make_encoder
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.transforms.intensity import WindowIntensity, default_window
from monai_baldsam.transforms.prompts import SlicePrompt, UserPrompts, to_slice_prompts
from monai_baldsam.transforms.slicing import slice_axes
from monai_baldsam.transforms.volume_geometry import resolve_axis
from monai_baldsam.usam import load_usam
from monai_baldsam.usam.model import MaskQuality
from monai_baldsam.usam.scorer import Assessment, UsamModel
from monai_baldsam.volume.propagation import PropagationConfig
from monai_baldsam.volume.session import VolumeSession

__all__ = ["Segmenter", "UserPrompts"]  # UserPrompts: defined in monai_baldsam.transforms.prompts


class Segmenter:
    """SAM segmentation of a loaded image from user prompts, keeping encoded slices in a bounded cache.

    Args:
        backbone: registry name (default ``lite_medsam``) or a loaded :class:`SamBackbone`.
        checkpoint: checkpoint path for the backbone (default: packaged or cached file).
        checkpoint_sha256: expected hash of a non-published checkpoint.
        device: ``cpu`` or ``cuda``.
        window: a :class:`WindowIntensity`; default: :func:`default_window` per image.
        axis: slicing axis of volumes; ``None`` (default): each volume's through-plane axis, the one with the largest
            voxel size (ties -> axis 2), see :func:`monai_baldsam.transforms.volume_geometry.through_plane_axis`.
        cache: embedding cache shared across calls (default: a new bounded one).
        head: a Bayesian prediction head (a shipped name such as ``general``, or a head file) that decodes the
            prompted slices instead of SAM's decoder: clicks then work with LiteMedSAM, and :attr:`click_model` gives
            the uncertainty maps BALD needs. ``None``: SAM's decoder alone.
        head_sha256: expected SHA-256 of a head file without a card.
        decoder: the backbone's prompt encoder + mask decoder (:mod:`monai_baldsam.sam.decoders`): ``None``
            (default) takes the head's own (the one it was trained on) with ``head``, else the backbone's default
            (``clicks_v1`` for LiteMedSAM, which follows clicks); ``original`` the checkpoint's own decoder (LiteMedSAM's
            follows boxes only: clicks are then refused unless a head decodes them).
        encoder: how the image encoder runs (:class:`~monai_baldsam.sam.encoder_runtime.EncoderRuntime`, default the
            fp32 eager reference; ``auto`` uses OpenVINO f32 on a CPU where it is installed).
    """

    #: the slicing axis asked for (``None``: each volume's through-plane axis).
    axis: int | None = None
    #: the prediction head's click model, when one was given (``head=``).
    click_model: BayesianHeadClickModel | None = None
    #: how many UncertainSAM models (heads files) :meth:`usam_model` keeps loaded, least recently used dropped first.
    usam_cache_size: int = 2

    def __init__(self, backbone: str | SamBackbone = DEFAULT_BACKBONE, checkpoint: str | None = None,
                 checkpoint_sha256: str | None = None, device: str | torch.device = "cpu",
                 window: WindowIntensity | None = None, axis: int | None = None, cache: EmbeddingCache | None = None,
                 allow_download: bool = False, head: str | None = None, head_sha256: str | None = None,
                 decoder: str | None = None, encoder: EncoderRuntime | str = EncoderRuntime.TORCH) -> None:
        if axis is not None:
            slice_axes(axis)
        found_head = None
        if head is not None:
            found_head = resolve_head(head)
            trained_on = head_decoder(found_head.path)
            if decoder is not None and decoder != trained_on:
                raise ValueError(f"head {head} was trained on decoder {trained_on!r}, not {decoder!r}: leave --decoder "
                                 "out with a head, or pick a head trained on that decoder")
            decoder = trained_on
        if isinstance(backbone, SamBackbone):
            model = backbone.to(device)
            if decoder is not None and decoder != model.decoder_name:
                raise ValueError(f"the given backbone runs decoder {model.decoder_name!r}, not {decoder!r}")
        else:
            model = load_backbone(backbone, checkpoint=checkpoint, device=device, checkpoint_sha256=checkpoint_sha256,
                                  allow_download=allow_download,
                                  decoder=decoder or self._default_decoder(backbone, checkpoint))
        self.predictor = SamPredictor(model, cache if cache is not None else EmbeddingCache(),
                                      encoder=make_encoder(model, encoder))
        self.axis = axis
        self.inferer = SliceWiseSamInferer(axis=2 if axis is None else axis)
        self.window = window
        self.click_model = None
        #: UncertainSAM models by heads name or path (see :meth:`usam_model`); bounded by :attr:`usam_cache_size`.
        self._usam_models: BoundedLRU[str, UsamModel] = BoundedLRU(max(1, self.usam_cache_size))
        if found_head is not None:
            trained = load_head(found_head.path, model, sha256=head_sha256 or found_head.sha256)
            self.click_model = BayesianHeadClickModel.from_trained(self.predictor, trained)

    @staticmethod
    def _default_decoder(backbone: str, checkpoint: str | None) -> str:
        """The backbone's default decoder, or ``original`` for a user's own checkpoint (a shipped decoder was
        trained on the published encoder only)."""
        return ORIGINAL_DECODER if checkpoint is not None else default_decoder(backbone)

    @property
    def follows_clicks(self) -> bool:
        """Whether clicks reach the mask: through a head, or a decoder that follows point prompts."""
        return self.click_model is not None or follows_clicks(self.predictor.backbone)

    def check_prompts(self, prompts: UserPrompts) -> None:
        """Refuse clicks that the model would ignore (LiteMedSAM's original, box-only decoder without a head)."""
        if (len(prompts.foreground) or len(prompts.background)) and not self.follows_clicks:
            backbone = self.predictor.backbone
            raise ValueError(
                f"{backbone.name}'s {backbone.decoder_name} decoder was trained with boxes only and ignores clicks: "
                f"leave out --decoder {backbone.decoder_name} (the default decoder, "
                f"{default_decoder(backbone.name)}, follows clicks), add --head general, or give a box instead")

    def windowed(self, image: MetaTensor) -> MetaTensor:
        """``image`` mapped to [0, 1] with a window decided once for the whole image or volume."""
        return (self.window or default_window(image))(image)

    def axis_for(self, image: torch.Tensor) -> int:
        """The slicing axis used for ``image``: the one given, else the volume's through-plane axis."""
        if image.ndim != 4 or self.axis is not None:
            return self.inferer.axis if self.axis is None else self.axis

        affine = image.affine if isinstance(image, MetaTensor) else torch.eye(4)
        return resolve_axis(None, affine)

    def _inferer_for(self, axis: int) -> SliceWiseSamInferer:
        if axis == self.inferer.axis:
            return self.inferer
        base = self.inferer
        return SliceWiseSamInferer(axis=axis, batch_size=base.batch_size, multimask_output=base.multimask_output,
                                   threshold=base.threshold)

    def session(self, image: MetaTensor, config: PropagationConfig | None = None,
                usam: str | None = None) -> VolumeSession:
        """A :class:`monai_baldsam.volume.VolumeSession` over ``image`` ``(1, I, J, K)`` that shares this
        segmenter's predictor and embedding cache (prompt, propagate, correct). With ``usam`` (heads name or file,
        see :meth:`usam_model`) its prompted slices carry UncertainSAM's quality from the decode that made them
        (:meth:`~monai_baldsam.volume.VolumeSession.anchor_quality`)."""

        return VolumeSession(image, self.predictor, axis=self.axis_for(image), window=self.window or default_window(image),
                             config=config, batch_size=self.inferer.batch_size, threshold=self.inferer.threshold,
                             click_model=self.click_model, usam=None if usam is None else self.usam_model(usam))

    def _prompted_embeddings(self, image: MetaTensor, prompts: UserPrompts
                             ) -> tuple[dict[int, SlicePrompt], dict[int, SliceEmbedding]]:
        """The prompts by slice index (0 for a 2D image) and the embeddings of those slices (through the cache)."""
        axis = self.axis_for(image)
        slice_prompts = to_slice_prompts(prompts, image.shape[1:], axis)
        embeddings = self._inferer_for(axis).encode(self.windowed(image), self.predictor, sorted(slice_prompts))
        return slice_prompts, embeddings

    def head_outputs(self, image: MetaTensor, prompts: UserPrompts) -> dict[int, ModelOutput]:
        """The head's prediction (mask, probability, uncertainty maps; SAM orientation ``(H, W)``) on every
        prompted slice of ``image``, by slice index (0 for a 2D image). Needs ``head``."""
        if self.click_model is None:
            raise ValueError("this segmenter has no prediction head: create it with head='general' (or a head file)")
        slice_prompts, embeddings = self._prompted_embeddings(image, prompts)
        return {index: self.click_model.predict(embeddings[index], p.points_xy, p.labels, p.box_xyxy, None)
                for index, p in slice_prompts.items()}

    def usam_model(self, usam: str = "general") -> UsamModel:
        """UncertainSAM heads ``usam`` (shipped name or heads file trained for this backbone) around this segmenter's
        click model (the head's, else SAM's decoder), loaded once and kept in a small LRU cache keyed by ``usam``
        (at most :attr:`usam_cache_size` models; :meth:`clear_usam_cache` empties it)."""

        if self.usam_cache_size < 1:
            raise ValueError(f"usam_cache_size must be at least 1, got {self.usam_cache_size}")
        model = self._usam_models.get_or_put(
            str(usam), lambda: load_usam(usam, click_model=self.click_model or SamClickModel(self.predictor)))
        self._usam_models.resize(self.usam_cache_size)  # a field: it may have changed since the last call
        return model

    def clear_usam_cache(self) -> None:
        """Forget the loaded UncertainSAM models (they are loaded again when next asked for)."""
        self._usam_models.clear()

    def assess(self, image: MetaTensor, prompts: UserPrompts, usam: str = "general") -> dict[int, Assessment]:
        """The prediction on every prompted slice of ``image`` (by slice index, 0 for a 2D image) together with
        UncertainSAM's quality of its mask, both from one decoder call per slice: the tokens are captured while the
        click model decodes (see :mod:`monai_baldsam.usam.tokens`). With ``head`` each ``output`` is what
        :meth:`head_outputs` returns for the slice; without, SAM's decoder's prediction."""
        self.check_prompts(prompts)
        model = self.usam_model(usam)
        slice_prompts, embeddings = self._prompted_embeddings(image, prompts)
        return {index: model.assess(embeddings[index], p.points_xy, p.labels, p.box_xyxy, None)
                for index, p in slice_prompts.items()}

    def mask_quality(self, image: MetaTensor, prompts: UserPrompts, usam: str = "general") -> dict[int, MaskQuality]:
        """UncertainSAM's predicted IoU and gaps of the mask on every prompted slice of ``image``, by slice index (0
        for a 2D image): the head's mask with ``head``, else SAM's (see :mod:`monai_baldsam.usam`). ``usam``: shipped
        heads name or a heads file trained for this backbone. This decodes the slices; when their prediction is
        needed too, :meth:`assess` gives both from the same decoder call (:meth:`label_of` turns its outputs into
        the label), and a volume session made with ``session(image, usam=...)`` judges its prompted slices itself."""
        return {index: found.quality for index, found in self.assess(image, prompts, usam).items()}

    def __call__(self, image: MetaTensor, prompts: UserPrompts, return_logits: bool = False, propagate: bool = False,
                 config: PropagationConfig | None = None) -> MetaTensor:
        """Label ``(1, *spatial)`` uint8 (or logits) for ``image`` ``(C, *spatial)`` in its own geometry.

        Args:
            image: the image or volume as loaded.
            prompts: box and/or clicks in image coordinates.
            return_logits: return float logits (``-inf`` on unprompted slices); not with ``propagate``.
            propagate: on a volume, propagate from the prompted slices through the object (see
                :class:`monai_baldsam.volume.VolumeSession`); otherwise only the prompted slices are segmented.
            config: propagation settings.

        Raises:
            ValueError: bad prompts; ``propagate`` on a 2D image or with ``return_logits``.
        """
        self.check_prompts(prompts)
        axis = self.axis_for(image)
        if propagate:
            if return_logits:
                raise ValueError("return_logits is not available with propagate=True: it returns a binary label")
            session = self.session(image, config)
            session.update(prompts, propagate=True)
            return session.label()
        if self.click_model is not None:
            return self._outputs_label(image, self.head_outputs(image, prompts), axis, return_logits)
        slice_prompts = to_slice_prompts(prompts, image.shape[1:], axis)
        return self._inferer_for(axis)(self.windowed(image), self.predictor, prompts=slice_prompts,
                                       return_logits=return_logits)

    def label_of(self, image: MetaTensor, outputs: Mapping[int, ModelOutput]) -> MetaTensor:
        """The uint8 label ``(1, *spatial)`` of per-slice predictions (by slice index, 0 for a 2D image; SAM
        orientation ``(H, W)``, e.g. the outputs of :meth:`assess`), as :meth:`__call__` returns it without
        propagation: the prompted slices' masks, 0 elsewhere."""
        return self._outputs_label(image, outputs, self.axis_for(image), False)

    def _outputs_label(self, image: MetaTensor, outputs: Mapping[int, ModelOutput], axis: int,
                       return_logits: bool) -> MetaTensor:
        spatial = tuple(int(v) for v in image.shape[1:])
        fill = float("-inf") if return_logits else 0.0
        values = torch.full((1, *spatial), fill, dtype=torch.float32)
        for index, output in outputs.items():
            prob = torch.from_numpy(output.probability).clamp(1e-7, 1 - 1e-7)
            slice_ab = (torch.logit(prob) if return_logits else torch.from_numpy(output.mask).float()).T
            if len(spatial) == 2:
                values[0] = slice_ab
            else:
                torch.movedim(values[0], axis, 0)[index] = slice_ab
        result = values if return_logits else values.to(torch.uint8)
        meta = {k: v for k, v in image.meta.items() if k != "affine"} if isinstance(image, MetaTensor) else {}
        affine = image.affine.clone() if isinstance(image, MetaTensor) else None
        return MetaTensor(result, affine=affine, meta=meta)

"""An interactive segmentation session over one 3D volume: prompt a slice, propagate, correct, re-propagate.

Coordinates: prompts come in voxel coordinates ``ijk`` of the volume as loaded (:class:`UserPrompts`, the frames
3D Slicer sends); a 3D box is ``(a0, b0, index, a1, b1)`` on one slice along the session's axis. Inside, a slice
along ``axis`` is indexed ``[x, y]`` in ``slice_xy`` (index along ``a``, index along ``b``).

Each prompted slice is an *anchor*. From every anchor the result propagates slice by slice in both directions, the
previous slice's mask giving the next slice's prompt (:func:`propagation_prompt`), until the :class:`StopRule`
rejects a slice, the volume ends, or the next slice is another anchor or belongs to another anchor's run. Prompting a
slice again (a correction) replaces its result and re-propagates outward: slices whose result came through the
corrected slice are recomputed (and cleared beyond the new stop, or with ``keep_past_rejection`` kept when the stop
rule rejected the new result there); slices on the other side are left untouched.
On the slice just past an end, background clicks alone leave it empty, and a foreground click takes the box the next
propagation step would have given it (the box BALD asked with there).

With a ``click_model`` (a Bayesian prediction head, :class:`~monai_baldsam.head.BayesianHeadClickModel`) the
prompted slices are decoded by the head, which makes clicks work with LiteMedSAM; propagation to the neighbours keeps
SAM's decoder with the box of the previous mask, which LiteMedSAM follows well. :meth:`VolumeSession.uncertainty`
scores every slice with a result, plus the slice past each end, with the head's uncertainty maps (BALD over the
volume).

With a ``usam`` model (:class:`~monai_baldsam.usam.UsamModel` around the session's click model, or around SAM's
decoder when the session has none) each prompted slice's result also carries UncertainSAM's
:class:`~monai_baldsam.usam.MaskQuality` (:attr:`SliceResult.quality`, :meth:`VolumeSession.anchor_quality`),
computed from the decoder tokens of the decode that made the mask: no second decoder call. The click model's maps of
a prompted slice are kept from that same decode, so :meth:`VolumeSession.uncertainty` does not decode it again.

Embeddings are computed on demand through the predictor's bounded :class:`EmbeddingCache`, so each slice is encoded
once per volume while the cache holds it (the default cache holds 512 slices); :meth:`VolumeSession.encode_all`
encodes every slice in batches up front, worthwhile on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import torch
from monai.data import MetaTensor

from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.interaction.model import ClickModel, ModelOutput
from monai_baldsam.sam.embedding_cache import EmbeddingCache, content_hash
from monai_baldsam.sam.predictor import Prediction, SamPredictor, SliceEmbedding
from monai_baldsam.transforms.intensity import default_window
from monai_baldsam.transforms.prompts import SlicePrompt, UserPrompts, slice_xy_to_ijk, to_slice_prompts
from monai_baldsam.transforms.slicing import slice_axes
from monai_baldsam.transforms.volume_geometry import mask_area_mm2, resolve_axis, slice_spacing_xy, voxel_spacing
from monai_baldsam.usam.tokens import TokenCapture
from monai_baldsam.volume.appearance import AppearanceModel
from monai_baldsam.volume.propagation import PropagationConfig, propagation_prompt
from monai_baldsam.volume.scoring import (
    VolumeUncertainty,
    has_foreground,
    only_background,
    past_end_prompt,
    score_slices,
    scored_slices,
    scoring_prompt,
    slice_scores,
)
from monai_baldsam.volume.stopping import StopReason
from monai_baldsam.volume.uncertainty_cache import SliceUncertaintyCache, prompt_signature

if TYPE_CHECKING:  # the usam package is imported where it is used: a session without quality never loads it
    from monai_baldsam.usam.model import MaskQuality
    from monai_baldsam.usam.scorer import UsamModel

__all__ = ["SliceResult", "PropagationRun", "VolumeUncertainty", "VolumeSession"]


@dataclass(frozen=True)
class SliceResult:
    """The current result on one slice.

    Attributes:
        mask_ab: boolean mask indexed ``[x, y]`` (``slice_xy``).
        low_res_logits: SAM's ``1 x h x w`` low-resolution logits (CPU), usable as a later ``mask_input``.
        iou: SAM's predicted IoU of the mask (NaN on a slice the head decoded: it predicts none).
        area_mm2: the mask's area.
        prompt: the prompt that produced it (``slice_xy``).
        anchor: the prompted slice this result comes from (the slice itself for a prompted slice).
        appearance_margin: the mask's appearance margin against the anchor's prototypes (``None`` on the anchor,
            or when the stop rule does not use it).
        quality: UncertainSAM's quality of the mask, from the decode that made it (prompted slices of a session
            with ``usam``; ``None`` elsewhere and on a slice emptied by background clicks alone).
    """

    mask_ab: np.ndarray
    low_res_logits: torch.Tensor
    iou: float
    area_mm2: float
    prompt: SlicePrompt
    anchor: int
    appearance_margin: float | None = None
    quality: MaskQuality | None = None


@dataclass(frozen=True)
class PropagationRun:
    """What one propagation from ``anchor`` in ``direction`` (+1 or -1 along the axis) did.

    Attributes:
        slices: the slices it segmented, nearest to the anchor first.
        stop_index: the slice where it stopped (rejected or blocked); ``None`` when the volume ended.
        reason: why it stopped.
        cleared: slices whose old results depended on the anchor's previous result and were removed.
        kept: slices whose old results came through the anchor and were kept after a rejection
            (:attr:`PropagationConfig.keep_past_rejection`), nearest to the anchor first.
        rejected: the result the stop rule rejected at ``stop_index`` (not kept in the volume), for inspection;
            ``None`` when the run stopped for another reason.
    """

    anchor: int
    direction: int
    slices: tuple[int, ...]
    stop_index: int | None
    reason: StopReason
    cleared: tuple[int, ...] = ()
    rejected: SliceResult | None = None
    kept: tuple[int, ...] = ()


def _depends_on(source_anchor: int, anchor: int, direction: int) -> bool:
    """A result from ``source_anchor`` found at a slice beyond ``anchor`` in ``direction`` came through ``anchor``."""
    return (source_anchor - anchor) * direction <= 0


def _concat(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
    if first is None:
        return second
    if second is None:
        return first
    return np.concatenate([first, second])


class VolumeSession:
    """Interactive SAM segmentation of one volume with slice-by-slice propagation.

    Args:
        image: channel-first volume ``(1, I, J, K)`` (a ``MetaTensor`` with its affine, as from
            :func:`monai_baldsam.io.load_image`; pick one channel of a multi-channel volume first).
        predictor: the :class:`SamPredictor`; its embedding cache is used (one is added when it has none).
        axis: slicing axis; ``None``: the acquisition's through-plane axis (largest voxel size, ties -> 2).
        window: intensity window (default: :func:`monai_baldsam.transforms.intensity.default_window`, decided per volume).
        config: propagation settings (:class:`PropagationConfig`).
        batch_size: slices per encoder batch.
        prefetch: slices encoded together while propagating (default: ``batch_size`` on CUDA, 1 on CPU, where
            batching helps little and slices past the object's end would be encoded for nothing).
        threshold: logit threshold of the masks.
        click_model: decodes the prompted slices instead of SAM's decoder (a Bayesian head on the same backbone as
            ``predictor``); needed by :meth:`uncertainty`.
        usam: UncertainSAM heads that judge each prompted slice's mask from its own decode (see
            :attr:`SliceResult.quality`); they must wrap ``click_model`` (or SAM's decoder on ``predictor``'s
            backbone when there is no click model), as :meth:`monai_baldsam.segmentation.Segmenter.usam_model` does.

    Raises:
        ValueError: a 2D image, a volume with several channels, a bad axis / affine, or a click model or usam model
            on another backbone.
    """

    def __init__(self, image: torch.Tensor, predictor: SamPredictor, axis: int | None = None,
                 window: Callable[[torch.Tensor], torch.Tensor] | None = None, config: PropagationConfig | None = None,
                 batch_size: int = 8, prefetch: int | None = None, threshold: float = 0.0,
                 click_model: ClickModel | None = None, usam: UsamModel | None = None) -> None:
        if not isinstance(image, torch.Tensor) or image.ndim != 4:
            shape = tuple(getattr(image, "shape", ()))
            raise ValueError(
                f"propagation needs a channel-first 3D volume (1, I, J, K), got shape {shape}: a 2D image is a single "
                "slice; segment it without propagation."
            )
        if image.shape[0] != 1:
            raise ValueError(
                f"the volume has {image.shape[0]} channels (shape {tuple(image.shape)}): pick one, e.g. "
                "load_image(path, channel=0) or --channel 0"
            )
        if batch_size < 1 or (prefetch is not None and prefetch < 1):
            raise ValueError(f"batch_size and prefetch must be at least 1, got {batch_size} and {prefetch}")
        affine = image.affine if isinstance(image, MetaTensor) else torch.eye(4, dtype=torch.float64)
        self.image = image if isinstance(image, MetaTensor) else MetaTensor(image, affine=affine)
        self.axis = resolve_axis(axis, affine)
        self.spacing_ijk = voxel_spacing(affine)
        self.spacing_xy = slice_spacing_xy(self.spacing_ijk, self.axis)
        self.config = config or PropagationConfig()
        self.predictor = predictor if predictor.cache is not None else SamPredictor(predictor.backbone, EmbeddingCache())
        model_predictor = getattr(click_model, "predictor", None)
        if click_model is not None and model_predictor is not None and \
                model_predictor.backbone.signature != predictor.backbone.signature:
            raise ValueError(f"the click model runs on {model_predictor.backbone.signature} but the session on "
                             f"{predictor.backbone.signature}: use one backbone for both")
        self.click_model = click_model
        if usam is not None:  # the most specific mismatch first
            if click_model is not None and usam.click_model is not click_model:
                raise ValueError("the UncertainSAM model wraps another click model than the session's: build it around "
                                 "the session's click model (Segmenter.usam_model does)")
            if click_model is None and usam.from_head:
                raise ValueError("the UncertainSAM model wraps a prediction head but the session decodes with SAM's "
                                 "decoder: give the session that head as click_model, or wrap SAM's decoder")
            if usam.predictor.backbone.signature != predictor.backbone.signature:
                raise ValueError(f"the UncertainSAM heads run on {usam.predictor.backbone.signature} but the session on "
                                 f"{predictor.backbone.signature}: use one backbone for both")
        self.usam = usam
        self.inferer = SliceWiseSamInferer(axis=self.axis, batch_size=batch_size, threshold=threshold)
        self.prefetch = prefetch or (batch_size if self.predictor.device.type == "cuda" else 1)
        self.volume = (window or default_window(self.image))(self.image)
        self.volume_hash = content_hash(self.volume.as_tensor() if isinstance(self.volume, MetaTensor) else self.volume)
        a, b = slice_axes(self.axis)
        self.spatial_shape = tuple(int(s) for s in self.image.shape[1:])
        self.slice_shape_xy = (self.spatial_shape[a], self.spatial_shape[b])
        self.num_slices = self.spatial_shape[self.axis]
        self._results: dict[int, SliceResult] = {}
        self._user_prompts: dict[int, SlicePrompt] = {}
        self._appearance: dict[int, AppearanceModel | None] = {}
        #: slice indices whose embeddings this session asked for (each is encoded at most once while cached).
        self.requested: set[int] = set()
        #: the click model's per-slice maps, keyed by each slice's prompt (see :meth:`uncertainty`).
        self.uncertainty_cache = SliceUncertaintyCache()
        #: the slices the last :meth:`uncertainty` call decoded (the others came from the cache).
        self.last_recomputed: tuple[int, ...] = ()

    # ----------------------------------------------------------------- state
    @property
    def results(self) -> Mapping[int, SliceResult]:
        """Slice index -> current :class:`SliceResult` (read-only view)."""
        return dict(self._results)

    @property
    def anchors(self) -> list[int]:
        """The prompted slices, in increasing order."""
        return sorted(self._user_prompts)

    def user_prompt(self, index: int) -> SlicePrompt | None:
        """The accumulated prompt the user gave on slice ``index`` (``slice_xy``), if any."""
        return self._user_prompts.get(int(index))

    def slice_range(self) -> tuple[int, int] | None:
        """First and last slice with a non-empty mask, or ``None``."""
        filled = [i for i, r in self._results.items() if r.mask_ab.any()]
        return (min(filled), max(filled)) if filled else None

    def anchor_quality(self) -> dict[int, MaskQuality]:
        """UncertainSAM's quality of every prompted slice's current mask, by slice index (increasing), as judged
        during the decode that made it; empty without ``usam``. A slice emptied by background clicks alone (never
        decoded) has none."""
        found = {index: self._results[index].quality for index in self.anchors if index in self._results}
        return {index: quality for index, quality in found.items() if quality is not None}

    def reset(self) -> None:
        """Forget every prompt and result (embeddings stay in the predictor's cache)."""
        self._results.clear()
        self._user_prompts.clear()
        self._appearance.clear()
        self.uncertainty_cache.clear()

    def label(self) -> MetaTensor:
        """The label ``(1, I, J, K)`` uint8 of every current result, with the image's affine and meta."""
        data = torch.zeros((1, *self.spatial_shape), dtype=torch.uint8)
        moved = torch.movedim(data[0], self.axis, 0)
        for index, result in self._results.items():
            moved[index] = torch.from_numpy(result.mask_ab.astype(np.uint8))
        meta = {k: v for k, v in self.image.meta.items() if k != "affine"}
        return MetaTensor(data, affine=self.image.affine.clone(), meta=meta)

    # ----------------------------------------------------------------- encoding
    def encode_all(self) -> None:
        """Encode every slice now, in batches of ``batch_size`` (on a GPU this makes later propagation decode-only)."""
        self.requested.update(range(self.num_slices))
        self.inferer.encode(self.volume, self.predictor, None, image_hash=self.volume_hash)

    def _embedding(self, index: int, direction: int = 1) -> SliceEmbedding:
        ahead = [index + n * direction for n in range(self.prefetch)]
        indices = [i for i in ahead if 0 <= i < self.num_slices]
        self.requested.update(indices)
        return self.inferer.encode(self.volume, self.predictor, indices, image_hash=self.volume_hash)[index]

    def _model_output(self, embedding: SliceEmbedding, prompt: SlicePrompt, judge: bool = False
                      ) -> tuple[ModelOutput, MaskQuality | None]:
        """The click model's output for ``prompt``; with ``judge`` and a usam model, also its quality (same decode)."""
        if self.click_model is None:
            raise ValueError("this session has no click model: create it with click_model=<a Bayesian head>")
        mask_input = None if prompt.mask_logits is None else prompt.mask_logits.reshape(1, 1, *prompt.mask_logits.shape[-2:])
        if judge and self.usam is not None:
            assessed = self.usam.assess(embedding, prompt.points_xy, prompt.labels, prompt.box_xyxy, mask_input)
            return assessed.output, assessed.quality
        return self.click_model.predict(embedding, prompt.points_xy, prompt.labels, prompt.box_xyxy, mask_input), None

    def _model_tag(self) -> str:
        return f"{type(self.click_model).__name__}@{id(self.click_model)}"

    def _sam_decode(self, embedding: SliceEmbedding, prompt: SlicePrompt, judge: bool
                    ) -> tuple[Prediction, MaskQuality | None]:
        """SAM's decoder on ``prompt``; with ``judge`` and a usam model, the mask's quality from the same call."""
        if not judge or self.usam is None:
            return self.inferer.decode(self.predictor, embedding, prompt), None

        with TokenCapture(self.predictor.backbone.mask_decoder) as capture:
            prediction = self.inferer.decode(self.predictor, embedding, prompt)
        quality, _ = self.usam.judge(embedding, capture.last(), prediction.low_res_logits)
        return prediction, quality

    def _segment(self, index: int, prompt: SlicePrompt, anchor: int, direction: int = 1) -> SliceResult:
        if only_background(prompt):  # "not here" and nothing else: the slice holds no object
            mask_ab = np.zeros(self.slice_shape_xy, dtype=bool)
            size = self.predictor.backbone.low_res_hw
            return SliceResult(mask_ab=mask_ab, low_res_logits=torch.full((1, *size), -20.0), iou=float("nan"),
                               area_mm2=0.0, prompt=prompt, anchor=anchor)
        embedding = self._embedding(index, direction)
        if self.click_model is not None and index == anchor:
            output, quality = self._model_output(embedding, prompt, judge=True)
            # the maps of this decode are what uncertainty() would decode the same prompt for: keep them
            self.uncertainty_cache.put(index, prompt_signature(index, prompt, self._model_tag()), slice_scores(output))
            mask_ab = output.mask.T.copy()
            low_res, iou = output.low_res_logits[0].detach().cpu(), float("nan")
        else:
            prediction, quality = self._sam_decode(embedding, prompt, judge=index == anchor)
            logits = prediction.logits[0, 0].detach().cpu()  # SAM's (H, W) = (b, a)
            mask_ab = (logits > self.inferer.threshold).transpose(0, 1).numpy()
            low_res, iou = prediction.low_res_logits[0].detach().cpu(), float(prediction.iou[0, 0])
        model = self._appearance.get(anchor) if index != anchor else None
        margin = None
        if model is not None and self.config.stop.uses_appearance:
            margin = model.margin(embedding.features, mask_ab, self.predictor.img_size)
        return SliceResult(mask_ab=mask_ab, low_res_logits=low_res,
                           iou=iou, area_mm2=mask_area_mm2(mask_ab, self.spacing_xy),
                           prompt=prompt, anchor=anchor, appearance_margin=margin, quality=quality)

    def _appearance_model(self, index: int, result: SliceResult) -> AppearanceModel | None:
        if not self.config.stop.uses_appearance:
            return None
        return AppearanceModel.from_slice(self._embedding(index).features, result.mask_ab, self.predictor.img_size,
                                          self.config.ring_mm, self.spacing_xy)

    # ----------------------------------------------------------------- interaction
    def _merged_prompt(self, index: int, new: SlicePrompt) -> SlicePrompt:
        """A new box replaces the slice's box; clicks add to the user's earlier clicks on the slice. Without a new
        box, the slice keeps its box (the user's, or the one propagation gave it); on a slice past an end, a
        foreground click takes the box the next propagation step would have given it (the box BALD asked with:
        "the object goes on here"), while background clicks alone leave the slice empty."""
        old = self._user_prompts.get(index)
        box = new.box_xyxy
        if box is None and old is not None:
            box = old.box_xyxy
        if box is None and index in self._results:
            box = self._results[index].prompt.box_xyxy
        points = _concat(old.points_xy if old is not None else None, new.points_xy)
        labels = _concat(old.labels if old is not None else None, new.labels)
        if box is None and has_foreground(labels):
            past_end = self._past_end_prompt(index)
            box = None if past_end is None else past_end.box_xyxy
        return SlicePrompt(points_xy=points, labels=labels, box_xyxy=box)

    def update(self, prompts: UserPrompts, propagate: bool = True) -> list[PropagationRun]:
        """Add prompts (a first box, or corrections) and re-segment.

        Every prompted slice is segmented from its merged prompt (see :meth:`_merged_prompt`); with ``propagate``
        each one then propagates in both directions. Prompts are checked before anything changes.

        Args:
            prompts: box and/or clicks in voxel coordinates ``ijk`` (3D box ``(a0, b0, index, a1, b1)`` on a slice
                along the session's axis).
            propagate: propagate from the prompted slices.

        Returns:
            One :class:`PropagationRun` per prompted slice and direction (empty without ``propagate``).

        Raises:
            ValueError: no prompt, clicks or a box outside the volume, an empty box.
        """
        slice_prompts = to_slice_prompts(prompts, self.spatial_shape, self.axis)
        merged = {index: self._merged_prompt(index, prompt) for index, prompt in sorted(slice_prompts.items())}
        fresh = {index: self._segment(index, prompt, anchor=index) for index, prompt in merged.items()}
        models = {index: self._appearance_model(index, result) for index, result in fresh.items()}
        self._user_prompts.update(merged)
        self._results.update(fresh)
        self._appearance.update(models)
        runs: list[PropagationRun] = []
        if propagate:
            for index in sorted(merged):
                runs.extend(self.propagate(index, direction) for direction in (1, -1))
        return runs

    def propagate(self, anchor: int, direction: int) -> PropagationRun:
        """Propagate from the prompted slice ``anchor`` one slice at a time in ``direction`` (+1 or -1).

        Results that came through ``anchor`` are overwritten; the run stops at the first slice the stop rule
        rejects (left empty), at another prompted slice, at a slice of another anchor's run, or at the volume's end.
        Old results beyond the stop that came through ``anchor`` are cleared, or kept when the stop rule rejected the
        new result and :attr:`PropagationConfig.keep_past_rejection` is set.
        """
        if anchor not in self._user_prompts:
            raise ValueError(f"slice {anchor} has no prompt: propagation starts from a prompted slice {self.anchors}")
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1 along axis {self.axis}, got {direction}")
        rule, limit = self.config.stop, self.config.max_slices
        previous = self._results[anchor]
        done: list[int] = []
        index, stop_index, reason = anchor + direction, None, StopReason.VOLUME_END
        rejected_result: SliceResult | None = None
        while 0 <= index < self.num_slices:
            current = self._results.get(index)
            blocked = None
            if limit is not None and len(done) >= limit:
                blocked = StopReason.MAX_SLICES
            elif index in self._user_prompts:
                blocked = StopReason.USER_SLICE
            elif current is not None and not _depends_on(current.anchor, anchor, direction):
                blocked = StopReason.OTHER_CHAIN
            prompt = None if blocked else propagation_prompt(previous.mask_ab, previous.low_res_logits,
                                                             self.spacing_xy, self.config)
            if blocked is None and prompt is None:
                blocked = StopReason.EMPTY
            if blocked is not None:
                stop_index, reason = index, blocked
                break
            result = self._segment(index, prompt, anchor, direction)
            rejected = rule.check(result.area_mm2, previous.area_mm2, result.iou, result.appearance_margin)
            if rejected is not None:
                stop_index, reason, rejected_result = index, rejected, result
                break
            self._results[index] = result
            done.append(index)
            previous = result
            index += direction
        beyond = self._beyond(stop_index, anchor, direction)
        if rejected_result is not None and self.config.keep_past_rejection:
            return PropagationRun(anchor, direction, tuple(done), stop_index, reason, (), rejected_result, beyond)
        for index in beyond:
            del self._results[index]
        return PropagationRun(anchor, direction, tuple(done), stop_index, reason, beyond, rejected_result)

    def _beyond(self, stop_index: int | None, anchor: int, direction: int) -> tuple[int, ...]:
        """The slices from ``stop_index`` on in ``direction`` whose results came through ``anchor`` (up to the first
        slice that did not, or a prompted slice)."""
        found: list[int] = []
        index = stop_index if stop_index is not None else self.num_slices
        while 0 <= index < self.num_slices and index not in self._user_prompts:
            current = self._results.get(index)
            if current is None or not _depends_on(current.anchor, anchor, direction):
                break
            found.append(index)
            index += direction
        return tuple(found)

    # ----------------------------------------------------------------- uncertainty
    def scored_slices(self) -> list[int]:
        """The slices BALD looks at (:func:`~monai_baldsam.volume.scoring.scored_slices`): every slice with a
        non-empty result, plus the slice past each end of every run of such slices, plus every slice the user drew a
        box on (even if its mask came out empty)."""
        boxed = [index for index, prompt in self._user_prompts.items() if prompt.box_xyxy is not None]
        return scored_slices(self._results, self.num_slices, boxed)

    def _scoring_prompt(self, index: int) -> SlicePrompt | None:
        """The prompt a slice's maps are decoded with (:func:`~monai_baldsam.volume.scoring.scoring_prompt`)."""
        return scoring_prompt(index, self._user_prompts, self._results, self.spacing_xy, self.config)

    def _past_end_prompt(self, index: int) -> SlicePrompt | None:
        """What the next propagation step would prompt slice ``index`` with (``None``: no neighbour has a result)."""
        return past_end_prompt(index, self._results, self.spacing_xy, self.config)

    def uncertainty(self, progress: Callable[[list[int]], object] | None = None) -> VolumeUncertainty:
        """The click model's uncertainty maps and probability on :meth:`scored_slices`, as ``(I, J, K)`` volumes.

        Each slice is decoded with the prompt that produced its result (the user's on prompted slices, the
        propagation prompt elsewhere, the next propagation prompt past the ends). A slice's maps are cached under
        its prompt's signature (:class:`~monai_baldsam.volume.uncertainty_cache.SliceUncertaintyCache`): a later
        call decodes only the slices whose prompt changed (listed in :attr:`last_recomputed`). A prompted slice's
        maps are cached by the decode that segmented it, so it is not decoded here unless the cache dropped it.
        ``progress`` may wrap the slice list (e.g. ``tqdm``). The scoring itself is :mod:`monai_baldsam.volume.scoring`.
        """
        slices = self.scored_slices()
        if not slices:
            raise ValueError("nothing is segmented yet: give a box or a click first, then ask for a suggestion")
        maps, probability, recomputed = score_slices(
            progress(slices) if progress is not None else slices, self._scoring_prompt,
            lambda index, prompt: self._model_output(self._embedding(index), prompt)[0], self.uncertainty_cache,
            self._model_tag(), self.spatial_shape, self.axis)
        self.last_recomputed = tuple(recomputed)
        return VolumeUncertainty(maps=maps, probability=probability, slices=tuple(slices), axis=self.axis,
                                 clicks_ijk=self.clicked_ijk(), mask=self.label()[0].numpy().astype(bool))

    def clicked_ijk(self) -> np.ndarray:
        """``(N, 3)`` voxel indices of every click the user gave (rounded)."""
        rows = [slice_xy_to_ijk(p.points_xy, self.axis, index) for index, p in self._user_prompts.items()
                if p.points_xy is not None and len(p.points_xy)]
        return np.rint(np.concatenate(rows)).astype(np.int64) if rows else np.zeros((0, 3), dtype=np.int64)

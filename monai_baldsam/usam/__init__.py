"""UncertainSAM heads (Kaiser et al., ICML 2025): a predicted IoU and uncertainty gaps for every SAM mask.

Small MLPs on the mask decoder's IoU token and single-mask token (captured by hooks during the decoder call that made
the mask, plus a short descriptor of the judged mask) predict, per mask:

* ``iou``: the mask's IoU with the truth (rank images or masks: lowest first = most in need of an annotator);
* ``prompt_gap``: IoU with a dense set of prompts minus IoU with the given ones (more prompting would help);
* ``task_gap``: best of SAM's multimask outputs minus the judged mask (the prompt is ambiguous);
* ``model_gap``: a larger backbone's IoU minus this one's (None unless the heads were trained with two backbones;
  the shipped ``general`` heads have none: only LiteMedSAM is available offline).

Stable API::

    from monai_baldsam.usam import load_usam

    usam = load_usam("general")                      # LiteMedSAM + the shipped heads; judges SAM's own mask
    usam = load_usam("general", head="general")      # ... or the Bayesian head's mask (clicks work)
    embedding = usam.encode(sam_image)               # (1, 3, H, W) in [0, 1]; cached by content
    result = usam.assess(embedding, clicks_xy, labels, box_xy, mask_input=None)
    result.output.mask                               # (H, W) bool, the prediction
    result.quality.iou, result.quality.prompt_gap, result.quality.task_gap, result.quality.model_gap
    result.quality.to_dict()                         # {"predicted_iou": ..., "prompt_gap": ..., ...} for JSON
    usam.assess_image(sam_image)                     # whole-image box when no prompt is given

:class:`UsamModel` also follows the evaluation's click-model protocol (``predict`` + :attr:`UsamModel.last_quality`),
and :class:`StopRule` / :class:`StoppingPolicy` stop a click loop once the predicted IoU reaches a target.

Modules: ``tokens`` (hooks), ``features`` (head inputs), ``model`` (heads, :class:`MaskQuality`), ``checkpoint``
(save/load, shipped weights), ``scorer`` (:class:`UsamModel`), ``stopping``, ``metrics``; training (simulated prompt
states, :func:`~monai_baldsam.usam.train.train_usam`) sits in the ``train`` subpackage, which nothing here imports.
Importing has no side effects.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from monai_baldsam.head.checkpoint import load_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.usam.checkpoint import (
    DEFAULT_USAM,
    SHIPPED_USAM,
    TrainedUsam,
    UsamFile,
    load_usam_file,
    resolve_usam,
    save_usam,
)
from monai_baldsam.usam.model import TARGETS, MaskQuality, UsamConfig, UsamHeads
from monai_baldsam.usam.scorer import Assessment, UsamModel
from monai_baldsam.usam.stopping import StoppingPolicy, StopRule, stopping_outcomes
from monai_baldsam.usam.tokens import DecoderTokens, TokenCapture, decoder_readout

if TYPE_CHECKING:
    import torch

    from monai_baldsam.interaction.model import ClickModel
    from monai_baldsam.sam.model import SamBackbone

__all__ = [
    "load_usam",
    "DEFAULT_USAM",
    "SHIPPED_USAM",
    "TrainedUsam",
    "UsamFile",
    "load_usam_file",
    "resolve_usam",
    "save_usam",
    "TARGETS",
    "MaskQuality",
    "UsamConfig",
    "UsamHeads",
    "Assessment",
    "UsamModel",
    "StopRule",
    "StoppingPolicy",
    "stopping_outcomes",
    "DecoderTokens",
    "TokenCapture",
    "decoder_readout",
]


def load_usam(name_or_path: str | os.PathLike[str] = DEFAULT_USAM, backbone: str | SamBackbone = "lite_medsam",
              head: str | None = None, click_model: ClickModel | None = None, sha256: str | None = None,
              device: str | torch.device = "cpu", cache_items: int = 64) -> UsamModel:
    """Shipped heads by name (``general``) or a heads file, ready to judge predictions.

    Args:
        name_or_path: the heads; a shipped name's hash comes from its card and is always checked.
        backbone: backbone name (or a loaded one) the heads were trained on; ignored with ``click_model``.
        head: a Bayesian prediction head (name or file, see :func:`monai_baldsam.head.registry.resolve_head`) whose
            masks are judged; None judges the plain decoder's mask. Ignored with ``click_model``.
        click_model: an existing click model to wrap (shares its backbone and embedding cache).
        sha256: expected hash of a heads file without a card.
        device, cache_items: for a backbone loaded here.
    """

    found = resolve_usam(name_or_path)
    if click_model is None:
        model = load_backbone(backbone, device=device) if isinstance(backbone, str) else backbone.to(device)
        predictor = SamPredictor(model, EmbeddingCache(max_items=cache_items))
        if head is None:
            click_model = SamClickModel(predictor)
        else:
            head_file = resolve_head(head)
            click_model = BayesianHeadClickModel.from_trained(predictor, load_head(head_file.path, model,
                                                                                   sha256=head_file.sha256))
    backbone_model = click_model.predictor.backbone  # type: ignore[attr-defined]
    trained = load_usam_file(found.path, backbone_model, sha256=sha256 or found.sha256)
    return UsamModel(click_model, trained.heads, name=f"usam@{(trained.sha256 or 'unsaved')[:16]}")

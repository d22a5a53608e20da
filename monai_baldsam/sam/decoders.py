"""Prompt encoder + mask decoder weights for a backbone: the original ones, or a shipped or user file.

LiteMedSAM's own decoder was trained with boxes and ignores point prompts. ``clicks_v1`` is its prompt encoder and
mask decoder trained further for clicks on this project's training folders, the image encoder frozen
(:mod:`monai_baldsam.decoder`); its card (JSON beside the file) lists the data by hash, the settings and the
validation curves. A loaded click decoder answers every prompt that holds a click (a click alone, clicks after a box,
with or without the previous mask); a box alone is still answered by the checkpoint's own decoder, which was trained
for it on far more data (:meth:`~monai_baldsam.sam.model.SamBackbone.decoder_modules`), so box results do not
move. A domain decoder (``hippocampus_v1``: small MR structures, where the original decoder's box masks are poor and
never stop at the structure's ends) is trained on box rounds too and answers every prompt; its file says so
(``answers_boxes``). A decoder file holds only these two modules (fp16, under 10 MB), is verified against its card's
SHA-256 and refused on another backbone or encoder checkpoint.

``original`` always selects the backbone's own decoder, so that earlier results reproduce.
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.sam.checkpoints import (
    CheckpointError,
    WeightsFile,
    load_checkpoint_payload,
    resolve_weights_file,
)
from monai_baldsam.sam.model import SamBackbone

__all__ = ["DECODER_FORMAT", "ORIGINAL_DECODER", "WEIGHTS_DIR", "SHIPPED_DECODERS", "DEFAULT_DECODERS",
           "default_decoder", "resolve_decoder", "save_decoder", "apply_decoder", "follows_clicks"]

DECODER_FORMAT = "monai_baldsam.decoder/1"
ORIGINAL_DECODER = "original"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: name -> file stem in ``weights/``
SHIPPED_DECODERS: dict[str, str] = {"clicks_v1": "lite_medsam_clicks_v1",
                                    #: clicks_v1 fine-tuned on train/hippocampus, box rounds too (answers boxes)
                                    "hippocampus_v1": "lite_medsam_hippocampus_v1",
                                    #: clicks_v1 fine-tuned on brain MR FLAIR (train/brats_mri3d + train/brats2018),
                                    #: box rounds too (answers boxes)
                                    "brain_mri_v1": "lite_medsam_brain_mri_v1"}
#: backbone name -> the decoder user-facing entry points take when none is asked for
DEFAULT_DECODERS: dict[str, str] = {"lite_medsam": "clicks_v1"}
#: decoders that follow point prompts without a head (the original LiteMedSAM one does not)
_BOX_ONLY = {"lite_medsam": ORIGINAL_DECODER}


def default_decoder(backbone_name: str) -> str:
    """The decoder used when none is named: the click-trained one where it exists, else ``original``."""
    return DEFAULT_DECODERS.get(backbone_name, ORIGINAL_DECODER)


def follows_clicks(backbone: SamBackbone) -> bool:
    """Whether the backbone's decoder follows point prompts on its own (LiteMedSAM's original one does not)."""
    return _BOX_ONLY.get(backbone.name) != backbone.decoder_name


def resolve_decoder(name_or_path: str | os.PathLike[str]) -> WeightsFile:
    """A shipped decoder's name (``clicks_v1``) or a path to a decoder file; the card supplies the hash."""
    return resolve_weights_file(name_or_path, SHIPPED_DECODERS, WEIGHTS_DIR, "decoder_sha256", "decoder",
                                "decoder {text} is neither original, a shipped decoder ({known}) nor an existing file")


def save_decoder(path: str | os.PathLike[str], backbone: SamBackbone, prompt_encoder: torch.nn.Module,
                 mask_decoder: torch.nn.Module, meta: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> Path:
    """Write ``prompt_encoder`` and ``mask_decoder`` (fp16) for ``backbone`` atomically; returns the path."""
    payload = {
        "format": DECODER_FORMAT,
        "backbone": backbone.name,
        "checkpoint_sha256": backbone.checkpoint_sha256 or "random",
        "img_size": int(backbone.img_size),
        "prompt_encoder": {k: v.detach().cpu().to(torch.float16).clone() for k, v in prompt_encoder.state_dict().items()},
        "mask_decoder": {k: v.detach().cpu().to(torch.float16).clone() for k, v in mask_decoder.state_dict().items()},
        "meta": dict(meta or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def apply_decoder(backbone: SamBackbone, decoder: str | os.PathLike[str], sha256: str | None = None) -> SamBackbone:
    """Load decoder ``decoder`` (``original``, a shipped name or a file) into ``backbone`` in place; returns it.

    Raises:
        CheckpointError: a file whose hash differs from its card's (or ``sha256``), that is not a decoder file, or
            that does not fit the backbone's modules.
        ValueError: a decoder trained on another backbone or encoder checkpoint; ``original`` on a backbone whose
            decoder was already replaced (load the backbone again).
    """
    if str(decoder) == ORIGINAL_DECODER:
        if backbone.decoder_name != ORIGINAL_DECODER:
            raise ValueError(f"backbone {backbone.name} already runs decoder {backbone.decoder_name!r}: load it again "
                             "for the original decoder")
        return backbone
    found = resolve_decoder(decoder)
    payload, actual = load_checkpoint_payload(found.path, sha256 or found.sha256, DECODER_FORMAT, "decoder file",
                                              "a decoder file")
    stored = (payload.get("backbone"), payload.get("checkpoint_sha256"), payload.get("img_size"))
    expected = (backbone.name, backbone.checkpoint_sha256 or "random", int(backbone.img_size))
    if stored != expected:
        raise ValueError(f"decoder {found.path} was trained for backbone {stored} but the loaded backbone is "
                         f"{expected}: use --decoder original or train a decoder for this backbone")
    modules = (copy.deepcopy(backbone.prompt_encoder), copy.deepcopy(backbone.mask_decoder))
    try:
        for module, key in zip(modules, ("prompt_encoder", "mask_decoder")):
            reference = module.state_dict()
            module.load_state_dict({k: v.to(reference[k].dtype) for k, v in payload[key].items()}, strict=True)
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"decoder file {found.path} does not fit backbone {backbone.name} ({err})") from None
    backbone.click_prompt_encoder = modules[0].eval().requires_grad_(False)
    backbone.click_mask_decoder = modules[1].eval().requires_grad_(False)
    meta = payload.get("meta", {})
    backbone.click_mask_feedback = bool(meta.get("mask_feedback", True)) if isinstance(meta, dict) else True
    backbone.click_decoder_for_boxes = bool(meta.get("answers_boxes", False)) if isinstance(meta, dict) else False
    backbone.decoder_name = found.name
    backbone.decoder_sha256 = actual
    return backbone

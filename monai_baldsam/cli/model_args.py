"""The model options of the commands that take a model (``--backbone``, ``--checkpoint``, ``--checkpoint-sha256``,
``--bundle``), applying ``--bundle`` (its head and backbone replace ``--head``), and the segmenter they ask for."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from monai_baldsam.segmentation import Segmenter
    from monai_baldsam.transforms.intensity import WindowIntensity

__all__ = ["BACKBONE_HELP", "AUTO_HEAD", "NO_HEAD", "add_backbone_arguments", "add_checkpoint_sha256_argument",
           "add_bundle_argument", "add_head_argument", "add_runtime_model_arguments", "apply_bundle",
           "resolve_auto_head", "resolve_bald_head", "segmenter_from_args"]

BACKBONE_HELP = "lite_medsam (default), vit_b, vit_l or vit_h"
#: ``--head``'s default: the shipped click-native head with the default model, no head otherwise
AUTO_HEAD = "auto"
#: ``--head none``: the decoder alone
NO_HEAD = "none"
#: registry.DEFAULT_2D_HEAD, spelled here so that --help does not import the head package
_DEFAULT_2D_HEAD = "general_v2"
#: registry.DEFAULT_HEAD: the head on LiteMedSAM's own decoder, for ``suggest`` where ``auto`` gives no head
_FALLBACK_BALD_HEAD = "general"


def add_backbone_arguments(parser: argparse.ArgumentParser, backbone_help: str = BACKBONE_HELP,
                           checkpoint_sha256: bool = True) -> None:
    """Add ``--backbone``, ``--checkpoint`` and (``checkpoint_sha256``) ``--checkpoint-sha256``."""
    parser.add_argument("--backbone", default="lite_medsam", help=backbone_help)
    parser.add_argument("--checkpoint", default=None, help="checkpoint file of the backbone")
    if checkpoint_sha256:
        add_checkpoint_sha256_argument(parser)


def add_runtime_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--decoder`` (which prompt encoder + mask decoder) and ``--encoder`` (how the image encoder runs)."""
    parser.add_argument("--decoder", default=None,
                        help="prompt encoder + mask decoder: clicks_v1 (default for lite_medsam: trained for clicks), "
                             "original (the checkpoint's own; LiteMedSAM's follows boxes only) or a decoder file; "
                             "with --head, the decoder the head was trained on")
    parser.add_argument("--encoder", default="auto",
                        choices=("auto", "torch", "openvino-bf16", "openvino-f16", "openvino-f32"),
                        help="how the image encoder runs: auto (default: OpenVINO f32 on a CPU where OpenVINO is "
                             "installed, else PyTorch), torch (fp32 eager reference) or an OpenVINO precision")


def add_checkpoint_sha256_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-sha256", default=None, help="expected SHA-256 of a fine-tuned --checkpoint")


def add_bundle_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default=None,
                        help="use a shipped MONAI bundle's model (baldsam_ultrasound, baldsam_polyp, "
                             "baldsam_skin_lesion, baldsam_brain_mri; `baldsam bundles` lists them) instead of --head")


def add_head_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--head`` with the ``auto`` default (see :func:`resolve_auto_head`); ``what`` says what the head does."""
    parser.add_argument("--head", default=AUTO_HEAD,
                        help=f"Bayesian prediction head ({what}): auto (default: {_DEFAULT_2D_HEAD}, the head trained "
                             f"on the click-trained decoder, with the default model (pictures and volumes); none "
                             f"with --decoder or --checkpoint), none (the decoder alone), general, "
                             f"ultrasound|busi, polyp|kvasir, skin|ph2, brain_mri|brats, {_DEFAULT_2D_HEAD}, or a "
                             f"head file")


def resolve_auto_head(args: argparse.Namespace) -> None:
    """Turn ``--head auto`` / ``none`` into a head name or None: ``auto`` is ``general_v2``
    (:data:`~monai_baldsam.head.registry.DEFAULT_2D_HEAD`) with the default model (``lite_medsam``, no
    ``--checkpoint``, no ``--decoder``: the decoder it was trained on), else no head. Volumes get it too: it decodes
    only the clicked slices (a box alone stays the decoder's), and it lifted Dice after 4 oracle clicks on the
    validation volumes by +0.048 [+0.031, +0.065] (``benchmarks/results/correction_val_head_general_v2_cpu.json``)."""
    head = getattr(args, "head", None)
    if head == NO_HEAD:
        args.head = None
    elif head == AUTO_HEAD:
        default_model = (getattr(args, "backbone", "lite_medsam") == "lite_medsam"
                         and not getattr(args, "checkpoint", None) and getattr(args, "decoder", None) is None)
        args.head = _DEFAULT_2D_HEAD if default_model else None


def resolve_bald_head(args: argparse.Namespace) -> None:
    """``--head`` of a command that needs a Bayesian head (``suggest`` scores clicks with its posterior): ``auto`` is
    :func:`resolve_auto_head`'s head (``general_v2`` with the default model, the model ``segment`` runs), else
    ``general``; ``none`` is refused."""
    if getattr(args, "head", None) == NO_HEAD:
        raise ValueError("suggest scores clicks with a Bayesian head: give --head auto (the default), general, a "
                         "domain head or a head file, not none")
    resolve_auto_head(args)
    if args.head is None:
        args.head = _FALLBACK_BALD_HEAD


def apply_bundle(args: argparse.Namespace) -> None:
    """Set ``args.head`` (and ``args.backbone``) from ``args.bundle`` when given. Giving both ``--bundle`` and
    ``--head`` (other than ``auto``) is an error."""
    name = getattr(args, "bundle", None)
    if not name:
        return
    if getattr(args, "head", None) not in (None, AUTO_HEAD):
        raise ValueError("give either --bundle or --head, not both: a bundle brings its own head")
    from monai_baldsam.bundle.heads import bundle_head
    from monai_baldsam.bundles import bundle_metadata

    meta = bundle_metadata(name)["baldsam"]
    args.head = str(bundle_head(name).path)  # the shipped head the bundle names, its pinned SHA-256 checked
    if getattr(args, "backbone", meta["backbone"]) not in (meta["backbone"], None):
        raise ValueError(f"bundle {name} runs on the {meta['backbone']} backbone, not --backbone {args.backbone}")
    if hasattr(args, "backbone"):
        args.backbone = meta["backbone"]


def segmenter_from_args(args: argparse.Namespace, window: WindowIntensity | None = None, axis: int | None = None,
                        **options: Any) -> Segmenter:
    """The :class:`~monai_baldsam.segmentation.Segmenter` of ``--backbone``, ``--checkpoint``,
    ``--checkpoint-sha256`` (when the command has it), ``--device`` and ``--head`` (after :func:`apply_bundle`);
    ``options`` go to the segmenter as they are (e.g. ``allow_download``)."""
    from monai_baldsam.segmentation import Segmenter

    return Segmenter(args.backbone, args.checkpoint, getattr(args, "checkpoint_sha256", None), args.device, window,
                     axis, head=args.head, decoder=getattr(args, "decoder", None),
                     encoder=getattr(args, "encoder", "torch"), **options)

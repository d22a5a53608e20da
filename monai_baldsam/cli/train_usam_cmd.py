"""``baldsam train-usam``: train UncertainSAM heads (predicted IoU, prompt/task/model gaps) and write heads + card."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from monai_baldsam.cli.training_args import (
    TrainingArgs,
    add_config_argument,
    add_epochs_argument,
    add_run_arguments,
    add_split_arguments,
    add_training_data_arguments,
    check_training_args,
    given_or,
    training_folders,
)

if TYPE_CHECKING:
    from monai_baldsam.usam.train.config import UsamTrainSettings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-usam", help="train UncertainSAM heads: a predicted IoU and uncertainty gaps for every mask",
        description="Simulates prompt states per image (boxes through the plain decoder; a box and a click session "
                    "through a Bayesian head), computes the true IoU and the prompt and task gaps, caches them on "
                    "disk, and regresses them from the decoder's IoU and mask tokens. Writes OUT and a card "
                    "OUT.json (data hashes, settings, validation metrics). Never train on dev data.",
    )
    add_config_argument(parser, "configs/usam_general_v1.json")
    add_training_data_arguments(parser, data_help="training folders with images/ and masks/",
                                out_help="heads file to write (.pt); its card goes beside it (.json)",
                                backbone_help="backbone the heads judge (default lite_medsam)")
    parser.add_argument("--head", default=None,
                        help="Bayesian head for the click states (name or file), or 'none' for plain-decoder states "
                             "(default: the config's, else general)")
    parser.add_argument("--large-backbone", default=None,
                        help="a second, larger backbone (e.g. vit_h) for the model-gap head")
    parser.add_argument("--large-checkpoint", default=None, help="checkpoint file of --large-backbone")
    add_split_arguments(parser)
    add_epochs_argument(parser, "regression epochs (default 300; early stopping)")
    add_run_arguments(parser, seed_help="seed of the draw, states, initialisation and batching",
                      overwrite_help="replace an existing heads file and card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.sam.backbones import load_backbone
    from monai_baldsam.usam.train.trainer import train_usam

    checked = check_training_args(args)
    settings = _settings(args, checked)
    large = None
    if settings.large_backbone:
        large = load_backbone(settings.large_backbone, checkpoint=args.large_checkpoint, device=args.device)
    result = train_usam(training_folders(args, settings.data_dirs), args.out, backbone=settings.backbone,
                        head=None if settings.head is None else str(settings.head), large_backbone=large,
                        seed=settings.seed, val_fraction=settings.val_fraction,
                        max_per_folder=settings.max_per_folder, states=settings.states, config=settings.train,
                        head_options=settings.usam_options, device=args.device, overwrite=args.overwrite,
                        progress=not args.no_progress, config_file=args.config)
    card = result.card
    print(json.dumps({"usam": str(result.path), "card": str(result.card_path), "usam_sha256": card["usam_sha256"],
                      "counts": card["counts"], "training": {k: v for k, v in card["training"].items()
                                                             if k != "val_loss"},
                      "val_metrics": card["val_metrics"], "seconds": card["seconds"]}, indent=2))
    return 0


def _settings(args: argparse.Namespace, checked: TrainingArgs) -> UsamTrainSettings:
    """The config file's settings (or the trainer's defaults) with the options given on the command line."""
    from monai_baldsam.usam.train.config import UsamTrainSettings, load_usam_config

    settings = load_usam_config(args.config) if args.config else UsamTrainSettings()
    config = settings.train if checked.epochs is None else replace(settings.train, epochs=checked.epochs)
    head = settings.head if args.head is None else (None if args.head == "none" else args.head)
    return replace(settings, backbone=given_or(args.backbone, settings.backbone),
                   large_backbone=given_or(args.large_backbone, settings.large_backbone), head=head,
                   seed=given_or(args.seed, settings.seed),
                   val_fraction=given_or(checked.val_fraction, settings.val_fraction),
                   max_per_folder=given_or(checked.max_per_folder, settings.max_per_folder), train=config)

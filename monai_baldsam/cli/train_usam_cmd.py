"""``baldsam train-usam``: train UncertainSAM heads (predicted IoU, prompt/task/model gaps) and write heads + card."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from monai_baldsam.cli.training_args import (
    add_epochs_argument,
    add_run_arguments,
    add_split_arguments,
    add_training_data_arguments,
    check_training_args,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-usam", help="train UncertainSAM heads: a predicted IoU and uncertainty gaps for every mask",
        description="Simulates prompt states per image (boxes through the plain decoder; a box and a click session "
                    "through a Bayesian head), computes the true IoU and the prompt and task gaps, caches them on "
                    "disk, and regresses them from the decoder's IoU and mask tokens. Writes OUT and a card "
                    "OUT.json (data hashes, settings, validation metrics). Never train on dev data.",
    )
    add_training_data_arguments(parser, data_help="training folders with images/ and masks/",
                                out_help="heads file to write (.pt); its card goes beside it (.json)",
                                backbone_help="backbone the heads judge (default lite_medsam)")
    parser.add_argument("--head", default="general",
                        help="Bayesian head for the click states (name or file), or 'none' for plain-decoder states")
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
    from monai_baldsam.usam.train.trainer import UsamTrainConfig, train_usam

    checked = check_training_args(args)
    config = UsamTrainConfig()
    if checked.epochs is not None:
        config = replace(config, epochs=checked.epochs)
    large = None
    if args.large_backbone:
        large = load_backbone(args.large_backbone, checkpoint=args.large_checkpoint, device=args.device)
    result = train_usam(args.data, args.out, backbone=args.backbone, head=None if args.head == "none" else args.head,
                        large_backbone=large, seed=args.seed, val_fraction=checked.val_fraction,
                        max_per_folder=checked.max_per_folder, config=config, device=args.device,
                        overwrite=args.overwrite, progress=not args.no_progress)
    card = result.card
    print(json.dumps({"usam": str(result.path), "card": str(result.card_path), "usam_sha256": card["usam_sha256"],
                      "counts": card["counts"], "training": {k: v for k, v in card["training"].items()
                                                             if k != "val_loss"},
                      "val_metrics": card["val_metrics"], "seconds": card["seconds"]}, indent=2))
    return 0

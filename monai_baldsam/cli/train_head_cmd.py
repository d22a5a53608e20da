"""``baldsam train-head``: train a Bayesian prediction head on a frozen backbone and write head + card."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from monai_baldsam.cli.model_args import BACKBONE_HELP
from monai_baldsam.cli.training_args import (
    TrainingArgs,
    add_config_argument,
    add_epochs_argument,
    add_run_arguments,
    add_split_arguments,
    add_training_data_arguments,
    check_training_args,
    given_or,
    parse_max_per_folder,
    training_folders,
)

if TYPE_CHECKING:
    from monai_baldsam.head.train.config import HeadTrainSettings

__all__ = ["add_parser", "run", "parse_max_per_folder"]  # parse_max_per_folder: from training_args, kept importable


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-head", help="train a Bayesian prediction head (simulated clicks) and fit its Laplace posterior",
        description="Splits each folder's images into training and validation (seeded, by image), caches their "
                    "embeddings on disk, trains with simulated interactive sessions (a box or a click first, then "
                    "error-driven clicks with mask feedback), keeps the best epoch on validation, fits the last "
                    "layer's Laplace posterior and writes HEAD plus a card HEAD.json (data hashes, settings, "
                    "validation metrics). Never train on dev data: it is for benchmarks.",
    )
    add_config_argument(parser, "configs/head_general_v1.json")
    add_training_data_arguments(
        parser, data_help="training folders with images/ and masks/ (e.g. ../shared/data/train/busi); a folder "
                          "of 3D volumes (NIfTI or DICOM series, e.g. train/brats_mri3d) trains on the slices "
                          "along each volume's through-plane axis, windowed per volume and split by volume",
        out_help="head file to write (.pt); its card goes beside it (.json)", backbone_help=BACKBONE_HELP)
    add_epochs_argument(parser, "training epochs (default 20; early stopping)")
    parser.add_argument("--decoder", default=None,
                        help="prompt encoder + mask decoder the head trains on: original or clicks_v1 (default: the "
                             "config's, else original); the head file records it and loads it again")
    parser.add_argument("--encoder", default="torch", choices=("torch", "auto", "openvino-f32", "openvino-bf16"),
                        help="how missing embeddings are computed (default torch, the reference; stored embeddings "
                             "are keyed by it: openvino-bf16 reuses the clicks_v1 decoder's training store)")
    parser.add_argument("--init", default=None,
                        help="start from this head (a shipped name or a file): fine-tuning, e.g. a domain head")
    parser.add_argument("--bundle", default=None,
                        help="start from a shipped bundle's head (baldsam_polyp, ...; `baldsam bundles` lists them)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default: the config's, else 2e-3; cosine decay)")
    add_split_arguments(parser)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the epoch that passes this training time (the best epoch is kept)")
    parser.add_argument("--store", default=None, help="embedding store folder (default $BALDSAM_CACHE/embeddings)")
    add_run_arguments(parser, seed_help="seed of the split, initialisation and simulation",
                      overwrite_help="replace an existing head file and card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.head.train.trainer import train_head

    checked = check_training_args(args)
    settings = _settings(args, checked)
    result = train_head(training_folders(args, settings.data_dirs), args.out, backbone=settings.backbone,
                        device=args.device, seed=settings.seed, val_fraction=settings.val_fraction,
                        store_dir=args.store, max_per_folder=settings.max_per_folder, config=settings.train,
                        head_options=settings.head_options, overwrite=args.overwrite, progress=not args.no_progress,
                        init=settings.init, config_file=args.config, decoder=settings.decoder,
                        encoder=args.encoder)
    card = result.card
    print(json.dumps({"head": str(result.path), "card": str(result.card_path),
                      "head_sha256": card["head_sha256"], "best_epoch": card["best_epoch"],
                      "validation": card["validation_full_res_oracle"], "duration_s": card["duration_s"]}, indent=2))
    return 0


def _settings(args: argparse.Namespace, checked: TrainingArgs) -> HeadTrainSettings:
    """The config file's settings (or the trainer's defaults) with the options given on the command line."""
    from monai_baldsam.head.registry import resolve_head
    from monai_baldsam.head.train.config import HeadTrainSettings, load_head_config

    settings = load_head_config(args.config) if args.config else HeadTrainSettings()
    config = settings.train
    if checked.epochs is not None:
        config = replace(config, epochs=checked.epochs)
    if checked.lr is not None:
        config = replace(config, lr=checked.lr)
    if args.max_minutes is not None:
        config = replace(config, max_train_seconds=60.0 * args.max_minutes)
    if args.bundle:
        if args.init:
            raise ValueError("give either --bundle or --init, not both: --bundle starts from the bundle's head")
        from monai_baldsam.bundle.heads import bundle_head

        args.init = str(bundle_head(args.bundle).path)
    init = resolve_head(args.init).path if args.init else settings.init
    if isinstance(init, str):  # a shipped name in the config
        init = resolve_head(init).path
    return replace(settings, backbone=given_or(args.backbone, settings.backbone),
                   decoder=given_or(args.decoder, settings.decoder),
                   seed=given_or(args.seed, settings.seed),
                   val_fraction=given_or(checked.val_fraction, settings.val_fraction),
                   max_per_folder=given_or(checked.max_per_folder, settings.max_per_folder), init=init,
                   head_options=_head_options(settings, init), train=config)


def _head_options(settings: HeadTrainSettings, init: object) -> dict | None:
    """The config's head options; when fine-tuning from an ``init`` the command line gave, only its ``features``."""
    if init is None or not settings.head_options:
        return settings.head_options
    features = settings.head_options.get("features")
    return {"features": features} if features else None

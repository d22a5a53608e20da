"""``baldsam train-usam``: train UncertainSAM heads (predicted IoU, prompt/task/model gaps) and write heads + card."""

from __future__ import annotations

import argparse
import json

from monai_baldsam.cli.train_head_cmd import parse_max_per_folder

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-usam", help="train UncertainSAM heads: a predicted IoU and uncertainty gaps for every mask",
        description="Simulates prompt states per image (boxes through the plain decoder; a box and a click session "
                    "through a Bayesian head), computes the true IoU and the prompt and task gaps, caches them on "
                    "disk, and regresses them from the decoder's IoU and mask tokens. Writes OUT and a card "
                    "OUT.json (data hashes, settings, validation metrics). Never train on dev data.",
    )
    parser.add_argument("--data", nargs="+", required=True, help="training folders with images/ and masks/")
    parser.add_argument("--out", required=True, help="heads file to write (.pt); its card goes beside it (.json)")
    parser.add_argument("--backbone", default="lite_medsam", help="backbone the heads judge (default lite_medsam)")
    parser.add_argument("--head", default="general",
                        help="Bayesian head for the click states (name or file), or 'none' for plain-decoder states")
    parser.add_argument("--large-backbone", default=None,
                        help="a second, larger backbone (e.g. vit_h) for the model-gap head")
    parser.add_argument("--large-checkpoint", default=None, help="checkpoint file of --large-backbone")
    parser.add_argument("--max-per-folder", nargs="+", default=None, metavar="N|FOLDER=N",
                        help="use at most N images per folder (seeded draw), or per folder name")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="held-out fraction per folder (0.15)")
    parser.add_argument("--epochs", type=int, default=None, help="regression epochs (default 300; early stopping)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw, states, initialisation and batching")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing heads file and card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from monai_baldsam.sam.backbones import load_backbone
    from monai_baldsam.usam.training import UsamTrainConfig, train_usam

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = UsamTrainConfig()
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        config = replace(config, epochs=args.epochs)
    large = None
    if args.large_backbone:
        large = load_backbone(args.large_backbone, checkpoint=args.large_checkpoint, device=args.device)
    result = train_usam(args.data, args.out, backbone=args.backbone, head=None if args.head == "none" else args.head,
                        large_backbone=large, seed=args.seed, val_fraction=args.val_fraction,
                        max_per_folder=parse_max_per_folder(args.max_per_folder), config=config, device=args.device,
                        overwrite=args.overwrite, progress=not args.no_progress)
    card = result.card
    print(json.dumps({"usam": str(result.path), "card": str(result.card_path), "usam_sha256": card["usam_sha256"],
                      "counts": card["counts"], "training": {k: v for k, v in card["training"].items()
                                                             if k != "val_loss"},
                      "val_metrics": card["val_metrics"], "seconds": card["seconds"]}, indent=2))
    return 0

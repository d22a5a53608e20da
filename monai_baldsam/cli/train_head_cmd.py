"""``baldsam train-head``: train a Bayesian prediction head on a frozen backbone and write head + card."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run", "parse_max_per_folder"]


def parse_max_per_folder(values: list[str] | None) -> int | dict[str, int] | None:
    """``["100"]`` -> 100; ``["kvasir=200", "ph2=100"]`` -> per-folder limits."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _positive(values[0], "--max-per-folder")
    limits: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name:
            raise ValueError(f"--max-per-folder takes N or FOLDER=N (e.g. kvasir=200), got {value!r}")
        limits[name] = _positive(number, f"--max-per-folder {name}")
    return limits


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-head", help="train a Bayesian prediction head (simulated clicks) and fit its Laplace posterior",
        description="Splits each folder's images into training and validation (seeded, by image), caches their "
                    "embeddings on disk, trains with simulated interactive sessions (a box or a click first, then "
                    "error-driven clicks with mask feedback), keeps the best epoch on validation, fits the last "
                    "layer's Laplace posterior and writes HEAD plus a card HEAD.json (data hashes, settings, "
                    "validation metrics). Never train on dev data: it is for benchmarks.",
    )
    parser.add_argument("--data", nargs="+", required=True,
                        help="training folders with images/ and masks/ (e.g. ../shared/data/train/busi); a folder "
                             "of 3D volumes (NIfTI or DICOM series, e.g. train/brats_mri3d) trains on the slices "
                             "along each volume's through-plane axis, windowed per volume and split by volume")
    parser.add_argument("--out", required=True, help="head file to write (.pt); its card goes beside it (.json)")
    parser.add_argument("--backbone", default="lite_medsam", help="lite_medsam (default), vit_b, vit_l or vit_h")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 20; early stopping)")
    parser.add_argument("--init", default=None,
                        help="start from this head (a shipped name or a file): fine-tuning, e.g. a domain head")
    parser.add_argument("--bundle", default=None,
                        help="start from a shipped bundle's head (baldsam_polyp, ...; `baldsam bundles` lists them)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 2e-3, cosine decay)")
    parser.add_argument("--max-per-folder", nargs="+", default=None, metavar="N|FOLDER=N",
                        help="use at most N images per folder (seeded draw), or per folder name")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="held-out fraction per folder (0.15)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the epoch that passes this training time (the best epoch is kept)")
    parser.add_argument("--store", default=None, help="embedding store folder (default $BALDSAM_CACHE/embeddings)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and simulation")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing head file and card")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from monai_baldsam.head.registry import resolve_head
    from monai_baldsam.head.training import TrainConfig, train_head

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = TrainConfig()
    if args.lr is not None:
        if args.lr <= 0:
            raise ValueError(f"--lr must be positive, got {args.lr}")
        config = replace(config, lr=args.lr)
    if args.max_minutes is not None:
        config = replace(config, max_train_seconds=60.0 * args.max_minutes)
    if args.bundle:
        if args.init:
            raise ValueError("give either --bundle or --init, not both: --bundle starts from the bundle's head")
        from monai_baldsam.bundles import bundle_dir, bundle_metadata

        args.init = str(bundle_dir(args.bundle) / bundle_metadata(args.bundle)["baldsam"]["head"])
    init = resolve_head(args.init).path if args.init else None
    result = train_head(args.data, args.out, backbone=args.backbone, epochs=args.epochs, device=args.device,
                        seed=args.seed, val_fraction=args.val_fraction, store_dir=args.store,
                        max_per_folder=parse_max_per_folder(args.max_per_folder), config=config,
                        overwrite=args.overwrite, progress=not args.no_progress, init=init)
    card = result.card
    print(json.dumps({"head": str(result.head_path), "card": str(result.card_path),
                      "head_sha256": card["head_sha256"], "best_epoch": card["best_epoch"],
                      "validation": card["validation_full_res_oracle"], "duration_s": card["duration_s"]}, indent=2))
    return 0

"""Entry point of the ``baldsam`` command: builds the parser from the subcommand modules and reports errors."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from monai_baldsam import __version__
from monai_baldsam.cli import (
    bundles_cmd,
    compare_cmd,
    evaluate_cmd,
    monailabel_app_cmd,
    segment_cmd,
    suggest_cmd,
    train_decoder_cmd,
    train_head_cmd,
    train_usam_cmd,
)

__all__ = ["build_parser", "main"]

SUBCOMMANDS = (segment_cmd, suggest_cmd, evaluate_cmd, compare_cmd, train_head_cmd, train_usam_cmd, train_decoder_cmd,
               bundles_cmd, monailabel_app_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baldsam", description="Interactive medical image segmentation with SAM and BALD click suggestions.")
    parser.add_argument("--version", action="version", version=f"monai_baldsam {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``baldsam``; a user error prints ``baldsam: error: ...`` and exits with status 2, writing nothing."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from monai_baldsam.sam.checkpoints import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as err:
        print(f"baldsam: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

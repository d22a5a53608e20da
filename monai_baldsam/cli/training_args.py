"""The options that ``train-head`` and ``train-usam`` share (configuration file, training folders, output, split,
epochs, seed, device, threads, progress, overwrite) and their checks, done before any model or data is loaded.

Options that a configuration file (``--config``) may also set default to ``None`` here: the command line wins, then
the file, then the trainer's default."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Sequence, TypeVar

from monai_baldsam.cli.runtime_args import add_device_argument, add_threads_argument, apply_threads

__all__ = ["add_config_argument", "add_training_data_arguments", "add_split_arguments", "add_epochs_argument",
           "add_run_arguments", "parse_max_per_folder", "TrainingArgs", "check_training_args", "given_or",
           "training_folders"]

T = TypeVar("T")


def add_config_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``--config FILE``: the configuration that produced a shipped model (``example``)."""
    parser.add_argument("--config", default=None,
                        help=f"JSON configuration with the data and settings (e.g. {example}, which produced the "
                             "shipped model); options given here override it; the card records its SHA-256")


def add_training_data_arguments(parser: argparse.ArgumentParser, data_help: str, out_help: str,
                                backbone_help: str) -> None:
    """Add ``--data DIR...`` (required unless ``--config`` names ``data_dirs``), ``--out FILE`` (required) and
    ``--backbone``."""
    parser.add_argument("--data", nargs="+", default=None, help=data_help + " (default: the config's data_dirs)")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--backbone", default=None, help=backbone_help)


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-per-folder N|FOLDER=N...`` and ``--val-fraction``."""
    parser.add_argument("--max-per-folder", nargs="+", default=None, metavar="N|FOLDER=N",
                        help="use at most N images per folder (seeded draw), or per folder name")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="held-out fraction per folder (default: the config's, else 0.15)")


def add_epochs_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--epochs", type=int, default=None, help=help)


def add_run_arguments(parser: argparse.ArgumentParser, seed_help: str, overwrite_help: str) -> None:
    """Add ``--seed``, ``--device``, ``--threads``, ``--no-progress`` and ``--overwrite``."""
    parser.add_argument("--seed", type=int, default=None, help=f"{seed_help} (default: the config's, else 0)")
    add_device_argument(parser)
    add_threads_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


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


@dataclass(frozen=True)
class TrainingArgs:
    """The shared training options, checked.

    Attributes:
        epochs: ``--epochs`` (``None``: the trainer's default).
        val_fraction: ``--val-fraction``, in [0, 1) (``None``: the config's or the trainer's default).
        max_per_folder: ``--max-per-folder`` parsed: one limit, limits by folder name, or ``None``.
        lr: ``--lr`` where the command has it (``None``: the trainer's default, or no such option).
    """

    epochs: int | None
    val_fraction: float | None
    max_per_folder: int | dict[str, int] | None
    lr: float | None = None


def check_training_args(args: argparse.Namespace) -> TrainingArgs:
    """Check ``--epochs``, ``--val-fraction``, ``--threads`` (and set torch's thread count), ``--lr`` (where the
    command has it) and ``--max-per-folder``, in this order; a bad value is a ``ValueError`` that names the option."""
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    if args.val_fraction is not None and not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    apply_threads(args.threads)
    lr = getattr(args, "lr", None)
    if lr is not None and lr <= 0:
        raise ValueError(f"--lr must be positive, got {lr}")
    return TrainingArgs(epochs=args.epochs, val_fraction=args.val_fraction,
                        max_per_folder=parse_max_per_folder(args.max_per_folder), lr=lr)


def given_or(value: T | None, default: T) -> T:
    """The command line's ``value`` when given, else ``default`` (the config's, or the trainer's)."""
    return default if value is None else value


def training_folders(args: argparse.Namespace, config_dirs: Sequence[str]) -> list[str]:
    """``--data``, else the config's ``data_dirs``; neither is a ``ValueError``."""
    folders = list(args.data or config_dirs)
    if not folders:
        raise ValueError("give the training folders: --data DIR... or a --config file with data_dirs")
    return folders

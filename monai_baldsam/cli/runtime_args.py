"""``--device`` and ``--threads`` of the commands that run torch, and applying ``--threads``."""

from __future__ import annotations

import argparse

__all__ = ["THREADS_HELP", "add_device_argument", "add_threads_argument", "check_threads", "apply_threads"]

THREADS_HELP = "CPU threads for torch"


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def add_threads_argument(parser: argparse.ArgumentParser, help: str = THREADS_HELP) -> None:
    parser.add_argument("--threads", type=int, default=None, help=help)


def check_threads(threads: int | None) -> None:
    """``ValueError`` for a ``--threads`` below 1 (``None``: torch's own count)."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")


def apply_threads(threads: int | None) -> None:
    """Check ``--threads`` and set torch's CPU thread count to it (``None`` leaves torch's own)."""
    check_threads(threads)
    if threads is not None:
        import torch  # imported here: keeps --help fast

        torch.set_num_threads(threads)

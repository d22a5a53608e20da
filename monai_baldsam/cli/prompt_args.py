"""Parsing of prompt options (``--box``, ``--fg``, ``--bg``) from the command line."""

from __future__ import annotations

import argparse

__all__ = ["parse_numbers", "add_prompt_arguments", "prompts_from_args"]


def parse_numbers(text: str, counts: tuple[int, ...], what: str) -> list[float]:
    """``"10,20,30"`` -> ``[10.0, 20.0, 30.0]``, requiring one of ``counts`` values."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if len(values) not in counts:
        raise argparse.ArgumentTypeError(
            f"{what} needs {' or '.join(str(c) for c in counts)} comma-separated numbers, got {len(values)} in {text!r}"
        )
    return values


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--box``, ``--fg`` and ``--bg`` in image coordinates (2D pixel x, y; 3D voxel i, j, k)."""
    parser.add_argument(
        "--box", type=lambda t: parse_numbers(t, (4, 5), "--box"), default=None,
        help="2D: X0,Y0,X1,Y1 in pixels; 3D: I0,J0,K,I1,J1 in voxels (a box on slice K)",
    )
    parser.add_argument("--fg", action="append", default=[], type=lambda t: parse_numbers(t, (2, 3), "--fg"),
                        help="foreground click X,Y (2D) or I,J,K (3D); repeat for more")
    parser.add_argument("--bg", action="append", default=[], type=lambda t: parse_numbers(t, (2, 3), "--bg"),
                        help="background click X,Y (2D) or I,J,K (3D); repeat for more")


def prompts_from_args(args: argparse.Namespace):  # -> UserPrompts (imported lazily: keeps --help fast)
    from monai_baldsam.transforms.prompts import UserPrompts

    return UserPrompts(box=args.box, foreground=args.fg, background=args.bg)

"""``baldsam monailabel-app``: print the folder of the MONAI Label app shipped in the package."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monailabel-app", help="print the path of the MONAI Label app (for monailabel start_server --app)",
        description="Prints the folder of the MONAI Label app inside the installed monai_baldsam package. Start a "
                    "server with: monailabel start_server --app \"$(baldsam monailabel-app)\" --studies DIR "
                    "[--conf models baldsam_ultrasound,baldsam_brain_mri]. The app needs the monailabel extra: "
                    "pip install \"monai_baldsam[monailabel]\" (with SAM2_BUILD_CUDA=0 on machines without CUDA).",
    )
    parser.add_argument("--check", action="store_true",
                        help="also check that monailabel is installed (exit status 2 with a message if not)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.monailabel import app_dir

    if args.check:
        import importlib.util

        if importlib.util.find_spec("monailabel") is None:
            raise ValueError("monailabel is not installed: pip install \"monai_baldsam[monailabel]\" "
                             "(SAM2_BUILD_CUDA=0 on machines without CUDA)")
    print(app_dir())
    return 0

"""``baldsam monailabel-app``: print the folder of the MONAI Label app shipped in the package, or copy the app to a work
folder of the user's own (``--copy-to DIR``), where ``monailabel start_server`` then writes its logs and models."""

from __future__ import annotations

import argparse
import importlib.util
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monailabel-app", help="print the path of the MONAI Label app (for monailabel start_server --app)",
        description="Prints the folder of the MONAI Label app inside the installed monai_baldsam package. Start a "
                    "server with: monailabel start_server --app \"$(baldsam monailabel-app)\" --studies DIR "
                    "--host 127.0.0.1 [--conf models baldsam_ultrasound,baldsam_brain_mri]. The app needs the "
                    "monailabel extra: pip install \"monai_baldsam[monailabel]\" (with SAM2_BUILD_CUDA=0 on machines "
                    "without CUDA). "
                    "monailabel start_server creates logs/, bin/, lib/ and model/ in the app folder: with "
                    "--copy-to DIR the app (main.py, which imports the installed package) is copied to a folder of "
                    "your own and that folder is printed instead, so they go there, not into the installed package.",
    )
    parser.add_argument("--check", action="store_true",
                        help="also check that monailabel is installed (exit status 2 with a message if not)")
    parser.add_argument("--copy-to", metavar="DIR", default=None,
                        help="copy the app to DIR (missing or empty; made atomically) and print DIR, the folder to "
                             "pass to monailabel start_server --app")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --copy-to: allow a non-empty DIR; only the app's files there are replaced (a "
                             "changed one is kept as <name>.bak-<time>), everything else is kept")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.monailabel import app_dir

    if args.check:
        if importlib.util.find_spec("monailabel") is None:
            raise ValueError("monailabel is not installed: pip install \"monai_baldsam[monailabel]\" "
                             "(SAM2_BUILD_CUDA=0 on machines without CUDA)")
    if args.overwrite and not args.copy_to:
        raise ValueError("--overwrite only applies to --copy-to DIR")
    if args.copy_to:
        from monai_baldsam.monailabel.workdir import copy_app

        copied = copy_app(args.copy_to, overwrite=args.overwrite)
        for backup in copied.backups:
            print(f"kept your changed app file as {backup}", file=sys.stderr)
        print(copied.path)
        return 0
    print(app_dir())
    return 0

"""Write the shipped bundles from the template, or check that they equal it.

    python -m monai_baldsam.bundle.generate            # (re)write configs/ and models/ of every bundle
    python -m monai_baldsam.bundle.generate --check    # exit 1, listing the differences, if a bundle drifted

The generator owns each bundle's ``configs/`` and ``models/`` (:data:`~.template.GENERATED_FILES`); ``docs/README.md``
and ``LICENSE`` are written by hand and only checked to exist. Every bundle is rendered before anything is written
(a head that fails its hash check stops the run with no file touched); each file is then replaced atomically (temp
file + rename) and only when its text changed, and files the template no longer writes (a copied ``models/head.pt``)
are removed from ``configs/`` and ``models/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from monai_baldsam.bundle.heads import GENERATE_COMMAND, resolve_bundle_head
from monai_baldsam.bundle.specs import SPECS, BundleSpec
from monai_baldsam.bundle.template import render_bundle
from monai_baldsam.bundles import BUNDLES_DIR
from monai_baldsam.io.atomic import atomic_write_text

__all__ = ["GENERATE_COMMAND", "HAND_WRITTEN", "OWNED_FOLDERS", "expected_bundles", "bundle_differences",
           "write_bundles", "main"]

#: per-bundle files written by hand (prose: data, measured results, licences), not by the template
HAND_WRITTEN = ("docs/README.md", "LICENSE")
#: the folders whose every file the template writes
OWNED_FOLDERS = ("configs", "models")


def expected_bundles(specs: Sequence[BundleSpec] = SPECS) -> dict[str, dict[str, str]]:
    """Bundle name -> (relative path -> text) of the generated files; each head is resolved through the registry and
    its file checked against its card before its hash is pinned."""
    return {spec.name: render_bundle(spec, resolve_bundle_head(spec.head, None)) for spec in specs}


def _files_under(root: Path, folders: Sequence[str]) -> set[str]:
    return {p.relative_to(root).as_posix() for folder in folders if (root / folder).is_dir()
            for p in (root / folder).rglob("*") if p.is_file() or p.is_symlink()}


def _ignored(relative: str) -> bool:
    return "__pycache__" in relative.split("/") or relative.split("/")[-1].startswith(".")


def bundle_differences(root: Path = BUNDLES_DIR, expected: dict[str, dict[str, str]] | None = None) -> list[str]:
    """What differs between the bundle folders under ``root`` and the template, one line each (empty: in sync)."""
    expected = expected_bundles() if expected is None else expected
    found: list[str] = []
    folders = {p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("baldsam_")}
    found += [f"{name}/: a bundle folder with no spec in monai_baldsam/bundle/specs.py" for name in
              sorted(folders - set(expected))]
    for name, files in expected.items():
        bundle = root / name
        if not bundle.is_dir():
            found.append(f"{name}/: missing")
            continue
        for relative, text in files.items():
            path = bundle / relative
            if not path.is_file():
                found.append(f"{name}/{relative}: missing")
            elif path.read_text(encoding="utf-8") != text:
                found.append(f"{name}/{relative}: differs from the template")
        found += [f"{name}/{relative}: missing (written by hand)" for relative in HAND_WRITTEN
                  if not (bundle / relative).is_file()]
        known = set(files) | set(HAND_WRITTEN)
        stray = {r for r in _files_under(bundle, ("", )) if not _ignored(r)} - known
        found += [f"{name}/{relative}: not part of the bundle" for relative in sorted(stray)]
    return found


def write_bundles(root: Path = BUNDLES_DIR, expected: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Write every generated file whose text changed and remove stale files from ``configs/`` and ``models/``;
    returns what changed (``wrote PATH`` / ``removed PATH``)."""
    expected = expected_bundles() if expected is None else expected
    changed: list[str] = []
    for name, files in expected.items():
        bundle = root / name
        for relative, text in files.items():
            path = bundle / relative
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                atomic_write_text(path, text, overwrite=True)
                changed.append(f"wrote {name}/{relative}")
        for relative in sorted(_files_under(bundle, OWNED_FOLDERS) - set(files)):
            if not _ignored(relative):
                (bundle / relative).unlink()
                changed.append(f"removed {name}/{relative}")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (1: ``--check`` found differences)."""
    parser = argparse.ArgumentParser(prog=GENERATE_COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a bundle differs")
    parser.add_argument("--root", type=Path, default=BUNDLES_DIR, help="the folder holding the bundle folders")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        raise SystemExit(f"{args.root} is not a folder: give --root the folder holding the baldsam_* bundles")
    expected = expected_bundles()
    if args.check:
        differences = bundle_differences(args.root, expected)
        for line in differences:
            print(line, file=sys.stderr)
        if differences:
            print(f"the bundles differ from the template: run `{GENERATE_COMMAND}`", file=sys.stderr)
        return 1 if differences else 0
    changed = write_bundles(args.root, expected)
    for line in changed:
        print(line)
    leftover = bundle_differences(args.root, expected)
    for line in leftover:
        print(f"left alone: {line}", file=sys.stderr)
    return 1 if leftover else 0


if __name__ == "__main__":
    sys.exit(main())

"""``--bundle NAME`` for the commands that take a model: the bundle's head (and backbone) replace ``--head``."""

from __future__ import annotations

import argparse

__all__ = ["add_bundle_argument", "apply_bundle"]


def add_bundle_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default=None,
                        help="use a shipped MONAI bundle's model (baldsam_ultrasound, baldsam_polyp, "
                             "baldsam_skin_lesion, baldsam_brain_mri; `baldsam bundles` lists them) instead of --head")


def apply_bundle(args: argparse.Namespace, default_head: str | None = None) -> None:
    """Set ``args.head`` (and ``args.backbone``) from ``args.bundle`` when given; else fill ``default_head`` in for a
    missing ``--head``. Giving both ``--bundle`` and ``--head`` is an error."""
    name = getattr(args, "bundle", None)
    if not name:
        if default_head is not None and getattr(args, "head", None) is None:
            args.head = default_head
        return
    if getattr(args, "head", None) is not None:
        raise ValueError("give either --bundle or --head, not both: a bundle brings its own head")
    from monai_baldsam.bundles import bundle_dir, bundle_metadata

    meta = bundle_metadata(name)["baldsam"]
    args.head = str(bundle_dir(name) / meta["head"])
    if getattr(args, "backbone", meta["backbone"]) not in (meta["backbone"], None):
        raise ValueError(f"bundle {name} runs on the {meta['backbone']} backbone, not --backbone {args.backbone}")
    if hasattr(args, "backbone"):
        args.backbone = meta["backbone"]

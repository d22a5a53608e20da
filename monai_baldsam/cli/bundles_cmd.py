"""``baldsam bundles``: list the shipped MONAI bundles, print a bundle's folder, check one, or run one of its workflows
through ``python -m monai.bundle run`` (``torchrun`` with the multi-GPU overlay when ``--nproc`` > 1)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "bundle_command", "verify_bundle", "WORKFLOWS"]

#: workflow name -> its config file; ``inference`` has no multi-GPU overlay.
WORKFLOWS = {"inference": "inference.json", "evaluate": "evaluate.json", "train": "train.json"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bundles", help="list, locate, check and run the shipped MONAI bundles",
        description="Without an action: list the bundles. `path NAME` prints a bundle's folder (its --bundle_root); "
                    "`verify NAME` validates metadata.json against the schema kept in the package (offline), checks "
                    "the shipped head the bundle names against its pinned SHA-256 and the inference workflow's "
                    "required properties; `run NAME WORKFLOW [ARGS...]` "
                    "runs `python -m monai.bundle run` with the bundle's config (ARGS are passed on, e.g. "
                    "--image x.png --box '[10,20,100,120]' --output_dir out).")
    actions = parser.add_subparsers(dest="bundles_action")
    path = actions.add_parser("path", help="print the folder of bundle NAME")
    path.add_argument("name")
    verify = actions.add_parser("verify", help="check bundle NAME (or --all)")
    verify.add_argument("name", nargs="?")
    verify.add_argument("--all", action="store_true", help="check every bundle")
    runner = actions.add_parser("run", help="run a workflow of bundle NAME with python -m monai.bundle run")
    runner.add_argument("name")
    runner.add_argument("workflow", choices=tuple(WORKFLOWS))
    runner.add_argument("--nproc", type=int, default=1,
                        help="processes (GPUs) for evaluate/train: >1 starts torchrun with the multi-GPU overlay")
    runner.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    runner.add_argument("extra", nargs=argparse.REMAINDER,
                        help="arguments passed to monai.bundle run (--nproc and --dry-run may also come here)")
    parser.set_defaults(func=run)


def bundle_command(name: str, workflow: str, extra: list[str], nproc: int = 1) -> list[str]:
    """The ``monai.bundle run`` command line for ``workflow`` of bundle ``name``."""
    from monai_baldsam.bundles import bundle_dir

    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown workflow {workflow!r}: choose among {', '.join(WORKFLOWS)}")
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    root = bundle_dir(name)
    configs = [str(root / "configs" / WORKFLOWS[workflow])]
    if nproc > 1:
        if workflow == "inference":
            raise ValueError("inference runs in one process: --nproc applies to evaluate and train")
        configs.append(str(root / "configs" / f"multi_gpu_{WORKFLOWS[workflow]}"))
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    else:
        head = [sys.executable]
    config_arg = configs[0] if len(configs) == 1 else json.dumps(configs)
    return [*head, "-m", "monai.bundle", "run", "--config_file", config_arg, "--bundle_root", str(root), *extra]


def _own_options(extra: list[str], nproc: int, dry_run: bool) -> tuple[list[str], int, bool]:
    """Take ``--nproc N`` and ``--dry-run`` out of the arguments after the workflow (argparse leaves options after
    positionals there); everything else, and everything after ``--``, goes to ``monai.bundle run``."""
    passed: list[str] = []
    tokens = iter(extra)
    for token in tokens:
        if token == "--":
            passed += list(tokens)
        elif token == "--dry-run":
            dry_run = True
        elif token == "--nproc" or token.startswith("--nproc="):
            value = token.split("=", 1)[1] if "=" in token else next(tokens, "")
            try:
                nproc = int(value)
            except ValueError:
                raise ValueError(f"--nproc needs a whole number, got {value!r}") from None
        else:
            passed.append(token)
    return passed, nproc, dry_run


def _sample_input(spatial_dims: int, folder: Path) -> tuple[str, str]:
    """A small synthetic image (a bright disc) and a box around it, to instantiate the inference workflow."""
    import numpy as np

    size = 64
    yy, xx = np.mgrid[:size, :size]
    disc = (((yy - 32) ** 2 + (xx - 32) ** 2) < 15 ** 2).astype(np.uint8) * 200 + 20
    if spatial_dims == 2:
        from PIL import Image

        path = folder / "sample.png"
        Image.fromarray(np.stack([disc] * 3, axis=-1)).save(path)
        return str(path), "[16,16,48,48]"
    import nibabel as nib

    path = folder / "sample.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([disc.astype(np.float32)] * 8, axis=-1), np.diag([1.0, 1.0, 3.0, 1.0])), path)
    return str(path), "[16,16,4,48,48]"


def verify_bundle(name: str, image: str | None = None, box: str | None = None) -> dict[str, Any]:
    """Validate metadata (offline schema), the head's SHA-256 and the inference workflow's required properties
    (instantiated on ``image`` with ``box``; default: a small synthetic image); raise ``ValueError`` naming what is
    wrong."""

    from monai.bundle import ConfigWorkflow, verify_metadata

    from monai_baldsam.bundle.heads import bundle_head
    from monai_baldsam.bundles import SCHEMA_FILE, bundle_dir, bundle_metadata

    root = bundle_dir(name)
    verify_metadata(meta_file=str(root / "configs" / "metadata.json"), filepath=str(SCHEMA_FILE))
    meta = bundle_metadata(name)["baldsam"]
    found = bundle_head(name).sha256  # the shipped head it names, refused unless its SHA-256 is the pinned one
    with tempfile.TemporaryDirectory() as folder:
        if image is None:
            image, box = _sample_input(int(meta["spatial_dims"]), Path(folder))
        workflow = ConfigWorkflow(config_file=str(root / "configs" / "inference.json"),
                                  meta_file=str(root / "configs" / "metadata.json"), workflow_type="infer",
                                  bundle_root=str(root), image=image, box=box, output_dir=str(Path(folder) / "out"))
        workflow.initialize()
        missing = workflow.check_properties()
    if missing:
        raise ValueError(f"bundle {root.name}: inference.json lacks the required properties {missing}")
    return {"bundle": root.name, "metadata": "valid", "head": meta["head"], "head_sha256": found,
            "inference_properties": "complete"}


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.bundles import bundle_metadata, list_bundles

    action = getattr(args, "bundles_action", None)
    if action is None:
        rows = []
        for name in list_bundles():
            meta = bundle_metadata(name)
            rows.append({"name": name, "spatial_dims": meta["baldsam"]["spatial_dims"],
                         "domain": meta["baldsam"]["domain"], "head": meta["baldsam"]["head"],
                         "version": meta["version"], "task": meta["task"]})
        print(json.dumps(rows, indent=2))
        return 0
    if action == "path":
        from monai_baldsam.bundles import bundle_dir

        print(bundle_dir(args.name))
        return 0
    if action == "verify":
        if bool(args.all) == bool(args.name):
            raise ValueError("give a bundle NAME or --all")
        names = list_bundles() if args.all else [args.name]
        print(json.dumps([verify_bundle(n) for n in names], indent=2))
        return 0
    extra, nproc, dry_run = _own_options(list(args.extra), args.nproc, args.dry_run)
    command = bundle_command(args.name, args.workflow, extra, nproc)
    if dry_run:
        print(" ".join(command))
        return 0
    return subprocess.call(command, cwd=str(Path.cwd()))

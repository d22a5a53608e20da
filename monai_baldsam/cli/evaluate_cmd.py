"""``baldsam evaluate``: simulate interactive sessions with click policies on a data set and write their metrics."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from monai_baldsam.cli.model_args import (
    add_backbone_arguments,
    add_bundle_argument,
    add_checkpoint_sha256_argument,
    add_head_argument,
    add_runtime_model_arguments,
    apply_bundle,
    resolve_auto_head,
    segmenter_from_args,
)
from monai_baldsam.cli.runtime_args import add_device_argument, add_threads_argument, apply_threads, check_threads

__all__ = ["add_parser", "run", "run_volumes", "click_model_from_args"]

def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="simulate clicks with one or more policies and report NoC, mIoU@k and AUC",
        description="Each session starts from the same first prompt for every policy (the ground truth's box, or the "
                    "click farthest from its boundary); the policy then places clicks 2..N, each fed back with the "
                    "previous mask. Each image is encoded once and shared by every policy. Writes metrics.json, "
                    "curves.csv and iou_vs_clicks.png (into OUTDIR/<policy>/ when several policies are given).",
    )
    parser.add_argument("--data", required=True,
                        help="a folder with images/ and masks/ (matching stems; NIfTI volumes or DICOM series folders are "
                             "evaluated as volumes: Dice per click) or a MONAI datalist JSON")
    parser.add_argument("--datalist-key", default=None,
                        help="section of the datalist to read (default: the first of testing, validation, training)")
    parser.add_argument("--policy", action="append", required=True,
                        help="click policy (oracle, random_error, random, bald, entropy, one_shot, ...); repeat or "
                             "comma-separate for several")
    parser.add_argument("--first", required=True, choices=("box", "click"),
                        help="first prompt: the ground-truth box, or the click farthest from the mask boundary")
    parser.add_argument("--box-jitter", type=float, default=0.0,
                        help="move each box side by up to this fraction of the box size (seeded; default 0)")
    parser.add_argument("--box-slice", default="largest", choices=("largest", "central"),
                        help="volumes only: the first box is on the slice with the largest object area (default) or "
                             "on the central slice of the object's slice range")
    parser.add_argument("--clicks", type=int, default=20,
                        help="interactions per image N, the first prompt included (default 20)")
    parser.add_argument("--out", required=True, help="output folder (must be new or empty unless --overwrite)")
    add_backbone_arguments(parser, checkpoint_sha256=False)
    add_runtime_model_arguments(parser)
    add_head_argument(parser, "decodes every interaction; needed by the bald and entropy policies")
    add_checkpoint_sha256_argument(parser)
    add_bundle_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    add_device_argument(parser)
    add_threads_argument(parser, "CPU threads for torch (default: torch's own; 1 is often fastest on a busy machine)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first K images only")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.set_defaults(func=run)


def click_model_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~monai_baldsam.interaction.model.ClickModel` the options ask for: the Bayesian head with
    ``--head`` (with the EPIG map when the ``epig`` policy is asked for), else the plain SAM decoder."""
    if args.head:
        from monai_baldsam.head.click_model import load_head_click_model
        from monai_baldsam.head.registry import resolve_head
        from monai_baldsam.interaction.policies import parse_policy_names

        found = resolve_head(args.head)
        if args.decoder is not None:
            raise ValueError("--decoder does not apply with --head: a head runs on the decoder it was trained on")
        return load_head_click_model(found.path, args.backbone, args.checkpoint, args.checkpoint_sha256,
                                     head_sha256=found.sha256, device=args.device, seed=args.seed,
                                     encoder=args.encoder, epig="epig" in parse_policy_names(args.policy))
    from monai_baldsam.interaction.model import load_click_model

    decoder = args.decoder or ("original" if args.checkpoint else "default")
    return load_click_model(args.backbone, args.checkpoint, args.checkpoint_sha256, args.device, decoder=decoder,
                            encoder=args.encoder)


def _check_args(args: argparse.Namespace) -> None:
    if args.clicks < 1:
        raise ValueError(f"--clicks must be at least 1 (the first prompt counts as interaction 1), got {args.clicks}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.box_jitter and args.first != "box":
        raise ValueError("--box-jitter applies to --first box only")
    check_threads(args.threads)
    if not 0.0 <= args.box_jitter <= 1.0:
        raise ValueError(f"--box-jitter is a fraction of the box size in [0, 1], got {args.box_jitter}")


def run_volumes(args: argparse.Namespace, start: float) -> int:
    """``--data`` holds volumes: box on the largest (or central) object slice, propagation, then volume clicks (Dice
    per click)."""
    from tqdm.auto import tqdm

    from monai_baldsam.evaluation.report import check_output_dir, write_volume_report
    from monai_baldsam.evaluation.volumes import VOLUME_POLICIES, evaluate_volumes, summarize_volume_results
    from monai_baldsam.interaction.policies import parse_policy_names
    from monai_baldsam.io.cases import discover_volume_cases

    policies = parse_policy_names(args.policy)
    unsupported = [p for p in policies if p not in VOLUME_POLICIES]
    if unsupported:
        raise ValueError(f"policy {unsupported[0]!r} is not available on volumes: choose among "
                         f"{', '.join(VOLUME_POLICIES)}")
    if args.first != "box":
        raise ValueError("on volumes the first prompt is a box on one object slice (--box-slice): use --first box")
    if "bald" in policies and not args.head:
        raise ValueError("the bald policy needs a Bayesian head: leave --head at auto (general_v2 with the default "
                         "model) or name one (e.g. --head general)")
    out = check_output_dir(args.out, args.overwrite)
    cases = discover_volume_cases(args.data, args.limit)
    segmenter = segmenter_from_args(args)
    results = evaluate_volumes(cases, segmenter, policies, args.clicks, args.seed,
                               progress=None if args.no_progress else lambda c: tqdm(c, desc="volumes", unit="volume"),
                               box_on=args.box_slice)
    meta = {"data": str(Path(args.data).expanduser().resolve()), "head": args.head, "backbone": args.backbone,
            "decoder": segmenter.predictor.backbone.decoder_name,
            "first": f"box on the {args.box_slice} ground-truth slice, then propagation", "seed": args.seed,
            "metric": "Dice over the whole volume after every interaction"}
    report = write_volume_report(summarize_volume_results(results), out, meta, overwrite=args.overwrite)
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.evaluation.report import check_output_dir, write_runs
    from monai_baldsam.evaluation.runner import evaluate
    from monai_baldsam.interaction.policies import parse_policy_names
    from monai_baldsam.io.cases import discover_cases, is_volume_folder, validate_masks

    start = time.perf_counter()
    apply_bundle(args)
    _check_args(args)
    apply_threads(args.threads)
    volumes = is_volume_folder(args.data)
    resolve_auto_head(args)
    if volumes:
        return run_volumes(args, start)
    if args.box_slice != "largest":
        raise ValueError(f"--box-slice {args.box_slice} applies to folders of volumes only; {args.data} holds 2D images")
    policies = parse_policy_names(args.policy)
    out = check_output_dir(args.out, args.overwrite)
    cases = discover_cases(args.data, args.datalist_key, args.limit)  # validate everything before loading the model
    validate_masks(cases)
    model = click_model_from_args(args)
    runs = evaluate(cases, model, policies, [args.first], args.clicks, args.seed, args.box_jitter,
                    progress=not args.no_progress)
    meta = {"backbone": args.backbone, "checkpoint": args.checkpoint, "head": args.head, "model": model.signature,
            "device": str(args.device), "data": str(Path(args.data).expanduser().resolve()), "limit": args.limit,
            "datalist_key": args.datalist_key}
    report = write_runs(runs, out, meta, overwrite=args.overwrite)
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0

"""``baldsam suggest``: propose the next click (BALD) for an image or volume and its current prompts."""

from __future__ import annotations

import argparse
import json
import time

from monai_baldsam.cli.input_args import add_image_argument, add_volume_arguments, load_image_input, window_from_args
from monai_baldsam.cli.model_args import (
    AUTO_HEAD,
    add_backbone_arguments,
    add_bundle_argument,
    add_runtime_model_arguments,
    apply_bundle,
    resolve_bald_head,
    segmenter_from_args,
)
from monai_baldsam.cli.prompt_args import add_prompt_arguments, prompts_from_args
from monai_baldsam.cli.runtime_args import add_device_argument

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest", help="propose the most informative next click (BALD) for the current prompts",
        description="Runs the Bayesian prediction head on the current prompts and prints JSON with the proposed "
                    "click (2D pixel x, y; 3D voxel i, j, k), its BALD score (mutual information between the label "
                    "and the head's weights, averaged over the click's neighbourhood) and the predicted foreground "
                    "probability there. On a volume the prompts are propagated first and every segmented slice plus "
                    "the slice past each end is scored. Answer the click as --fg or --bg on the next call.",
    )
    add_image_argument(parser)
    add_prompt_arguments(parser)
    parser.add_argument("--head", default=AUTO_HEAD,
                        help="prediction head: auto (default: general_v2 with the default model, the head segment "
                             "runs; general with --decoder or --checkpoint), general, ultrasound|busi, polyp|kvasir, "
                             "skin|ph2, brain_mri|brats, general_v2, or a head file")
    add_bundle_argument(parser)
    parser.add_argument("--uncertainty-out", default=None,
                        help="write the mutual-information map in bits (0..1): .png for 2D, .nii/.nii.gz for 3D (the "
                             "input's geometry)")
    parser.add_argument("--mask-out", default=None, help="also write the current mask (.png for 2D, .nii/.nii.gz)")
    parser.add_argument("--footprint", type=float, default=None,
                        help="neighbourhood half-width as a fraction of the image's shorter side (default: the bald "
                             "policy's; 0 = the single most uncertain pixel)")
    parser.add_argument("--gate", type=float, default=None,
                        help="candidates must reach this fraction of the highest MI (default: the bald policy's)")
    add_backbone_arguments(parser, "backbone the head was trained on (lite_medsam)", checkpoint_sha256=False)
    add_runtime_model_arguments(parser)
    add_volume_arguments(parser)
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.io import write_mask, write_probability_map
    from monai_baldsam.io.atomic import check_output_path
    from monai_baldsam.suggestion import BITS_PER_NAT, suggest_2d, suggest_volume

    start = time.perf_counter()
    apply_bundle(args)
    resolve_bald_head(args)
    if args.footprint is not None and not 0.0 <= args.footprint < 0.5:
        raise ValueError(f"--footprint is a fraction of the image's shorter side in [0, 0.5), got {args.footprint}")
    if args.gate is not None and not 0.0 <= args.gate <= 1.0:
        raise ValueError(f"--gate is a fraction of the highest MI in [0, 1], got {args.gate}")
    source = load_image_input(args)
    image, is_volume = source.image, source.is_volume
    prompts = source.checked_prompts(prompts_from_args(args))  # checked once, before loading the model
    inputs = source.inputs
    maps_out = check_output_path(args.uncertainty_out, inputs, (), args.overwrite) if args.uncertainty_out else None
    protected = (maps_out,) if maps_out is not None else ()
    mask_out = check_output_path(args.mask_out, inputs, protected, args.overwrite) if args.mask_out else None
    segmenter = segmenter_from_args(args, window_from_args(args), source.segmenter_axis)
    if is_volume:
        from tqdm.auto import tqdm

        suggestion = suggest_volume(segmenter, image, prompts, args.footprint, args.gate,
                                    progress=lambda s: tqdm(s, desc="BALD over slices", unit="slice"))
    else:
        suggestion = suggest_2d(segmenter, image, prompts, args.footprint, args.gate)
    report = {"image": str(args.image), "shape": list(image.shape[1:]), "head": args.head,
              "suggestion": suggestion.to_dict()}
    if maps_out is not None:
        bits = (suggestion.maps["mutual_information"] * BITS_PER_NAT).clip(0.0, 1.0)
        report["uncertainty"] = str(write_probability_map(bits[None], image, maps_out, overwrite=args.overwrite))
    if mask_out is not None:
        report["mask"] = str(write_mask(suggestion.maps["mask"][None], image, mask_out, overwrite=args.overwrite,
                                        protected=protected))
    if suggestion.timings:
        report["timings"] = dict(suggestion.timings)
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0

"""``baldsam suggest``: propose the next click (BALD) for an image or volume and its current prompts."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from monai_baldsam.cli.model_args import add_bundle_argument, apply_bundle
from monai_baldsam.cli.prompt_args import add_prompt_arguments, prompts_from_args

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
    parser.add_argument("image", help="input image: .png/.jpg, .nii/.nii.gz, .dcm or a DICOM series folder")
    add_prompt_arguments(parser)
    parser.add_argument("--head", default=None,
                        help="prediction head: general (default), ultrasound|busi, polyp|kvasir, skin|ph2, or a file")
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
    parser.add_argument("--backbone", default="lite_medsam", help="backbone the head was trained on (lite_medsam)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file of the backbone")
    parser.add_argument("--window", default="auto",
                        help="intensity window: auto, minmax, percentile, ct or a CT preset (soft_tissue, lung, bone, ...)")
    parser.add_argument("--channel", type=int, default=None, help="channel of a multi-channel (4D) volume")
    parser.add_argument("--axis", type=int, default=None, choices=(0, 1, 2),
                        help="slicing axis of a volume (default: the through-plane axis)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.io import load_image, write_mask, write_probability_map
    from monai_baldsam.io.atomic import check_output_path
    from monai_baldsam.segmentation import Segmenter, to_slice_prompts
    from monai_baldsam.suggestion import BITS_PER_NAT, suggest_2d, suggest_volume
    from monai_baldsam.transforms.intensity import WindowIntensity
    from monai_baldsam.volume.geometry import resolve_axis

    start = time.perf_counter()
    apply_bundle(args, default_head="general")  # registry.DEFAULT_HEAD; not imported: keeps --help fast
    if args.footprint is not None and not 0.0 <= args.footprint < 0.5:
        raise ValueError(f"--footprint is a fraction of the image's shorter side in [0, 0.5), got {args.footprint}")
    if args.gate is not None and not 0.0 <= args.gate <= 1.0:
        raise ValueError(f"--gate is a fraction of the highest MI in [0, 1], got {args.gate}")
    prompts = prompts_from_args(args)
    image = load_image(args.image, channel=args.channel)
    is_volume = image.ndim == 4
    axis = resolve_axis(args.axis, image.affine) if is_volume else 2
    to_slice_prompts(prompts, image.shape[1:], axis)  # validate before loading the model
    inputs = [str(Path(args.image).expanduser())]
    maps_out = check_output_path(args.uncertainty_out, inputs, (), args.overwrite) if args.uncertainty_out else None
    protected = (maps_out,) if maps_out is not None else ()
    mask_out = check_output_path(args.mask_out, inputs, protected, args.overwrite) if args.mask_out else None
    window = None if args.window == "auto" else WindowIntensity(args.window)
    segmenter = Segmenter(args.backbone, args.checkpoint, device=args.device, window=window,
                          axis=axis if is_volume else args.axis, head=args.head)
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
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0

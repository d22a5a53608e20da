"""``baldsam segment``: segment an image or volume from a box and clicks and write the mask (and an overlay)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from monai_baldsam.cli.prompt_args import add_prompt_arguments, prompts_from_args

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment an image from a box and/or clicks",
        description="Segment a 2D picture (PNG/JPG), a DICOM file or series folder, or a NIfTI volume with SAM. "
                    "2D coordinates are pixel (x, y) of the picture; 3D coordinates are voxel (i, j, k).",
    )
    parser.add_argument("image", help="input image: .png/.jpg, .nii/.nii.gz, .dcm or a DICOM series folder")
    parser.add_argument("--out", required=True, help="mask to write: .png (2D) or .nii/.nii.gz")
    add_prompt_arguments(parser)
    parser.add_argument("--overlay", default=None, help="also write a PNG of the (prompted) slice with the mask")
    parser.add_argument("--backbone", default="lite_medsam", help="lite_medsam (default), vit_b, vit_l or vit_h")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file of the backbone")
    parser.add_argument("--checkpoint-sha256", default=None, help="expected SHA-256 of a fine-tuned --checkpoint")
    parser.add_argument("--download", action="store_true", help="download the official SAM checkpoint if missing")
    parser.add_argument("--window", default="auto",
                        help="intensity window: auto, minmax, percentile, ct or a CT preset (soft_tissue, lung, bone, ...)")
    parser.add_argument("--channel", type=int, default=None, help="channel of a multi-channel (4D) volume")
    parser.add_argument("--axis", type=int, default=2, choices=(0, 1, 2), help="slicing axis of a volume")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.io import load_image, save_overlay_png, write_mask
    from monai_baldsam.io.atomic import check_output_path
    from monai_baldsam.segmentation import Segmenter, to_slice_prompts
    from monai_baldsam.transforms.intensity import WindowIntensity
    from monai_baldsam.transforms.slicing import extract_slice

    start = time.perf_counter()
    prompts = prompts_from_args(args)
    image = load_image(args.image, channel=args.channel)
    slice_prompts = to_slice_prompts(prompts, image.shape[1:], args.axis)  # validate before loading the model
    inputs = [str(Path(args.image).expanduser())]
    out = check_output_path(args.out, inputs, (), args.overwrite)
    overlay = check_output_path(args.overlay, inputs, (out,), args.overwrite) if args.overlay else None
    window = None if args.window == "auto" else WindowIntensity(args.window)
    segmenter = Segmenter(args.backbone, args.checkpoint, args.checkpoint_sha256, args.device, window, args.axis,
                          allow_download=args.download)
    label = segmenter(image, prompts)
    written = write_mask(label, image, out, overwrite=args.overwrite)
    report = {"image": str(args.image), "shape": list(image.shape[1:]), "backbone": segmenter.predictor.backbone.signature,
              "mask": str(written), "foreground_voxels": int(label.sum()), "slices": sorted(slice_prompts)}
    if overlay is not None:
        index = min(slice_prompts)
        prompt = slice_prompts[index]
        windowed, mask_2d = segmenter.windowed(image), label
        if image.ndim == 4:
            windowed = extract_slice(windowed, args.axis, index)
            mask_2d = extract_slice(label, args.axis, index)
        report["overlay"] = str(save_overlay_png(
            windowed, mask_2d, overlay, points_xy=prompt.points_xy, point_labels=prompt.labels,
            box_xyxy=prompt.box_xyxy, overwrite=args.overwrite, intensity_range=(0.0, 1.0)))
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0

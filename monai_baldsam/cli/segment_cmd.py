"""``baldsam segment``: segment an image or volume from a box and clicks and write the mask (and an overlay).

On a volume the result propagates from the prompted slice(s) through the object (``--no-propagate``: the prompted
slices only); for a DICOM series input ``--seg-out`` also writes a DICOM SEG. The JSON report carries UncertainSAM's
predicted IoU and uncertainty gaps of each prompted slice's mask (``--usam``, see :mod:`monai_baldsam.usam`).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from monai_baldsam.cli.input_args import add_image_argument, add_volume_arguments, load_image_input, window_from_args
from monai_baldsam.cli.model_args import (
    add_backbone_arguments,
    add_bundle_argument,
    add_head_argument,
    add_runtime_model_arguments,
    apply_bundle,
    resolve_auto_head,
    segmenter_from_args,
)
from monai_baldsam.cli.prompt_args import add_prompt_arguments, prompts_from_args
from monai_baldsam.cli.runtime_args import add_device_argument

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from monai.data import MetaTensor

    from monai_baldsam.segmentation import Segmenter
    from monai_baldsam.transforms.prompts import UserPrompts
    from monai_baldsam.volume.session import PropagationRun, VolumeSession

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment an image from a box and/or clicks",
        description="Segment a 2D picture (PNG/JPG), a DICOM file or series folder, or a NIfTI volume with SAM. "
                    "2D coordinates are pixel (x, y) of the picture; 3D coordinates are voxel (i, j, k).",
    )
    add_image_argument(parser)
    parser.add_argument("--out", required=True, help="mask to write: .png (2D) or .nii/.nii.gz")
    parser.add_argument("--seg-out", default=None,
                        help="also write a DICOM SEG (.dcm) of the mask; only for a DICOM series folder input")
    add_prompt_arguments(parser)
    parser.add_argument("--overlay", default=None, help="also write a PNG of the (prompted) slice with the mask")
    add_backbone_arguments(parser)
    add_runtime_model_arguments(parser)
    add_bundle_argument(parser)
    add_head_argument(parser, "decodes the prompted slices; propagation to other slices keeps SAM's box prompts")
    parser.add_argument("--usam", default="auto",
                        help="UncertainSAM heads that add each prompted slice's predicted IoU and uncertainty gaps to "
                             "the report (a shipped name, e.g. general, or a heads file); auto (default): the shipped "
                             "heads when the backbone is lite_medsam; none: no quality")
    parser.add_argument("--download", action="store_true", help="download the official SAM checkpoint if missing")
    add_volume_arguments(parser, axis_help="slicing axis of a volume (default: the through-plane axis, i.e. the "
                                           "largest voxel size; ties -> 2)")
    parser.add_argument("--propagate", action=argparse.BooleanOptionalAction, default=None,
                        help="propagate from the prompted slice(s) through the object (default on volumes); "
                             "--no-propagate segments only the prompted slice(s)")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def _check_volume_options(image: MetaTensor, propagate: bool | None, seg_out: str | None) -> bool:
    """Whether to propagate; ``ValueError`` for options that need a 3D volume (or a DICOM series) on other input."""
    from monai_baldsam.volume.dicom_seg import require_dicom_series, series_sources

    is_volume = image.ndim == 4
    if propagate and not is_volume:
        raise ValueError(
            f"--propagate needs a 3D volume, but {image.meta.get('filename_or_obj', 'the input')} is a 2D image "
            f"(shape {tuple(image.shape[1:])}): drop --propagate"
        )
    if seg_out is not None:
        require_dicom_series(image, what="--seg-out (DICOM SEG)")
        series_sources(image)  # the files still match the volume: checked before any model runs
    return is_volume if propagate is None else bool(propagate)


def _usam_name(value: str, backbone: str) -> str | None:
    """The UncertainSAM heads to use: ``auto`` -> the shipped ``general`` heads for LiteMedSAM (none otherwise)."""
    if value == "none":
        return None
    if value == "auto":
        return "general" if backbone == "lite_medsam" else None
    return value


def _usam_for_clicks(usam: str | None, asked: str, segmenter: Segmenter, prompts: UserPrompts
                     ) -> tuple[str | None, str | None]:
    """``(heads, note)``: the shipped UncertainSAM heads read the original decoder's tokens, so clicks decoded by a
    click-trained decoder (alone, or under a head trained on it such as ``general_v2``) get no quality with
    ``--usam auto`` (a note says why) and are refused with named heads."""
    clicks = bool(len(prompts.foreground) or len(prompts.background))
    backbone = segmenter.predictor.backbone
    if usam is None or not clicks or backbone.click_mask_decoder is None:
        return usam, None
    if asked == "auto":
        return None, (f"no UncertainSAM quality: its heads judge {backbone.name}'s original decoder, and these clicks "
                      f"are decoded by {backbone.decoder_name}; add --head general for a judged click mask")
    raise ValueError(f"UncertainSAM heads {asked} judge {backbone.name}'s original decoder, not "
                     f"{backbone.decoder_name}, which decodes these clicks: use --usam none, or --head general")


def _propagation_report(session: VolumeSession, runs: list[PropagationRun]) -> dict[str, Any]:
    covered = session.slice_range()
    return {
        "axis": session.axis,
        "slices": None if covered is None else list(covered),
        "runs": [{"from": run.anchor, "direction": run.direction, "segmented": len(run.slices),
                  "stopped_at": run.stop_index, "reason": run.reason.value} for run in runs],
    }


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.io import save_overlay_png, write_mask
    from monai_baldsam.io.atomic import check_output_path
    from monai_baldsam.io.formats import full_suffix
    from monai_baldsam.transforms.slicing import extract_slice
    from monai_baldsam.volume.dicom_seg import SEG_SUFFIXES, write_dicom_seg

    start = time.perf_counter()
    apply_bundle(args)
    source = load_image_input(args)
    image, axis = source.image, source.axis
    resolve_auto_head(args)
    propagate = _check_volume_options(image, args.propagate, args.seg_out)
    prompts = source.checked_prompts(prompts_from_args(args))  # checked once, before loading the model
    inputs = source.inputs
    out = check_output_path(args.out, inputs, (), args.overwrite)
    seg_out = check_output_path(args.seg_out, inputs, (out,), args.overwrite) if args.seg_out else None
    if seg_out is not None and full_suffix(seg_out) not in SEG_SUFFIXES:
        raise ValueError(f"--seg-out must be a .dcm file, got {seg_out.name!r}")
    protected = tuple(p for p in (out, seg_out) if p is not None)
    overlay = check_output_path(args.overlay, inputs, protected, args.overwrite) if args.overlay else None
    window = window_from_args(args)
    usam = _usam_name(args.usam, args.backbone)
    if usam is not None:
        from monai_baldsam.usam import resolve_usam

        resolve_usam(usam)  # a missing heads file is an error before any model runs
    segmenter = segmenter_from_args(args, window, source.segmenter_axis, allow_download=args.download)
    segmenter.check_prompts(prompts)  # clicks the model would ignore are refused before anything is written
    usam, usam_note = _usam_for_clicks(usam, args.usam, segmenter, prompts)
    propagation, quality = None, None
    # the quality of each prompted slice comes from the decode that segments it (one decoder call per slice)
    if propagate:
        session = segmenter.session(image, usam=usam)
        if session.predictor.device.type == "cuda":
            session.encode_all()  # batched encoding pays on a GPU; on CPU slices are encoded only as reached
        runs = session.update(prompts, propagate=True)
        label = session.label()
        propagation = _propagation_report(session, runs)
        quality = session.anchor_quality() if usam is not None else None
    elif usam is not None:
        assessed = segmenter.assess(image, prompts, usam)
        label = segmenter.label_of(image, {index: found.output for index, found in assessed.items()})
        quality = {index: found.quality for index, found in assessed.items()}
    else:
        label = segmenter(image, prompts)
    written = write_mask(label, image, out, overwrite=args.overwrite)
    report = {"image": str(args.image), "shape": list(image.shape[1:]), "backbone": segmenter.predictor.backbone.signature,
              "head": args.head,
              "mask": str(written), "foreground_voxels": int(label.sum()), "slices": sorted(prompts.slices)}
    if image.ndim == 4:
        report["axis"] = axis
    if usam_note is not None:
        report["quality_note"] = usam_note
    if quality is not None:
        report["usam"] = usam
        report["quality"] = [{"slice": index, **quality[index].to_dict()} for index in sorted(quality)]
    if propagation is not None:
        report["propagation"] = propagation
    if seg_out is not None:
        report["seg"] = str(write_dicom_seg(label, image, seg_out, overwrite=args.overwrite, protected=(out,),
                                            model_name=segmenter.predictor.backbone.signature))
    if overlay is not None:
        index = min(prompts.slices)
        prompt = prompts.slices[index]
        windowed, mask_2d = segmenter.windowed(image), label
        if image.ndim == 4:
            windowed = extract_slice(windowed, axis, index)
            mask_2d = extract_slice(label, axis, index)
        report["overlay"] = str(save_overlay_png(
            windowed, mask_2d, overlay, points_xy=prompt.points_xy, point_labels=prompt.labels,
            box_xyxy=prompt.box_xyxy, overwrite=args.overwrite, intensity_range=(0.0, 1.0)))
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=2))
    return 0

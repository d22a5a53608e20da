"""Small structures on training volumes: does the propagation stop rule or the click-trained decoder fix them?

On ``--volumes`` volumes of ``train/hippocampus`` (every ``--step``-th, never dev), one box on the central slice of
the truth, then propagation (LiteMedSAM, no head): the mean Dice over the volume, the IoU on the box's slice and the
slices by which the label's range misses the truth's, for

* the stop rule's default and variants (one threshold changed each), with LiteMedSAM's own decoder;
* the default stop rule with the click-trained decoder (``clicks_v1``) answering the box prompts too (box-only
  prompts go to LiteMedSAM's own decoder in the package).

Writes ``benchmarks/results/small_structure_train[_<variant>]_cpu.json``.

    python -m benchmarks.small_structure_train --config configs/benchmarks/small_structure_train.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.volumes import first_box, range_error, slice_range
from monai_baldsam.io import load_image, load_mask
from monai_baldsam.io.cases import discover_volume_cases
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.volume.propagation import PropagationConfig
from monai_baldsam.volume.stopping import StopRule

VARIANTS = {"default": {}, "min_iou_0.7": {"min_iou": 0.7}, "min_iou_0.8": {"min_iou": 0.8},
            "appearance_0.0": {"min_appearance_margin": 0.0}, "appearance_0.1": {"min_appearance_margin": 0.1},
            "area_drop_0.5": {"min_area_ratio": 0.5}}
CLICK_DECODER = "clicks_v1_for_boxes"


def _session_scores(segmenter: Segmenter, image: Any, truth: np.ndarray, rule: StopRule) -> dict[str, Any]:
    session = segmenter.session(image, PropagationConfig(stop=rule))
    box = first_box(truth, session.axis, on="central")
    runs = session.update(box, propagate=True)
    label = session.label()[0].numpy().astype(bool)
    axis, index = session.axis, int(box.box[2])
    on_truth, on_label = np.moveaxis(truth, axis, 0)[index], np.moveaxis(label, axis, 0)[index]
    return {"dice": float(2 * (label & truth).sum() / max(1, label.sum() + truth.sum())),
            "box_slice_iou": float((on_truth & on_label).sum() / max(1, (on_truth | on_label).sum())),
            "slices_missed": range_error(slice_range(label, axis), slice_range(truth, axis)),
            "stops": [str(run.reason.value) for run in runs or []]}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    stops: dict[str, int] = {}
    for row in rows:
        for reason in row["stops"]:
            stops[reason] = stops.get(reason, 0) + 1
    return {"mean_dice": round(float(np.mean([r["dice"] for r in rows])), 4),
            "mean_box_slice_iou": round(float(np.mean([r["box_slice_iou"] for r in rows])), 4),
            "median_slices_missed": float(np.median([r["slices_missed"] for r in rows])),
            "within_one_slice": round(float(np.mean([r["slices_missed"] <= 1 for r in rows])), 3), "stops": stops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="hippocampus", help="a train/ folder of volumes")
    parser.add_argument("--volumes", type=int, default=12)
    parser.add_argument("--step", type=int, default=15, help="take every N-th training volume")
    parser.add_argument("--threads", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    cases = discover_volume_cases(domain_dir(args.domain, "train"))[::args.step][:args.volumes]
    segmenter = Segmenter(encoder="auto")  # loads clicks_v1 beside LiteMedSAM's own decoder
    backbone = segmenter.predictor.backbone
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in [*VARIANTS, CLICK_DECODER]}
    for case in tqdm(cases, desc=args.domain, unit="volume"):
        image = load_image(case.image)
        truth = load_mask(case.mask, reference=image)[0].numpy().astype(bool)
        for name, change in VARIANTS.items():
            rows[name].append({"volume": case.name, **_session_scores(segmenter, image, truth,
                                                                      replace(StopRule(), **change))})
        backbone.click_decoder_for_boxes = True  # clicks_v1 answers the box prompts too
        try:
            rows[CLICK_DECODER].append({"volume": case.name, **_session_scores(segmenter, image, truth, StopRule())})
        finally:
            backbone.click_decoder_for_boxes = False
    record = {"benchmark": "small_structure_train", "domain": args.domain, "split": "train",
              "volumes": [c.name for c in cases], "variants": {**VARIANTS, CLICK_DECODER: "default stop rule"},
              "summary": {name: _summary(r) for name, r in rows.items()}, "rows": rows,
              "targets_dev": {"dice_after_box": 0.75, "note": "issue 18's hippocampus target is on dev"},
              **provenance("cpu")}
    out = write_json(result_path("small_structure_train", "cpu", args.variant), record, args.allow_dirty)
    for name, summary in record["summary"].items():
        print(f"{name:22s} {summary}")
    print(out)


if __name__ == "__main__":
    main()

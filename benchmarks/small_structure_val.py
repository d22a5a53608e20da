"""Small structures on a decoder's validation volumes: which decoder and stop rule segment them after one box?

The volumes are the validation split of a decoder training configuration (``--decoder-config``, e.g.
``configs/decoder_hippocampus_v1.json``): volumes its decoder never trained on, and never dev. On each, one box on
the truth's central slice, then propagation (LiteMedSAM's encoder, no head), for every decoder of ``--decoders``
and stop rule of ``--rules`` (the variants of :mod:`benchmarks.small_structure_train`): the mean Dice over the
volume, the IoU on the box's slice and the slices by which the label's range misses the truth's. A decoder is a
shipped name (``original``, ``clicks_v1``, ``hippocampus_v1``) or a decoder file; ``NAME+boxes`` makes a click
decoder answer box prompts too. The stop rule for a decoder is chosen here, on validation volumes, never on dev.

Writes ``benchmarks/results/small_structure_val[_<variant>]_cpu.json``.

    python -m benchmarks.small_structure_val --config configs/benchmarks/small_structure_val.json
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from benchmarks.small_structure_train import VARIANTS, _session_scores, _summary
from monai_baldsam.decoder.config import load_decoder_config
from monai_baldsam.head.train.data import split_cases
from monai_baldsam.head.train.volume_slices import VolumeSliceCase
from monai_baldsam.io import load_image, load_mask
from monai_baldsam.io.cases import VolumeCase, discover_volume_cases
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.volume.stopping import StopRule

BOXES_SUFFIX = "+boxes"
#: the stop rules measured: small_structure_train's variants, and the predicted-IoU and appearance checks turned off
#: (a decoder trained on the empty slices past the ends stops there with an empty mask)
RULES: dict[str, dict[str, float]] = {**VARIANTS, "min_iou_0.3": {"min_iou": 0.3}, "iou_off": {"min_iou": 0.0},
                                      "iou_off_appearance_off": {"min_iou": 0.0, "min_appearance_margin": -math.inf}}


def validation_volumes(decoder_config: str | Path) -> list[VolumeCase]:
    """The validation volumes of a decoder configuration's split (every volume folder of it, in folder order)."""
    _, data, _ = load_decoder_config(decoder_config)
    chosen: list[VolumeCase] = []
    for folder in data.folders:
        _, val = split_cases([folder], data.val_fraction, data.seed, data.max_images or None)
        names = {case.volume for _, case in val if isinstance(case, VolumeSliceCase)}
        chosen += [case for case in discover_volume_cases(folder) if case.name in names]
    if not chosen:
        raise ValueError(f"decoder config {decoder_config} has no validation volumes (no volume folder in 'data')")
    return chosen


def segmenter_for(decoder: str, cache: EmbeddingCache) -> Segmenter:
    """LiteMedSAM with ``decoder`` (``NAME+boxes``: the click decoder answers box prompts too), sharing ``cache``."""
    name = decoder.removesuffix(BOXES_SUFFIX)
    segmenter = Segmenter(decoder=name, encoder="auto", cache=cache)
    if decoder.endswith(BOXES_SUFFIX):
        backbone = segmenter.predictor.backbone
        if backbone.click_mask_decoder is None:
            raise ValueError(f"{decoder}: decoder {name!r} is the backbone's own; it answers boxes already")
        backbone.click_decoder_for_boxes = True
    return segmenter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder-config", default="configs/decoder_hippocampus_v1.json",
                        help="decoder training configuration whose validation volumes are measured")
    parser.add_argument("--decoders", default="original,clicks_v1+boxes,hippocampus_v1",
                        help="comma-separated decoders (shipped names or files; NAME+boxes: answers boxes too)")
    parser.add_argument("--rules", default=",".join(RULES), help=f"comma-separated stop rules of {list(RULES)}")
    parser.add_argument("--threads", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    rules = args.rules.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise SystemExit(f"unknown stop rules {unknown}: choose among {list(RULES)}")
    cases = validation_volumes(args.decoder_config)
    cache = EmbeddingCache()
    segmenters = {name: segmenter_for(name, cache) for name in args.decoders.split(",")}
    rows: dict[str, list[dict[str, Any]]] = {f"{d}/{r}": [] for d in segmenters for r in rules}
    for case in tqdm(cases, desc="validation volumes", unit="volume"):
        image = load_image(case.image)
        truth = load_mask(case.mask, reference=image)[0].numpy().astype(bool)
        for decoder, segmenter in segmenters.items():
            for rule in rules:
                scores = _session_scores(segmenter, image, truth, replace(StopRule(), **RULES[rule]))
                rows[f"{decoder}/{rule}"].append({"volume": case.name, **scores})
        cache.clear()  # one volume's slices at a time: every decoder shares its embeddings
    summary = {name: _summary(r) for name, r in rows.items()}
    record = {"benchmark": "small_structure_val", "decoder_config": args.decoder_config, "split": "validation",
              "volumes": [c.name for c in cases], "decoders": list(segmenters), "rules": {r: {k: str(v) for k, v in RULES[r].items()} for r in rules},
              "decoder_signatures": {d: s.predictor.backbone.signature for d, s in segmenters.items()},
              "summary": summary, "rows": rows,
              "best_by_decoder": {d: max((f"{d}/{r}" for r in rules), key=lambda k: summary[k]["mean_dice"])
                                  for d in segmenters},
              "targets_dev": {"dice_after_box": 0.75, "note": "issue 18's hippocampus target is on dev"},
              **provenance("cpu")}
    out = write_json(result_path("small_structure_val", "cpu", args.variant), record, args.allow_dirty)
    for name, entry in summary.items():
        print(f"{name:34s} dice {entry['mean_dice']:.3f} box-slice IoU {entry['mean_box_slice_iou']:.3f} "
              f"missed {entry['median_slices_missed']} within one {entry['within_one_slice']}")
    print(out)


if __name__ == "__main__":
    main()

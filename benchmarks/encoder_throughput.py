"""Image encoder throughput: the fp32 eager PyTorch baseline (batch 1) against the OpenVINO runtimes, in one process.

Each runtime encodes the same real dev slices (LiteMedSAM, 256 px); runs are interleaved (baseline, then each
runtime, repeated) so that other load on the machine hits them alike, and the median seconds per slice is kept.
Numerics: the largest embedding difference against the baseline and the box-mask IoU on the same slices.
Writes ``benchmarks/results/encoder_throughput[_<variant>]_cpu.json``.

    python -m benchmarks.encoder_throughput [--threads 2] [--repeats 3] [--variant LABEL]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from monai_baldsam.data_paths import data_root
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.encoder_runtime import make_encoder
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding

RUNTIMES = ("torch", "openvino-f32", "openvino-f16", "openvino-bf16")


def _slices(n_per_domain: int) -> list:
    cases = []
    for domain in ("busi", "kvasir", "ph2", "ct2d"):
        cases += [load_case(c) for c in discover_cases(data_root() / "dev" / domain)[:n_per_domain]]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-domain", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    backbone = load_backbone("lite_medsam")
    predictors = {r: SamPredictor(backbone, encoder=make_encoder(backbone, r, threads=args.threads)) for r in RUNTIMES}
    cases = _slices(args.per_domain)
    inputs = [predictors["torch"].prepare(c.image) for c in cases]
    for predictor in predictors.values():  # warm-up (first-call allocations, OpenVINO's first inference)
        predictor.encoder(inputs[0])
    seconds: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    features: dict[str, list[torch.Tensor]] = {r: [] for r in RUNTIMES}
    for repeat in range(args.repeats):
        for runtime, predictor in predictors.items():
            start = time.perf_counter()
            out = [predictor.encoder(x) for x in inputs]
            seconds[runtime].append((time.perf_counter() - start) / len(inputs))
            if repeat == 0:
                features[runtime] = out
        print(repeat, {r: round(v[-1], 3) for r, v in seconds.items()}, flush=True)
    rows = {}
    baseline = float(np.median(seconds["torch"]))
    for runtime, predictor in predictors.items():
        ious, diffs = [], []
        for case, feat, ref in zip(cases, features[runtime], features["torch"]):
            box = mask_boxes(case.truth[None])[0]
            masks = []
            for f in (ref, feat):
                predictor.set_embedding(SliceEmbedding(f, tuple(case.truth.shape)))
                masks.append(predictor.predict(box=box)[0][0])
            union = np.logical_or(*masks).sum()
            ious.append(float(np.logical_and(*masks).sum() / union) if union else 1.0)
            diffs.append(float((feat - ref).abs().max()))
        median = float(np.median(seconds[runtime]))
        rows[runtime] = {"seconds_per_slice": round(median, 4), "all_seconds": [round(s, 4) for s in seconds[runtime]],
                         "speedup_vs_fp32_eager": round(baseline / median, 2), "min_mask_iou": round(min(ious), 4),
                         "max_abs_embedding_diff": round(max(diffs), 5)}
    record = {"benchmark": "encoder_throughput", **provenance("cpu"), "backbone": backbone.signature,
              "slices": len(cases), "threads": args.threads, "repeats": args.repeats, "runtimes": rows,
              "note": "baseline = fp32 eager PyTorch, batch 1; all runtimes interleaved in one process"}
    write_json(result_path("encoder_throughput", "cpu", args.variant), record, args.allow_dirty)
    for runtime, row in rows.items():
        print(runtime, row)


if __name__ == "__main__":
    main()

"""Image encoder throughput: the fp32 eager PyTorch baseline (batch 1) against the OpenVINO runtimes, in one process.

Each runtime encodes the same real dev slices (LiteMedSAM, 256 px); runs are interleaved (baseline, then each
runtime, repeated) so that other load on the machine hits them alike, and the median seconds per slice is kept.
Numerics: the largest embedding difference against the baseline and the box-mask IoU on the same slices, per domain
(ct2d's small organs are where reduced precision moves masks). The roofline: the encoder's GFLOP per slice (counted
by torch) and this CPU's sustained matrix-product rate in fp32 and bf16 on the same threads, measured in the same
process, so that the record says how far an fp32 runtime could go at best.
Writes ``benchmarks/results/encoder_throughput[_<variant>]_cpu.json``.

    python -m benchmarks.encoder_throughput [--threads 2] [--repeats 3] [--variant LABEL]
    python -m benchmarks.encoder_throughput --device cuda [--compile]   # GPU: benchmarks/gpu_encoders.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.gpu_encoders import BACKBONES, gpu_encoder_rows
from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from benchmarks.timing import encoder_gflop, matmul_gflops
from monai_baldsam.data_paths import data_root
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.encoder_runtime import make_encoder
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding

RUNTIMES = ("torch", "openvino-f32", "openvino-f16", "openvino-bf16")


def _slices(n_per_domain: int) -> list[tuple[str, object]]:
    cases = []
    for domain in ("busi", "kvasir", "ph2", "ct2d"):
        cases += [(domain, load_case(c)) for c in discover_cases(data_root() / "dev" / domain)[:n_per_domain]]
    return cases


def _timed(predictors: dict, inputs: list, repeats: int) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Seconds per slice of each runtime per repeat (interleaved) and the first repeat's features."""
    seconds: dict[str, list[float]] = {r: [] for r in predictors}
    features: dict[str, list[torch.Tensor]] = {r: [] for r in predictors}
    for repeat in range(repeats):
        for runtime, predictor in predictors.items():
            start = time.perf_counter()
            out = [predictor.encoder(x) for x in inputs]
            seconds[runtime].append((time.perf_counter() - start) / len(inputs))
            if repeat == 0:
                features[runtime] = out
        print(repeat, {r: round(v[-1], 3) for r, v in seconds.items()}, flush=True)
    return seconds, features


def _mask_agreement(predictor: SamPredictor, cases: list, features: list, reference: list
                    ) -> tuple[dict[str, dict[str, float]], float]:
    """Per domain, the worst and mean IoU of the box mask on these features against the reference's, and the
    largest embedding difference."""
    ious: dict[str, list[float]] = {}
    diffs = []
    for (domain, case), feat, ref in zip(cases, features, reference):
        box = mask_boxes(case.truth[None])[0]
        masks = []
        for f in (ref, feat):
            predictor.set_embedding(SliceEmbedding(f, tuple(case.truth.shape)))
            masks.append(predictor.predict(box=box)[0][0])
        union = np.logical_or(*masks).sum()
        ious.setdefault(domain, []).append(float(np.logical_and(*masks).sum() / union) if union else 1.0)
        diffs.append(float((feat - ref).abs().max()))
    by_domain = {d: {"min": round(min(v), 4), "mean": round(float(np.mean(v)), 4)} for d, v in ious.items()}
    return by_domain, max(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-domain", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (OpenVINO runtimes), or cuda (bf16, fused attention)")
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES),
                        help="GPU: the backbones to measure")
    parser.add_argument("--iters", type=int, default=20, help="GPU: timed batches per mode")
    parser.add_argument("--compile", action="store_true", help="GPU: also the torch.compile'd fused mode")
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    if torch.device(args.device).type == "cuda":
        _gpu_main(args)
        return
    backbone = load_backbone("lite_medsam")
    predictors = {r: SamPredictor(backbone, encoder=make_encoder(backbone, r, threads=args.threads)) for r in RUNTIMES}
    cases = _slices(args.per_domain)
    inputs = [predictors["torch"].prepare(c.image) for _, c in cases]
    for predictor in predictors.values():  # warm-up (first-call allocations, OpenVINO's first inference)
        predictor.encoder(inputs[0])
    gflop = encoder_gflop(backbone.image_encoder, backbone.img_size)
    peaks = {name: round(matmul_gflops("cpu", dtype), 1) for name, dtype in (("f32", torch.float32),
                                                                             ("bf16", torch.bfloat16))}
    seconds, features = _timed(predictors, inputs, args.repeats)
    rows = {}
    baseline = float(np.median(seconds["torch"]))
    for runtime, predictor in predictors.items():
        by_domain, max_diff = _mask_agreement(predictor, cases, features[runtime], features["torch"])
        median = float(np.median(seconds[runtime]))
        rows[runtime] = {"seconds_per_slice": round(median, 4), "all_seconds": [round(s, 4) for s in seconds[runtime]],
                         "speedup_vs_fp32_eager": round(baseline / median, 2),
                         "gflops": round(gflop / median, 1),
                         "min_mask_iou": min(v["min"] for v in by_domain.values()), "mask_iou_by_domain": by_domain,
                         "max_abs_embedding_diff": round(max_diff, 5)}
    record = {"benchmark": "encoder_throughput", **provenance("cpu"), "backbone": backbone.signature,
              "slices": len(cases), "threads": args.threads, "repeats": args.repeats,
              "gflop_per_slice": round(gflop, 2), "matmul_peak_gflops": peaks,
              "fp32_ceiling_speedup": round(peaks["f32"] / (gflop / baseline), 2), "runtimes": rows,
              "note": "baseline = fp32 eager PyTorch, batch 1; all runtimes interleaved in one process; "
                      "fp32_ceiling_speedup = the speed-up an fp32 runtime would reach at the fp32 matmul peak"}
    write_json(result_path("encoder_throughput", "cpu", args.variant), record, args.allow_dirty)
    for runtime, row in rows.items():
        print(runtime, row)


def _gpu_main(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    rows = gpu_encoder_rows(device, args.backbones, args.iters, args.compile)
    record = {"benchmark": "encoder_throughput", **provenance(device), "iters": args.iters, "backbones": rows,
              "targets_images_per_s": {"lite_medsam": 1000, "vit_b": 300, "vit_h": 60},
              "note": "fp32_eager_b1 is the baseline; bf16_naive the naive bf16 baseline; ViT weights random"}
    write_json(result_path("encoder_throughput", device, args.variant), record, args.allow_dirty)


if __name__ == "__main__":
    main()

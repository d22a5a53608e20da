"""Dice vs clicks on the dev volumes (brats_mri3d NIfTI, pgbm_dicom DICOM series) for the volume click policies.

Each volume starts from the ground truth's box on its largest tumour slice (``--box-slice central``: the central
slice of its range) and propagates; then ``--clicks - 1`` clicks from ``oracle`` (3D RITM user, mm distances),
``random_error`` and ``bald`` (the head's MI over the segmented slices and the slice past each end). Several models
run in the same process on the same embeddings (one shared encoder cache, one volume at a time), so they are
compared on identical inputs: each head of ``--heads`` (on the decoder it was trained on), and LiteMedSAM without a
head on each decoder of ``--decoders`` (``bald`` needs a head: skipped for those). Writes
``benchmarks/results/eval_volumes_dev[_<variant>]_<device>.json`` and ``.png`` (``eval_volumes_dev_h100`` with
``--device cuda`` on an H100).

    python -m benchmarks.eval_volumes_dev --heads brain_mri general --clicks 6 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.volumes import (
    VOLUME_POLICIES,
    VolumeSessionResult,
    evaluate_volumes,
    summarize_volume_results,
)
from monai_baldsam.head.checkpoint import head_decoder
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.io.cases import discover_volume_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.segmentation import Segmenter


def _segmenters(args: argparse.Namespace, cache: EmbeddingCache) -> dict[str, Segmenter]:
    """One segmenter per model: each head (heads on the original decoder share one backbone), then
    ``decoder:NAME`` for each decoder without a head."""
    backbone = load_backbone("lite_medsam", device=args.device)
    segmenters = {}
    for head in args.heads:
        shared = backbone if head_decoder(resolve_head(head).path) == "original" else "lite_medsam"
        segmenters[head] = Segmenter(shared, cache=cache, head=head, device=args.device, encoder=args.encoder)
    for decoder in args.decoders:
        segmenters[f"decoder:{decoder}"] = Segmenter("lite_medsam", cache=cache, decoder=decoder, device=args.device,
                                                     encoder=args.encoder)
    return segmenters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="*", default=["brain_mri", "general"])
    parser.add_argument("--domains", nargs="+", default=["brats_mri3d", "pgbm_dicom"])
    parser.add_argument("--policies", nargs="+", default=list(VOLUME_POLICIES))
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (backbone and heads)")
    parser.add_argument("--decoders", nargs="*", default=[],
                        help="also LiteMedSAM without a head on each of these decoders (e.g. hippocampus_v1)")
    parser.add_argument("--box-slice", default="largest", choices=("largest", "central"),
                        help="the slice of the first box: the largest object slice, or the central one of its range")
    parser.add_argument("--encoder", default="torch", help="image encoder runtime (torch, auto, openvino-f32, ...)")
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    started = time.time()
    cache = EmbeddingCache()  # shared: each slice is encoded once for every model
    segmenters = _segmenters(args, cache)
    table: dict[str, dict] = {name: {} for name in segmenters}
    for domain in args.domains:
        cases = discover_volume_cases(domain_dir(domain))
        results: dict[str, list[VolumeSessionResult]] = {name: [] for name in segmenters}
        for case in tqdm(cases, desc=domain, unit="volume"):
            for name, segmenter in segmenters.items():
                policies = [p for p in args.policies if segmenter.click_model is not None or p != "bald"]
                results[name] += evaluate_volumes([case], segmenter, policies, args.clicks, seed=0,
                                                  box_on=args.box_slice)
            cache.clear()
        for name in segmenters:
            table[name][domain] = summarize_volume_results(results[name])
            print(domain, name, {p: s["mdice_at"] for p, s in table[name][domain].items()}, flush=True)
    record = {"benchmark": "eval_volumes_dev", "heads": args.heads, "decoders": args.decoders, "clicks": args.clicks,
              "box_slice": args.box_slice, "encoder": args.encoder,
              "models": {name: s.predictor.backbone.signature for name, s in segmenters.items()},
              "protocol": f"box on the {args.box_slice} ground-truth slice, propagation, then one click per "
                          "interaction with re-propagation from the clicked slice; Dice over the whole volume",
              "table": table, "seconds": round(time.time() - started, 1), **provenance(args.device)}
    path = result_path("eval_volumes_dev", args.device, args.variant)
    write_json(path, record, args.allow_dirty)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.domains), figsize=(5.6 * len(args.domains), 3.9), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, domain in zip(axes.flat, args.domains):
        n_volumes = 0
        for style, head in zip(styles * len(table), table):
            for colour, (policy, summary) in enumerate(table[head][domain].items()):
                curve = summary["mdice_curve"]
                n_volumes = summary["n_volumes"]
                ax.plot(range(1, len(curve) + 1), curve, style, color=f"C{colour}", marker="o", ms=3,
                        label=f"{head}: {policy}")
        ax.set(title=f"{domain} ({n_volumes} volumes)", xlabel="interaction (1 = box)",
               ylabel="mean Dice over the volume", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)


if __name__ == "__main__":
    main()

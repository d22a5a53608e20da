"""Dice vs clicks on the dev volumes (brats_mri3d NIfTI, pgbm_dicom DICOM series) for the volume click policies.

Each volume starts from the ground truth's box on its largest tumour slice and propagates; then ``--clicks - 1``
clicks from ``oracle`` (3D RITM user, mm distances), ``random_error`` and ``bald`` (the head's MI over the segmented
slices and the slice past each end). Writes ``benchmarks/results/volumes_dev_cpu.json`` and ``.png``.

    python benchmarks/eval_volumes_dev.py --head general --clicks 6 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from tqdm.auto import tqdm

from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.volumes import (
    VOLUME_POLICIES,
    discover_volume_cases,
    evaluate_volumes,
    summarize_volume_results,
)
from monai_baldsam.segmentation import Segmenter
from results_io import provenance, save_png, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=["brats_mri3d", "pgbm_dicom"])
    parser.add_argument("--policies", nargs="+", default=list(VOLUME_POLICIES))
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    segmenter = Segmenter(head=args.head)
    table = {}
    for domain in args.domains:
        cases = discover_volume_cases(domain_dir(domain))
        results = evaluate_volumes(cases, segmenter, args.policies, args.clicks, seed=0,
                                   progress=lambda c: tqdm(c, desc=domain, unit="volume"))
        table[domain] = summarize_volume_results(results)
        print(domain, {p: s["mdice_at"] for p, s in table[domain].items()}, flush=True)
    record = {"benchmark": "eval_volumes_dev", "head": args.head, "clicks": args.clicks,
              "protocol": "box on the largest ground-truth slice, propagation, then one click per interaction with "
                          "re-propagation from the clicked slice; Dice over the whole volume",
              "table": table, "seconds": round(time.time() - started, 1), **provenance("cpu")}
    write_json("volumes_dev_cpu", record)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(5.2 * len(table), 3.6), squeeze=False)
    for ax, (domain, by_policy) in zip(axes.flat, table.items()):
        for policy, summary in by_policy.items():
            curve = summary["mdice_curve"]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=policy)
        ax.set(title=f"{domain} ({by_policy[next(iter(by_policy))]['n_volumes']} volumes)", xlabel="interaction",
               ylabel="mean Dice over the volume", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_png(fig, "volumes_dev_cpu")


if __name__ == "__main__":
    main()

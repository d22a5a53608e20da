"""How far one box propagates on the dev volumes (brats_mri3d NIfTI, pgbm_dicom DICOM series), LiteMedSAM alone.

For each volume and each seed slice (``central``: the middle of the tumour's slice range, issue 5's criterion;
``largest``: the slice with the largest tumour area, where the click evaluation starts) one box (the ground truth's
bounding box on that slice) is propagated both ways with the default settings. Reports the tumour's slice range,
the covered range, how far each end is off, the Dice over the volume, the slices encoded and where each run
stopped (the rejected mask's slice Dice). Both seeds share one encoder cache per volume. Writes
``benchmarks/results/propagation_dev[_<variant>]_<device>.json`` and ``.png``.

    python -m benchmarks.propagation_dev --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.volumes import first_box
from monai_baldsam.io import load_image, load_mask
from monai_baldsam.io.cases import discover_volume_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.volume import VolumeSession

SEEDS = ("central", "largest")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["brats_mri3d", "pgbm_dicom"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    started = time.time()
    backbone = load_backbone("lite_medsam", device=args.device)
    rows: list[dict] = []
    cases = [(domain, case) for domain in args.domains for case in discover_volume_cases(domain_dir(domain))]
    for domain, case in tqdm(cases, desc="volumes", unit="volume"):
        image = load_image(case.image)
        truth = load_mask(case.mask, reference=image)[0].numpy().astype(bool)
        cache = EmbeddingCache()
        for on in SEEDS:
            session = VolumeSession(image, SamPredictor(backbone, cache))
            prompts = first_box(truth, session.axis, on=on)
            runs = session.update(prompts)
            label = session.label()[0].numpy().astype(bool)
            along = np.moveaxis(truth, session.axis, 0)
            tumour = np.nonzero(along.reshape(along.shape[0], -1).any(1))[0]
            covered = session.slice_range()
            stops = [{"direction": r.direction, "slice": r.stop_index, "reason": r.reason.value,
                      "tumour_voxels": int(along[r.stop_index].sum()),
                      "mask_voxels": int(r.rejected.mask_ab.sum()),
                      "slice_dice": round(_dice(r.rejected.mask_ab, along[r.stop_index]), 3)}
                     for r in runs if r.rejected is not None]
            rows.append({"domain": domain, "volume": case.name, "seed": on, "seed_slice": int(prompts.box[2]),
                         "tumour_slices": [int(tumour[0]), int(tumour[-1])],
                         "covered": None if covered is None else [int(covered[0]), int(covered[1])],
                         "ends_off": None if covered is None else [abs(int(covered[0]) - int(tumour[0])),
                                                                  abs(int(covered[1]) - int(tumour[-1]))],
                         "dice": round(_dice(label, truth), 4), "slices_encoded": len(session.requested),
                         "stops": stops})
            print(rows[-1], flush=True)
    record = {"benchmark": "propagation_dev", "backbone": "lite_medsam", "seeds": list(SEEDS),
              "protocol": "one box = the ground truth's bounding box on the seed slice, propagated both ways with the "
                          "default PropagationConfig; criterion: both ends within one slice of the tumour's",
              "rows": rows, "seconds": round(time.time() - started, 1), **provenance(args.device)}
    path = result_path("propagation_dev", args.device, args.variant)
    write_json(path, record, args.allow_dirty)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volumes = list(dict.fromkeys(r["volume"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.8 * len(volumes)))
    for y, volume in enumerate(volumes):
        for offset, on in zip((-0.15, 0.15), SEEDS):
            row = next(r for r in rows if r["volume"] == volume and r["seed"] == on)
            first, last = row["tumour_slices"]
            ax.plot([first, last], [y + offset] * 2, color="0.75", lw=6, solid_capstyle="butt")
            if row["covered"] is not None:
                ax.plot(row["covered"], [y + offset] * 2, color="C0" if on == "central" else "C1", lw=2,
                        marker="|", ms=10, label=f"covered from the {on} slice" if y == 0 else None)
            ax.plot(row["seed_slice"], y + offset, "kv", ms=5)
    ax.plot([], [], color="0.75", lw=6, label="tumour slices (truth)")
    ax.set(yticks=range(len(volumes)), yticklabels=volumes, xlabel="slice along the through-plane axis",
           title="One box propagated (LiteMedSAM): covered slices vs the tumour's")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_png(fig, path)


if __name__ == "__main__":
    main()

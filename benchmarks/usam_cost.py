"""What UncertainSAM's quality costs per call on CPU, as a ratio to a plain decoder call in the same process.

Per image (the first ``--limit`` dev images of each domain), with the embedding computed once, interleaved
``--repeats`` times so that load from other processes hits every variant alike; medians are compared:

* ``plain_decoder``: LiteMedSAM's decoder on the ground-truth box (``SamClickModel.predict``, mask at slice size);
* ``plain_decoder+usam``: the same call with the token hooks, the mask descriptor and the heads (``UsamModel.assess``);
* ``usam_only``: the descriptor and the heads alone, on tokens already captured (what the quality adds to a call);
* ``head_click`` / ``head_click+usam``: the Bayesian head on box + click + previous mask, without and with quality.

Writes ``benchmarks/results/usam_cost_cpu.json``.

    python benchmarks/usam_cost.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.data import discover_cases, load_case
from monai_baldsam.evaluation.geometry import mask_boxes
from monai_baldsam.evaluation.model import SamClickModel
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.usam import load_usam, resolve_usam
from monai_baldsam.usam.features import quality_features, valid_low_res
from results_io import provenance, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usam", default="general")
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=["busi", "kvasir", "ph2"])
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    found = resolve_head(args.head)
    head = load_head_click_model(found.path, head_sha256=found.sha256)
    plain = SamClickModel(head.predictor)
    sam_usam = load_usam(args.usam, click_model=plain)
    head_usam = load_usam(args.usam, click_model=head)
    backbone = head.predictor.backbone
    rows = []
    for domain in args.domains:
        for case in discover_cases(domain_dir(domain), limit=args.limit):
            loaded = load_case(case)
            embedding = head.encode(loaded.image)
            box = mask_boxes(loaded.truth[None])[0].astype(np.float64)
            ys, xs = np.nonzero(loaded.truth)
            click, label = np.array([[xs[len(xs) // 2], ys[len(ys) // 2]]], dtype=np.float64), np.array([1])
            previous = plain.predict(embedding, None, None, box, None).low_res_logits
            captured = sam_usam.assess(embedding, None, None, box, None)
            valid = valid_low_res(embedding.original_hw, backbone.img_size, int(backbone.low_res_hw[0]))
            logits = captured.output.low_res_logits.float()

            def usam_only() -> None:
                with torch.no_grad():
                    sam_usam.heads(quality_features(backbone.mask_decoder, captured.tokens, logits, valid, False))

            calls = {"plain_decoder": lambda: plain.predict(embedding, None, None, box, None),
                     "plain_decoder+usam": lambda: sam_usam.assess(embedding, None, None, box, None),
                     "usam_only": usam_only,
                     "head_click": lambda: head.predict(embedding, click, label, box, previous),
                     "head_click+usam": lambda: head_usam.assess(embedding, click, label, box, previous)}
            times: dict[str, list[float]] = {k: [] for k in calls}
            for _ in range(args.repeats):
                for name, call in calls.items():
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
            med = {k: float(np.median(v)) for k, v in times.items()}
            rows.append({"domain": domain, "image": case.name, "image_hw": list(loaded.truth.shape),
                         **{f"{k}_ms": round(1e3 * v, 2) for k, v in med.items()},
                         "ratio_plain+usam": round(med["plain_decoder+usam"] / med["plain_decoder"], 3),
                         "ratio_usam_only": round(med["usam_only"] / med["plain_decoder"], 4),
                         "ratio_head+usam_over_head": round(med["head_click+usam"] / med["head_click"], 3)})
            print(rows[-1], flush=True)
    summary = {k: round(float(np.median([r[k] for r in rows])), 4)
               for k in ("ratio_plain+usam", "ratio_usam_only", "ratio_head+usam_over_head")}
    usam_file = resolve_usam(args.usam)
    record = {"benchmark": "usam_cost", "usam": usam_file.name, "usam_sha256": usam_file.sha256, "head": found.name,
              "threads": args.threads, "repeats": args.repeats, "rows": rows,
              "median": summary, "max_ratio_plain+usam": round(float(max(r["ratio_plain+usam"] for r in rows)), 3),
              **provenance("cpu")}
    write_json("usam_cost_cpu", record)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

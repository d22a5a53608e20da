"""What one BALD click costs on CPU, as a ratio to a plain SAM decoder call measured in the same process.

Per image (the first ``--limit`` dev images of each domain), with the embedding computed once: the plain LiteMedSAM
decoder on box + click + previous mask (``SamClickModel.predict``), and a BALD click with the head (``predict``:
decoder features, head, 32-node posterior quadrature, the MI map at slice size; then the ``bald`` policy's choice).
The two are interleaved ``--repeats`` times so that load from other processes hits both alike; medians are compared.

Writes ``benchmarks/results/bald_click_cost_cpu.json``.

    python benchmarks/bald_click_cost.py --threads 1
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
from monai_baldsam.evaluation.policies import ClickContext, make_policy
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.head.registry import resolve_head
from results_io import provenance, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=["busi", "kvasir", "ph2"])
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    found = resolve_head(args.head)
    head_model = load_head_click_model(found.path, head_sha256=found.sha256)
    plain = SamClickModel(head_model.predictor)  # the same backbone and embedding cache
    policy = make_policy("bald")
    rows = []
    for domain in args.domains:
        for case in discover_cases(domain_dir(domain), limit=args.limit):
            loaded = load_case(case)
            embedding = head_model.encode(loaded.image)
            box = mask_boxes(loaded.truth[None])[0].astype(np.float64)
            ys, xs = np.nonzero(loaded.truth)
            clicks = np.array([[xs[len(xs) // 2], ys[len(ys) // 2]]], dtype=np.float64)
            labels = np.array([1])
            previous = plain.predict(embedding, None, None, box, None).low_res_logits
            plain_s, bald_s = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                plain.predict(embedding, clicks, labels, box, previous)
                plain_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                output = head_model.predict(embedding, clicks, labels, box, previous)
                valid = np.ones(output.mask.shape, dtype=bool)
                valid[int(clicks[0, 1]), int(clicks[0, 0])] = False
                context = ClickContext(prediction=output, clicks_xy=clicks.astype(np.int64), click_labels=labels,
                                       box_xy=box, valid=valid, rng=np.random.default_rng(0), interaction=2)
                policy.choose(context)
                bald_s.append(time.perf_counter() - start)
            rows.append({"domain": domain, "image": case.name, "image_hw": list(loaded.truth.shape),
                         "plain_decoder_ms": round(1e3 * float(np.median(plain_s)), 2),
                         "bald_click_ms": round(1e3 * float(np.median(bald_s)), 2),
                         "ratio": round(float(np.median(bald_s) / np.median(plain_s)), 3)})
            print(rows[-1], flush=True)
    ratios = [r["ratio"] for r in rows]
    record = {"benchmark": "bald_click_cost", "head": found.name, "head_sha256": found.sha256,
              "threads": args.threads, "repeats": args.repeats, "rows": rows,
              "median_ratio": round(float(np.median(ratios)), 3), "max_ratio": round(float(np.max(ratios)), 3),
              "target": "a BALD click costs at most 1.5x a plain decoder call", **provenance("cpu")}
    write_json("bald_click_cost_cpu", record)
    print(json.dumps({k: record[k] for k in ("median_ratio", "max_ratio")}))


if __name__ == "__main__":
    main()

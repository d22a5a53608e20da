"""What UncertainSAM's quality costs per call on CPU, as a ratio to a plain decoder call in the same process.

Per image (the first ``--limit`` dev images of each domain), with the embedding computed once, interleaved
``--repeats`` times so that load from other processes hits every variant alike; medians are compared:

* ``plain_decoder``: LiteMedSAM's decoder on the ground-truth box (``SamClickModel.predict``, mask at slice size);
* ``plain_decoder+usam``: the same call with the token hooks, the mask descriptor and the heads (``UsamModel.assess``);
* ``usam_only``: the descriptor and the heads alone, on tokens already captured (what the quality adds to a call);
* ``head_click`` / ``head_click+usam``: the Bayesian head on box + click + previous mask, without and with quality.

Writes ``benchmarks/results/usam_cost[_<variant>]_cpu.json``.

    python -m benchmarks.usam_cost --threads 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmarks.results_io import provenance, result_path, write_json
from benchmarks.timing import add_cost_arguments, cost_cases, interleaved_medians, load_cost_models, parse_cost_args
from monai_baldsam.usam import load_usam, resolve_usam
from monai_baldsam.usam.features import quality_features, valid_low_res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usam", default="general")
    add_cost_arguments(parser, repeats=15)
    args = parse_cost_args(parser)
    models = load_cost_models(args.head)
    head, plain, found = models.head, models.plain, models.found
    sam_usam = load_usam(args.usam, click_model=plain)
    head_usam = load_usam(args.usam, click_model=head)
    backbone = head.predictor.backbone
    rows = []
    for case in cost_cases(models, args.domains, args.limit):
        embedding, box, previous = case.embedding, case.box_xy, case.previous
        click, label = case.clicks_xy, case.labels
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
        med = interleaved_medians(calls, args.repeats)
        rows.append({**case.row(), **{f"{k}_ms": round(1e3 * v, 2) for k, v in med.items()},
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
    write_json(result_path("usam_cost", "cpu", args.variant), record, args.allow_dirty)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

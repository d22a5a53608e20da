"""What one BALD click costs on CPU, as a ratio to a plain SAM decoder call measured in the same process.

Per image (the first ``--limit`` dev images of each domain), with the embedding computed once: the plain LiteMedSAM
decoder on box + click + previous mask (``SamClickModel.predict``), and a BALD click with the head (``predict``:
decoder features, head, 32-node posterior quadrature, the MI map at slice size; then the ``bald`` policy's choice).
The two are interleaved ``--repeats`` times so that load from other processes hits both alike; medians are compared.

Writes ``benchmarks/results/bald_click_cost[_<variant>]_cpu.json``.

    python -m benchmarks.bald_click_cost --threads 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.results_io import provenance, result_path, write_json
from benchmarks.timing import add_cost_arguments, cost_cases, interleaved_medians, load_cost_models, parse_cost_args
from monai_baldsam.interaction.policies import ClickContext, make_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cost_arguments(parser, repeats=9)
    args = parse_cost_args(parser)
    models = load_cost_models(args.head)
    head_model, plain, found = models.head, models.plain, models.found
    policy = make_policy("bald")
    rows = []
    for case in cost_cases(models, args.domains, args.limit):

        def bald_click() -> None:
            output = head_model.predict(case.embedding, case.clicks_xy, case.labels, case.box_xy, case.previous)
            valid = np.ones(output.mask.shape, dtype=bool)
            valid[int(case.clicks_xy[0, 1]), int(case.clicks_xy[0, 0])] = False
            context = ClickContext(prediction=output, clicks_xy=case.clicks_xy.astype(np.int64),
                                   click_labels=case.labels, box_xy=case.box_xy, valid=valid,
                                   rng=np.random.default_rng(0), interaction=2)
            policy.choose(context)

        med = interleaved_medians(
            {"plain": lambda: plain.predict(case.embedding, case.clicks_xy, case.labels, case.box_xy, case.previous),
             "bald": bald_click}, args.repeats)
        rows.append({**case.row(), "plain_decoder_ms": round(1e3 * med["plain"], 2),
                     "bald_click_ms": round(1e3 * med["bald"], 2), "ratio": round(med["bald"] / med["plain"], 3)})
        print(rows[-1], flush=True)
    ratios = [r["ratio"] for r in rows]
    record = {"benchmark": "bald_click_cost", "head": found.name, "head_sha256": found.sha256,
              "threads": args.threads, "repeats": args.repeats, "rows": rows,
              "median_ratio": round(float(np.median(ratios)), 3), "max_ratio": round(float(np.max(ratios)), 3),
              "target": "a BALD click costs at most 1.5x a plain decoder call", **provenance("cpu")}
    write_json(result_path("bald_click_cost", "cpu", args.variant), record, args.allow_dirty)
    print(json.dumps({k: record[k] for k in ("median_ratio", "max_ratio")}))


if __name__ == "__main__":
    main()

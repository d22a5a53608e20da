"""What one click costs: a BALD click against a plain SAM decoder call (the baseline), in one process, with the
click's stages timed apart so that the profile says where the time goes.

Per image (the first ``--limit`` dev images of each domain), with the embedding computed once and outside every
timing, the calls run interleaved ``--repeats`` times (load from other processes hits them alike; medians kept):

* ``plain``: the baseline, the head's own decoder on box + click + previous mask, mask at slice size
  (:class:`~monai_baldsam.interaction.model.SamClickModel`);
* ``bald_click``: what the annotator waits for: decoder, head, the last layer's posterior (32-node quadrature),
  the MI map at slice size, then the ``bald`` policy's choice of the next click;
* its stages: ``decoder_inputs`` (the frozen decoder's answer and the head's inputs), ``head_network`` (the conv
  head), ``low_res`` (decoder, head, posterior and maps on the low-resolution grid) and ``policy`` (the choice
  on a ready prediction); ``posterior_maps`` = ``low_res`` - ``decoder_inputs`` - ``head_network`` and
  ``to_slice`` = ``bald_click`` - ``low_res`` - ``policy`` are derived.

Targets: a BALD click at most 1.3x a plain decoder call on the CPU (the speed issue), 1.5x (the model issue);
at most 5 ms on an H100. Writes ``benchmarks/results/click_latency[_<variant>]_<device>.json``.

    python -m benchmarks.click_latency --config configs/benchmarks/click_latency.json [--device cuda]
"""

from __future__ import annotations

import argparse
import json
from typing import Callable

import numpy as np
import torch

from benchmarks.results_io import provenance, result_path, write_json
from benchmarks.timing import (
    CostCase,
    CostModels,
    add_cost_arguments,
    cost_cases,
    interleaved_medians,
    load_cost_models,
    parse_cost_args,
    synchronized,
)
from monai_baldsam.head.features import HeadPrompts
from monai_baldsam.interaction.model import ModelOutput, prompt_tensors
from monai_baldsam.interaction.policies import ClickContext, ClickPolicy, make_policy

TARGETS = {"cpu_ratio_speed_issue": 1.3, "cpu_ratio_model_issue": 1.5, "gpu_bald_click_ms": 5.0}


def _choose(policy: ClickPolicy, case: CostCase, output: ModelOutput) -> None:
    valid = np.ones(output.mask.shape, dtype=bool)
    valid[int(case.clicks_xy[0, 1]), int(case.clicks_xy[0, 0])] = False
    context = ClickContext(prediction=output, clicks_xy=case.clicks_xy.astype(np.int64), click_labels=case.labels,
                           box_xy=case.box_xy, valid=valid, rng=np.random.default_rng(0), interaction=2)
    policy.choose(context)


def _calls(models: CostModels, case: CostCase, policy: ClickPolicy) -> dict[str, Callable[[], object]]:
    """The timed calls of one image, in the order they run in each round."""
    head = models.head
    args = (case.embedding, case.clicks_xy, case.labels, case.box_xy, case.previous)
    coords, labels, box = prompt_tensors(head.predictor, case.embedding, case.clicks_xy, case.labels, case.box_xy)
    size = head.extractor.low_res
    prompts = HeadPrompts.single(coords, labels, box, case.previous.reshape(1, 1, size, size))
    features = case.embedding.features
    inputs = head.extractor(features, prompts)
    ready = head.predict(*args)

    def bald_click() -> None:
        _choose(policy, case, head.predict(*args))

    return {"plain": lambda: models.plain.predict(*args), "bald_click": bald_click,
            "decoder_inputs": lambda: head.extractor(features, prompts),
            "head_network": lambda: head.head(inputs), "low_res": lambda: head.predict_low_res(case.embedding, prompts),
            "policy": lambda: _choose(policy, case, ready)}


def _row(case: CostCase, medians: dict[str, float]) -> dict[str, object]:
    ms = {name: 1e3 * seconds for name, seconds in medians.items()}
    derived = {"posterior_maps": ms["low_res"] - ms["decoder_inputs"] - ms["head_network"],
               "to_slice": ms["bald_click"] - ms["low_res"] - ms["policy"]}
    return {**case.row(), **{f"{k}_ms": round(v, 3) for k, v in {**ms, **derived}.items()},
            "ratio": round(medians["bald_click"] / medians["plain"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cost_arguments(parser, repeats=9)
    args = parse_cost_args(parser)
    models = load_cost_models(args.head, args.device)
    policy = make_policy("bald")
    rows = []
    with torch.inference_mode():
        for case in cost_cases(models, args.domains, args.limit):
            calls = {name: synchronized(call, args.device) for name, call in _calls(models, case, policy).items()}
            for call in calls.values():  # warm-up: first-call allocations, kernel selection
                call()
            rows.append(_row(case, interleaved_medians(calls, args.repeats)))
            print(rows[-1], flush=True)
    stages = [k for k in rows[0] if k.endswith("_ms")]
    ratios = [r["ratio"] for r in rows]
    record = {"benchmark": "click_latency", "head": models.found.name, "head_sha256": models.found.sha256,
              "decoder": models.head.predictor.backbone.signature, "threads": args.threads, "repeats": args.repeats,
              "rows": rows, "median_ms": {k: round(float(np.median([r[k] for r in rows])), 3) for k in stages},
              "median_ratio": round(float(np.median(ratios)), 3), "max_ratio": round(float(np.max(ratios)), 3),
              "targets": TARGETS, **provenance(args.device)}
    write_json(result_path("click_latency", args.device, args.variant), record, args.allow_dirty)
    print(json.dumps({k: record[k] for k in ("median_ratio", "max_ratio", "median_ms")}))


if __name__ == "__main__":
    main()

"""Choose the neighbourhood (footprint) of the bald and entropy click policies on validation images of the
*training* split (the head card's ``data.val`` list), never on dev data.

For each footprint the script runs the evaluation's own simulator (first prompt box or click, then the policy) on
those images and reports mIoU@5 and mIoU@10, beside random_error and oracle as references. Writes
``benchmarks/results/tune_footprint_<head>_<device>.json`` (``--variant`` another label than the head's
name).

    python -m benchmarks.tune_footprint --head general_v0 --variants bald:0:0 bald:0.03:0.5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.head_validation import load_validation_split
from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from monai_baldsam.evaluation.report import error_click_counts, on_error_flags
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.interaction.policies import (
    BaldPolicy,
    ClickPolicy,
    EntropyPolicy,
    EpigPolicy,
    ExpectedErrorPolicy,
    LookaheadBaldPolicy,
    make_policy,
)
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.sam.predictor import SliceEmbedding


def build_policies(variants: list[str], model: BayesianHeadClickModel,
                   baselines: tuple[str, ...] = ("oracle", "random_error")) -> dict[str, ClickPolicy]:
    """The ``baselines`` (registered policies) and one policy per variant string (see ``--variants``); a variant of
    the ``epig`` policy turns on the model's EPIG map."""
    policies: dict[str, ClickPolicy] = {name: make_policy(name) for name in baselines}
    classes = {"bald": BaldPolicy, "entropy": EntropyPolicy, "epig": EpigPolicy, "expected_error": ExpectedErrorPolicy}
    for variant in variants:
        kind, *rest = variant.split(":")
        if kind in ("bald_lookahead", "entropy_lookahead"):  # KIND:CANDIDATES (entropy_lookahead: entropy proposes)
            proposer = "predictive_entropy" if kind.startswith("entropy") else "mutual_information"
            policies[variant] = LookaheadBaldPolicy(int(rest[0]), score_map=proposer)
            continue
        footprint, gate, *more = rest
        exclusion = float(more[0]) if more else 0.0
        if kind == "epig":
            model.epig = True
        if footprint == "region":
            policies[variant] = classes[kind](0.0, float(gate), exclusion, region=True)
        else:
            policies[variant] = classes[kind](float(footprint), float(gate), exclusion)
    return policies


def paired_against(curves: dict[str, dict[str, list]], reference: str, clicks: int) -> dict[str, Any]:
    """Every run minus ``reference`` after interactions 5 and ``clicks``: mean and 95 % paired bootstrap interval
    over the validation images (10 000 resamples, seed 0), per first prompt."""
    out: dict[str, Any] = {}
    for kind, by in curves.items():
        if reference not in by:
            raise SystemExit(f"--reference {reference!r} is not among the runs {sorted(by)}")
        base = np.array(by[reference])
        for name, runs in by.items():
            if name == reference:
                continue
            for at in sorted({5, clicks}):
                diff = paired_bootstrap(np.array(runs)[:, at - 1], base[:, at - 1], rng=0)
                out[f"{kind}/{name}@{at}"] = diff.to_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general", help="shipped head name or file (with its card beside it)")
    parser.add_argument("--variants", nargs="+", default=["bald:0:0", "bald:0.03:0.5", "bald:0.06:0", "bald:0.06:0.5",
                                                          "entropy:0:0", "entropy:0.03:0.5"],
                        help="POLICY:FOOTPRINT:GATE[:EXCLUSION], FOOTPRINT 'region' for the region rule; POLICY bald, "
                             "entropy, epig or expected_error; or bald_lookahead:CANDIDATES")
    parser.add_argument("--baselines", nargs="*", default=["oracle", "random_error"],
                        help="registered policies run beside the variants (default: oracle random_error)")
    parser.add_argument("--reference", default=None,
                        help="the run every other is compared with (paired bootstrap over images; default: the "
                             "first run: the first baseline, or the first variant without baselines)")
    parser.add_argument("--limit", type=int, default=None,
                        help="the first K validation images of each domain (smoke runs only)")
    parser.add_argument("--kinds", nargs="+", default=["box", "click"], choices=["box", "click"])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the click model's device)")
    parser.add_argument("--click-weights", nargs="+", type=float, default=[0.0],
                        help="run every policy with the head's posterior conditioned on the clicks at each weight "
                             "(BayesianHeadClickModel.click_weight; 0 = the trained posterior); table keys wW/POLICY "
                             "when more than one is given")
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    head, model, items = load_validation_split(args.head, args.device, args.limit)
    policies = build_policies(args.variants, model, tuple(args.baselines))
    weights = args.click_weights
    keys = [(w, name, name if len(weights) == 1 else f"w{w:g}/{name}") for w in weights for name in policies]
    curves: dict[str, dict[str, list]] = {kind: {key: [] for _, _, key in keys} for kind in args.kinds}
    on_error: dict[str, dict[str, list]] = {kind: {key: [] for _, _, key in keys} for kind in args.kinds}
    start = time.time()
    for n, item in enumerate(tqdm(items, desc="sessions", unit="image")):
        embedding = SliceEmbedding(item.embedding.to(args.device), item.original_hw)
        for kind in args.kinds:
            prompt = make_first_prompt(item.truth, kind, np.random.default_rng([0, n]))
            for weight in weights:
                model.click_weight = weight
                first = run_first_interaction(model, embedding, prompt)
                for w, name, key in keys:
                    if w != weight:
                        continue
                    result = run_session(model, embedding, item.truth, policies[name], first, args.clicks,
                                         np.random.default_rng([0, n, 1]))
                    curves[kind][key].append(np.asarray(result.iou))
                    on_error[kind][key].append(
                        {"clicks_on_error": on_error_flags(result.click_on_error, len(result.clicks_xy))})
    table = {kind: {name: {"miou@5": round(float(np.mean([c[4] for c in v])), 4),
                           f"miou@{args.clicks}": round(float(np.mean([c[-1] for c in v])), 4)}
                    for name, v in by.items()} for kind, by in curves.items()}
    record = {"benchmark": "tune_footprint", "head": head.name, "head_sha256": head.sha256, "images": len(items),
              "limit": args.limit, "model": model.signature,
              "domains": sorted({i.domain for i in items}), "clicks": args.clicks, "click_weights": weights,
              "table": table, "clicks_on_error": {kind: {k: error_click_counts(v)["share"] for k, v in by.items()}
                                                  for kind, by in on_error.items()},
              "paired": paired_against(curves, args.reference or keys[0][2], args.clicks),
              "seconds": round(time.time() - start, 1), **provenance(args.device)}
    write_json(result_path("tune_footprint", args.device, args.variant or head.name), record, args.allow_dirty)
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

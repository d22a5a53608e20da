"""Who should answer a box alone, the head or the decoder? Chosen on a head's validation images (issue: a
click-native model; never on dev).

Protocol: the head's validation split (its card's ``data.val``), encoded once with the CLI's default encoder runtime
and run through the evaluation's runner (what ``baldsam evaluate`` does), box first, 10 interactions with oracle clicks and the previous logits fed back,
seed 0, once with each :class:`~monai_baldsam.head.click_model.BoxAlone` setting on the same embeddings. Reports per
domain and over all images mIoU after the box, @5 and @10, NoC90, the decoder-minus-head difference of each with a
95 % paired bootstrap interval over images, and which differences are beyond noise. Writes
``benchmarks/results/box_alone_val_<head>_cpu.json`` and ``.png``.

    python -m benchmarks.box_alone_val [--head general_v2] [--clicks 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.head.click_model import BayesianHeadClickModel, BoxAlone, load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.head.train.data import card_cases
from monai_baldsam.interaction.metrics import number_of_clicks, summarize_curves

def _curves(models: dict[BoxAlone, BayesianHeadClickModel], cases: list, clicks: int, seed: int
            ) -> dict[BoxAlone, np.ndarray]:
    """``setting -> (n_images, clicks)`` IoU after each interaction, box first, oracle clicks (the evaluation's own
    runner, as ``baldsam evaluate``); one domain at a time, so the shared cache holds its images for both settings."""
    curves: dict[BoxAlone, list[np.ndarray]] = {setting: [] for setting in models}
    for domain in sorted({d for d, _ in cases}):
        chosen = [case for d, case in cases if d == domain]
        for setting, model in models.items():
            run = evaluate(chosen, model, ["oracle"], ["box"], clicks, seed, progress=True)
            curves[setting].append(run[("box", "oracle")].iou_curves())
        models[BoxAlone.HEAD].predictor.cache.clear()
    return {setting: np.concatenate(parts) for setting, parts in curves.items()}


def _compare(head: np.ndarray, decoder: np.ndarray, seed: int) -> dict:
    """The two settings' summaries and the paired differences (decoder - head) after the box, @5, @10 and of NoC90."""
    out: dict = {"head": summarize_curves(head), "decoder": summarize_curves(decoder), "decoder_minus_head": {}}
    for label, column in (("box_alone", 0), ("miou5", 4), ("miou10", head.shape[1] - 1)):
        diff = paired_bootstrap(decoder[:, column], head[:, column], rng=seed).to_dict()
        out["decoder_minus_head"][label] = diff
    out["decoder_minus_head"]["noc90"] = paired_bootstrap(number_of_clicks(decoder, 0.90).astype(np.float64),
                                                          number_of_clicks(head, 0.90).astype(np.float64),
                                                          rng=seed).to_dict()
    return out


def _plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = list(rows)
    fig, ax = plt.subplots(figsize=(8, 4))
    for offset, (label, column) in enumerate((("after the box", "box_alone"), ("@5", "miou5"), ("@10", "miou10"))):
        diffs = [rows[d]["decoder_minus_head"][column] for d in domains]
        xs = np.arange(len(domains)) + (offset - 1) * 0.25
        means = [d["mean"] for d in diffs]
        err = [[d["mean"] - d["low"] for d in diffs], [d["high"] - d["mean"] for d in diffs]]
        ax.errorbar(xs, means, yerr=err, fmt="o", capsize=3, label=label)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xticks(range(len(domains)), domains)
    ax.set_ylabel("mIoU, decoder answers the box minus head (95 % CI)")
    ax.set_title("Box alone answered by the decoder: validation images, oracle clicks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general_v2")
    parser.add_argument("--encoder", default="auto")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser)
    args = parse_args(parser)
    found = resolve_head(args.head)
    card = json.loads(found.path.with_suffix(".json").read_text())
    by_head = load_head_click_model(found.path, head_sha256=found.sha256, encoder=args.encoder, cache_items=128,
                                    box_alone=BoxAlone.HEAD)
    by_decoder = BayesianHeadClickModel(by_head.predictor, by_head.head, by_head.laplace, name=by_head.name,
                                        box_alone=BoxAlone.DECODER)  # the same predictor: images encoded once
    models = {BoxAlone.HEAD: by_head, BoxAlone.DECODER: by_decoder}
    started = time.perf_counter()
    cases = sorted(card_cases(card, "val"), key=lambda pair: pair[0])
    curves = _curves(models, cases, args.clicks, args.seed)
    domains = np.array([domain for domain, _ in cases])
    rows = {d: _compare(curves[BoxAlone.HEAD][domains == d], curves[BoxAlone.DECODER][domains == d], args.seed)
            for d in sorted(set(domains.tolist()))}
    rows["all"] = _compare(curves[BoxAlone.HEAD], curves[BoxAlone.DECODER], args.seed)
    for domain, row in rows.items():
        print(domain, {k: (round(v["mean"], 4), round(v["low"], 4), round(v["high"], 4))
                       for k, v in row["decoder_minus_head"].items()}, flush=True)
    record = {"benchmark": "box_alone_val", **provenance("cpu"), "head": found.path.stem, "head_sha256": found.sha256,
              "encoder": by_head.predictor.encoder.tag, "clicks": args.clicks, "seed": args.seed,
              "n_images": len(cases), "seconds": round(time.perf_counter() - started, 1), "domains": rows,
              "per_image": {"names": [f"{domain}/{case.name}" for domain, case in cases],
                            **{s.value: c.round(4).tolist() for s, c in curves.items()}}}
    path = result_path("box_alone_val", "cpu", args.variant or found.path.stem)
    write_json(path, record, args.allow_dirty)
    _plot(rows, path)


if __name__ == "__main__":
    main()

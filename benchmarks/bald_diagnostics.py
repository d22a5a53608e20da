"""Where BALD's clicks land, and why: diagnostics of a head's click policies on validation images of the *training*
split (the head card's ``data.val`` list), never on dev data.

For every click a policy places (interactions 2..``--clicks``, after a box or a first click), the script records,
against the current mask: whether the clicked pixel is an error of the mask (the user's answer contradicts it),
its distance to the predicted boundary, and the mutual information there as a fraction of the image's highest.
After the first prompt it also measures how the head's probability is calibrated (reliability bins), how well the
MI and predictive-entropy maps rank error pixels (ROC AUC), and how many error pixels lie within 5 px of the
predicted boundary. Writes ``benchmarks/results/bald_diagnostics_<head>_<device>.json`` and ``.png`` (``--variant``
another label than the head's name).

    python -m benchmarks.bald_diagnostics --head general --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage, stats
from tqdm.auto import tqdm

from benchmarks.head_validation import load_validation_split
from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.interaction.policies import Click, ClickContext, ClickPolicy, make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.sam.predictor import SliceEmbedding

BINS = (0.0, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 1.0)
NEAR_BOUNDARY_PX = 5


class RecordingPolicy(ClickPolicy):
    """Wraps a policy and records, for each click it places, what the click meant against ``truth``."""

    def __init__(self, inner: ClickPolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.uses_ground_truth = inner.uses_ground_truth
        self.requires_extras = inner.requires_extras
        self.truth: np.ndarray | None = None
        self.records: list[dict[str, float]] = []

    def choose(self, context: ClickContext) -> Click | None:
        click = self.inner.choose(context)
        if click is not None and self.truth is not None:
            x, y = click.xy
            mask = context.prediction.mask
            boundary_distance = ndimage.distance_transform_edt(mask) + ndimage.distance_transform_edt(~mask)
            mi = np.asarray(context.prediction.extras["mutual_information"])
            self.records.append({"on_error": float(mask[y, x] != self.truth[y, x]),
                                 "boundary_px": float(boundary_distance[y, x]),
                                 "mi_fraction": float(mi[y, x] / max(float(mi.max()), 1e-12))})
        return click


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` ranking ``labels`` (ties count half), by ranks."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = stats.rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    bins = record["calibration"]["box"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    left.plot([0, 1], [0, 1], color="grey", lw=0.8)
    for kind, style in (("box", "o-"), ("click", "s--")):
        left.plot(centres, [b["foreground_fraction"] for b in record["calibration"][kind]], style, label=f"{kind} first")
    left.set_xlabel("head probability (bin centre)")
    left.set_ylabel("fraction of foreground pixels")
    left.set_title("calibration after the first prompt", fontsize=9)
    left.legend(fontsize=8)
    policies = list(record["clicks"]["box"])
    width = 0.38
    for offset, kind in ((-width / 2, "box"), (width / 2, "click")):
        right.bar(np.arange(len(policies)) + offset, [record["clicks"][kind][p]["on_error"] for p in policies], width,
                  label=f"{kind} first")
    right.set_xticks(range(len(policies)), policies, fontsize=8)
    right.set_ylabel("clicks on an error pixel")
    right.set_title("where the policies click (interactions 2-5)", fontsize=9)
    right.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general", help="shipped head name or file (with its card beside it)")
    parser.add_argument("--policies", nargs="+", default=["oracle", "random_error", "bald", "entropy"])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the click model's device)")
    add_common_arguments(parser)
    args = parse_args(parser)
    if args.clicks < 2:
        raise ValueError(f"--clicks must be at least 2 (the first prompt and one click), got {args.clicks}")
    torch.set_num_threads(args.threads)
    head, model, items = load_validation_split(args.head, args.device)
    kinds = ("box", "click")
    recorders = {kind: {name: RecordingPolicy(make_policy(name)) for name in args.policies} for kind in kinds}
    pixels: dict[str, dict[str, list]] = {kind: defaultdict(list) for kind in kinds}
    aucs: dict[str, dict[str, list[float]]] = {kind: defaultdict(list) for kind in kinds}
    start = time.time()
    for n, item in enumerate(tqdm(items, desc="sessions", unit="image")):
        embedding = SliceEmbedding(item.embedding.to(args.device), item.original_hw)
        for kind in kinds:
            first = run_first_interaction(model, embedding, make_first_prompt(item.truth, kind,
                                                                              np.random.default_rng([0, n])))
            out = first.output
            error = out.mask != item.truth
            boundary_distance = ndimage.distance_transform_edt(out.mask) + ndimage.distance_transform_edt(~out.mask)
            pixels[kind]["probability"].append(out.probability.ravel()[::7])
            pixels[kind]["truth"].append(item.truth.ravel()[::7])
            if error.any():
                pixels[kind]["near"].append(float((boundary_distance[error] <= NEAR_BOUNDARY_PX).mean()))
            for key in ("mutual_information", "predictive_entropy"):
                auc = roc_auc(error.ravel()[::7], np.asarray(out.extras[key]).ravel()[::7])
                if np.isfinite(auc):
                    aucs[kind][key].append(auc)
            for recorder in recorders[kind].values():
                recorder.truth = item.truth
                run_session(model, embedding, item.truth, recorder, first, args.clicks, np.random.default_rng([0, n, 1]))
    calibration, clicks, detection = {}, {}, {}
    for kind in kinds:
        probability = np.concatenate(pixels[kind]["probability"])
        truth = np.concatenate(pixels[kind]["truth"])
        rows = []
        for low, high in zip(BINS[:-1], BINS[1:]):
            inside = (probability >= low) & ((probability < high) if high < 1.0 else (probability <= high))
            rows.append({"low": low, "high": high, "pixels": int(inside.sum()),
                         "foreground_fraction": round(float(truth[inside].mean()), 4) if inside.any() else None})
        calibration[kind] = rows
        detection[kind] = {f"{key}_auc": round(float(np.mean(v)), 4) for key, v in aucs[kind].items()}
        detection[kind][f"error_within_{NEAR_BOUNDARY_PX}px_of_predicted_boundary"] = round(
            float(np.mean(pixels[kind]["near"])), 4)
        clicks[kind] = {name: {"clicks": len(r.records),
                               "on_error": round(float(np.mean([c["on_error"] for c in r.records])), 4),
                               "median_boundary_px": round(float(np.median([c["boundary_px"] for c in r.records])), 2),
                               "mean_mi_fraction": round(float(np.mean([c["mi_fraction"] for c in r.records])), 4)}
                        for name, r in recorders[kind].items()}
    record = {"benchmark": "bald_diagnostics", "head": head.name, "head_sha256": head.sha256, "images": len(items),
              "domains": sorted({i.domain for i in items}), "interactions": args.clicks,
              "calibration": calibration, "error_detection": detection, "clicks": clicks,
              "seconds": round(time.time() - start, 1), **provenance(args.device)}
    path = result_path("bald_diagnostics", args.device, args.variant or head.name)
    write_json(path, record, args.allow_dirty)
    _plot(record, path)
    print(json.dumps({"error_detection": detection, "clicks": clicks}, indent=1))


if __name__ == "__main__":
    main()

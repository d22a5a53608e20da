"""Laplace ablation for the BALD policy: Hessian structure x prior tuning x number of samples x predictive.

For one trained head, the last layer's posterior is refitted for every variant on the same subsampled pixels of
simulated sessions on the head's *training* images, with the head's own likelihood temperature; the prior precision
is tuned by the evidence (``marglik``) or by a grid search on the validation images' probit NLL (``gridsearch``).
Each variant then drives the ``bald`` policy on the first ``--limit`` dev images of each domain (box first, then
``--clicks - 1`` clicks; the images are encoded once and shared by every variant). Reported per domain and variant:
mIoU@5, NoC@85 (the budget when never reached) and seconds per click.

Writes ``benchmarks/results/laplace_ablation_<head>_cpu.json`` (``--variant`` another label than the head's name)
and a PNG of mIoU@5 per variant.

    python -m benchmarks.laplace_ablation --head general --limit 8 --clicks 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.bayes import LastLayerLaplace
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.report import run_summary
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.head.checkpoint import backbone_signature, load_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.features import FeatureExtractor
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.head.train.trainer import collect_last_layer_rows
from monai_baldsam.head.train.data import card_cases, load_items
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor


@dataclass(frozen=True)
class Variant:
    structure: str
    tuning: str
    predictive: str  # "quadrature" (deterministic, probit-moderated mean) or "mc"
    samples: int

    @property
    def label(self) -> str:
        return f"{self.structure}/{self.tuning}/{self.predictive}{self.samples}"


VARIANTS = (
    *(Variant(s, t, "quadrature", 32) for s in ("full", "kron", "diag") for t in ("marglik", "gridsearch")),
    Variant("full", "marglik", "quadrature", 8),
    Variant("full", "marglik", "mc", 8),
    Variant("full", "marglik", "mc", 32),
)


def _plot(table: dict, path: Path, labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = sorted(table)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(labels)
    for n, label in enumerate(labels):
        values = [table[d][label]["miou@5"] for d in domains]
        ax.bar(np.arange(len(domains)) + n * width, values, width, label=label)
    ax.set_xticks(np.arange(len(domains)) + 0.4 - width / 2, domains)
    low = min(table[d][lab]["miou@5"] for d in domains for lab in labels)
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("mIoU@5 (box + 4 BALD clicks)")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("Laplace ablation: structure / prior tuning / predictive + samples")
    fig.tight_layout()
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=["busi", "kvasir", "ph2"])
    parser.add_argument("--limit", type=int, default=8, help="dev images per domain")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--fit-images", type=int, default=20, help="training images per domain for the fit")
    parser.add_argument("--threads", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    started = time.time()
    head_file = resolve_head(args.head)
    card = json.loads(head_file.path.with_suffix(".json").read_text())
    backbone = load_backbone("lite_medsam")
    trained = load_head(head_file.path, backbone, sha256=head_file.sha256)
    store = EmbeddingStore()
    train_items = load_items(card_cases(card, "train", args.fit_images), backbone, store, False, "fit images")
    val_items = load_items(card_cases(card, "val"), backbone, store, False, "validation images")
    extractor = FeatureExtractor(backbone, trained.config.features)
    rng = np.random.default_rng(0)
    train_rows = collect_last_layer_rows(extractor, trained.head, train_items, rng, 4, 1024, 4)
    val_rows = collect_last_layer_rows(extractor, trained.head, val_items, np.random.default_rng(1), 4, 1024, 4)
    predictor = SamPredictor(backbone, EmbeddingCache(max_items=256))  # shared: each dev image is encoded once
    cases = {d: discover_cases(domain_dir(d), limit=args.limit) for d in args.domains}
    table: dict[str, dict[str, dict]] = {d: {} for d in args.domains}
    fits: dict[str, dict] = {}
    for variant in VARIANTS:
        laplace = LastLayerLaplace.from_module(trained.head.last_layer, structure=variant.structure,
                                               signature=backbone_signature(backbone))
        laplace.temperature = trained.laplace.temperature
        laplace.fit(train_rows)
        fit_start = time.perf_counter()
        if variant.tuning == "marglik":
            prior = laplace.optimize_prior_precision("marglik")
        else:
            prior = laplace.optimize_prior_precision("gridsearch", val_loader=val_rows, grid_size=41)
        fits[variant.label] = {"prior_precision": float(prior.reshape(-1)[0]),
                               "tuning_seconds": round(time.perf_counter() - fit_start, 3),
                               "val_probit_nll": round(float(laplace.validation_nll(prior.reshape(1), val_rows)[0]), 6)}
        model = BayesianHeadClickModel(predictor, trained.head, laplace, uncertainty=variant.predictive,
                                       n_samples=variant.samples, seed=0, name=variant.label)
        for domain in args.domains:
            runs = evaluate(cases[domain], model, ["bald"], ["box"], args.clicks, seed=0,
                            progress=False)
            summary = run_summary(runs[("box", "bald")])
            table[domain][variant.label] = {"miou@5": round(summary["miou_at"]["5"], 4),
                                            f"miou@{args.clicks}": round(summary["miou_at"][str(args.clicks)], 4),
                                            "noc85": summary["noc85"],
                                            "seconds_per_click": round(summary["seconds_per_click"], 4)}
        print(variant.label, {d: table[d][variant.label]["miou@5"] for d in args.domains}, flush=True)
    labels = [v.label for v in VARIANTS]
    path = result_path("laplace_ablation", "cpu", args.variant or head_file.name)
    record = {"benchmark": "laplace_ablation", "head": head_file.name, "head_sha256": head_file.sha256,
              "dev_images_per_domain": args.limit, "clicks": args.clicks, "first": "box", "policy": "bald",
              "fit": {"train_images": len(train_items), "val_images": len(val_items),
                      "temperature": trained.laplace.temperature, "by_variant": fits},
              "table": table, "seconds": round(time.time() - started, 1), **provenance("cpu")}
    write_json(path, record, args.allow_dirty)
    _plot(table, path, labels)
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()

"""Does the app's active-learning strategy pick the right next image? MONAI Label's loop simulated on a training pool
(issue 17, section 3; the loop: :mod:`monai_baldsam.evaluation.active_learning`).

Per domain: the pool is the domain's training folder (``--pool`` images drawn with a fixed seed when given; never
dev), the starting head is the head of the domain's bundle (it never saw the domain), the seed set is
``--seed-images`` random images, then ``--rounds`` rounds label the top ``--per-round`` images of each strategy
(``random``, ``bald``, ``usam``; scored as the app scores them) and fine-tune the head as the app's trainer does.
After the seed and every round the head runs the domain's dev folder: the exact box, then oracle clicks, mIoU after
``--interactions``. Three seeds by default; the seed round is shared by the strategies of a seed.

Reported per domain: the seed-mean mIoU at each labelled count per strategy (with the range over seeds), the
labelled images each strategy needs to reach ``random``'s final mIoU (target: 25 % fewer), and 95 % paired bootstrap
intervals over dev images of (strategy - random) at each count (per-image IoU averaged over seeds). Writes
``benchmarks/results/active_learning_sim[_<variant>]_<device>.json`` and ``.png`` (mIoU against labelled images).

    python -m benchmarks.active_learning_sim --config configs/benchmarks/active_learning_sim_busbra.json --variant busbra
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.bundle.heads import bundle_head
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.active_learning import (
    STRATEGIES,
    ActiveLearningConfig,
    encode_cases,
    head_click_model,
    interactive_iou,
    label_savings,
    seed_round,
    simulate,
    strategy_curves,
)
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.trainer import TrainConfig
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.encoder_runtime import make_encoder

#: the bundle a team annotating each domain would start from (its head never saw the domain).
BUNDLES = {"busbra": "baldsam_ultrasound", "isic2017": "baldsam_skin_lesion", "busi": "baldsam_ultrasound",
           "clinicdb": "baldsam_polyp", "kvasir": "baldsam_polyp", "ph2": "baldsam_skin_lesion"}


def _pool_cases(domain: str, size: int | None) -> list[Any]:
    cases = discover_cases(domain_dir(domain, split="train"))
    if size is None or size >= len(cases):
        return cases
    picked = np.random.default_rng(0).choice(len(cases), size=size, replace=False)
    return [cases[i] for i in sorted(picked)]


def _intervals(curves: dict[str, np.ndarray], counts: list[int], resamples: int) -> list[dict[str, Any]]:
    rows = []
    for strategy in curves:
        if strategy == "random":
            continue
        for r, count in enumerate(counts[1:], start=1):
            diff = paired_bootstrap(curves[strategy][r], curves["random"][r], n_resamples=resamples, rng=r)
            rows.append({"strategy": strategy, "labelled": count, **diff.to_dict()})
    return rows


def run_domain(domain: str, args: argparse.Namespace, config: ActiveLearningConfig, workdir: Path) -> dict[str, Any]:
    backbone = load_backbone("lite_medsam", decoder="original")
    runner = make_encoder(backbone, args.encoder)
    store = EmbeddingStore(args.store)
    head = bundle_head(BUNDLES[domain])
    pool = encode_cases(_pool_cases(domain, args.pool), backbone, store, runner, desc=f"{domain} pool")
    dev = encode_cases(discover_cases(domain_dir(domain), limit=args.dev_limit), backbone, store, runner,
                       desc=f"{domain} dev")
    before = interactive_iou(head_click_model(backbone, head.path), dev, config.interactions)
    per_seed: dict[str, dict[int, np.ndarray]] = {s: {} for s in args.strategies}
    runs: dict[str, dict[str, Any]] = {s: {} for s in args.strategies}
    k = config.interactions
    for seed in args.seeds:
        start = seed_round(pool, dev, head.path, workdir / domain, backbone, store, runner, config, seed)
        print(f"{domain} seed {seed}: {len(start.labelled)} labels, mIoU@{k} {start.dev_iou[:, k - 1].mean():.4f} "
              f"({start.train_seconds:.0f} s)", flush=True)
        for strategy in args.strategies:
            def report(state: Any, strategy: str = strategy) -> None:
                print(f"{domain} seed {seed} {strategy}: {len(state.labelled)} labels, mIoU@{k} "
                      f"{state.dev_iou[:, k - 1].mean():.4f} ({state.train_seconds:.0f} s, best epoch "
                      f"{state.best_epoch})", flush=True)
            rounds = simulate(strategy, start, pool, dev, workdir / domain, backbone, store, runner, config, seed,
                              on_round=report)
            per_seed[strategy][seed] = np.stack([state.dev_iou[:, k - 1] for state in rounds])
            runs[strategy][str(seed)] = [state.record(k) for state in rounds]
    counts = config.labelled_counts
    curves = strategy_curves(per_seed, counts)
    seed_means = {s: np.array([[per_seed[s][seed][r].mean() for r in range(len(counts))] for seed in args.seeds])
                  for s in args.strategies}
    return {
        "bundle": BUNDLES[domain], "start_head": {"file": head.path.name, "sha256": head.sha256},
        "pool": {"images": len(pool), "of": len(discover_cases(domain_dir(domain, split="train")))},
        "dev_images": len(dev), "dev_names": [item.name for item in dev],
        f"start_head_miou@{k}": round(float(before[:, k - 1].mean()), 4),
        "curves": {s: {"labelled": counts, f"miou@{k}": [round(float(v), 4) for v in curves[s].mean(axis=1)],
                       "seed_min": [round(float(v), 4) for v in seed_means[s].min(axis=0)],
                       "seed_max": [round(float(v), 4) for v in seed_means[s].max(axis=0)]} for s in curves},
        "savings": label_savings(curves, counts), "paired_vs_random": _intervals(curves, counts, args.resamples),
        "runs": runs}


def _plot(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = list(record["domains"])
    k = record["config"]["interactions"]
    fig, axes = plt.subplots(1, len(domains), figsize=(5.2 * len(domains), 4.0), squeeze=False)
    for ax, domain in zip(axes.flat, domains):
        for n, (strategy, curve) in enumerate(record["domains"][domain]["curves"].items()):
            x = curve["labelled"]
            ax.plot(x, curve[f"miou@{k}"], "o-", color=f"C{n}", label=strategy)
            ax.fill_between(x, curve["seed_min"], curve["seed_max"], color=f"C{n}", alpha=0.15)
        target = record["domains"][domain]["savings"]["random"]["target_miou"]
        ax.axhline(target, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("labelled training images")
        ax.set_ylabel(f"dev mIoU@{k} (box + {k - 1} oracle clicks)")
        ax.set_title(f"{domain} (mean of {len(record['seeds'])} seeds; band: seed range)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["busbra", "isic2017"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pool", type=int, default=None, help="training images per domain in the pool (seeded draw)")
    parser.add_argument("--dev-limit", type=int, default=None, help="first K dev images (smoke runs only)")
    parser.add_argument("--seed-images", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--interactions", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="the app trainer's max_epochs")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="the app trainer's max_minutes")
    parser.add_argument("--encoder", default="auto", help="the image encoder's runtime (default: the CLI's, auto)")
    parser.add_argument("--store", default=None, help="embedding store folder (default: $BALDSAM_CACHE/embeddings)")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    if "random" not in args.strategies:
        raise ValueError("random is the baseline: keep it among --strategies")
    torch.set_num_threads(args.threads)
    config = ActiveLearningConfig(seed_images=args.seed_images, per_round=args.per_round, rounds=args.rounds,
                                  interactions=args.interactions,
                                  train=TrainConfig(epochs=args.epochs, max_train_seconds=60.0 * args.max_minutes))
    started = time.time()
    record: dict[str, Any] = {"benchmark": "active_learning_sim", "config": config.to_dict(), "seeds": args.seeds,
                              "strategies": args.strategies, "encoder": args.encoder, "domains": {}}
    with tempfile.TemporaryDirectory(prefix="baldsam-al-") as scratch:
        for domain in args.domains:
            record["domains"][domain] = run_domain(domain, args, config, Path(scratch))
            for strategy, saved in record["domains"][domain]["savings"].items():
                print(f"{domain} {strategy}: reaches random's final {saved['target_miou']} at {saved['labels']} "
                      f"labels (saving {saved['saving']})", flush=True)
    record.update(seconds=round(time.time() - started, 1), **provenance("cpu"))
    path = result_path("active_learning_sim", "cpu", args.variant)
    write_json(path, record, args.allow_dirty)
    _plot(record, path)


if __name__ == "__main__":
    main()

"""The click-trained decoder against LiteMedSAM's original one on the full dev folders (issue: a click-native model).

Protocol (what ``baldsam evaluate`` does with default settings, no ``--head``): each image encoded once (the CLI's
default encoder runtime), box first and click first, 10 interactions with oracle clicks and the previous logits fed
back, seed 0. The original decoder is run on the same embeddings with the box alone, for the "box alone never more
than 0.005 below the original" criterion (paired bootstrap over images). Writes
``benchmarks/results/decoder_dev[_<variant>]_cpu.json`` and ``.png``.

With ``--head NAME`` the model under test is that Bayesian head on the decoder it was trained with (its MAP mask), the
record's variant the head's file name; ``--box-alone decoder`` has the decoder answer a box without clicks
(:class:`~monai_baldsam.head.click_model.BoxAlone`; default: the head file's setting), variant ``<head>_box_decoder``.

    python -m benchmarks.decoder_dev [--domains busi,busbra,...] [--encoder auto] [--head general_v2]
        [--box-alone head|decoder] [--variant LABEL]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import data_root
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.head.click_model import BoxAlone, load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.interaction.metrics import summarize_curves
from monai_baldsam.interaction.model import ClickModel, SamClickModel, load_click_model
from monai_baldsam.io.cases import discover_cases

DOMAINS = ("busi", "busbra", "kvasir", "clinicdb", "ph2", "isic2017", "ct2d")
TARGETS = {"box_miou5": 0.93, "click_miou5": 0.90, "noc90_box": 3.0, "box_alone_drop": 0.005}


def _domain(domain: str, new: ClickModel, original: SamClickModel, clicks: int, seed: int) -> dict:
    cases = discover_cases(data_root() / "dev" / domain)
    started = time.perf_counter()
    runs = evaluate(cases, new, ["oracle"], ["box", "click"], clicks, seed, progress=True)
    base = evaluate(cases, original, ["oracle"], ["box"], 1, seed, progress=False)
    box, click = runs[("box", "oracle")].iou_curves(), runs[("click", "oracle")].iou_curves()
    original_box = base[("box", "oracle")].iou_curves()[:, 0]
    row = {
        "n_images": len(cases), "seconds": round(time.perf_counter() - started, 1),
        "box": summarize_curves(box), "click": summarize_curves(click),
        "original_box_alone": float(original_box.mean()),
        "box_alone_minus_original": paired_bootstrap(box[:, 0], original_box, rng=seed).to_dict(),
        "per_image": {"names": [c.name for c in cases], "box": box.round(4).tolist(), "click": click.round(4).tolist(),
                      "original_box_alone": original_box.round(4).tolist()},
    }
    row["meets"] = {
        "box_miou5": row["box"]["miou_at"]["5"] >= TARGETS["box_miou5"],
        "click_miou5": row["click"]["miou_at"]["5"] >= TARGETS["click_miou5"],
        "noc90_box": row["box"]["noc90"] <= TARGETS["noc90_box"],
        "box_alone": row["box"]["miou_at"]["1"] >= row["original_box_alone"] - TARGETS["box_alone_drop"],
    }
    return row


def _plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, first in zip(axes, ("box", "click")):
        for domain, row in rows.items():
            curve = row[first]["miou_curve"]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=domain)
        ax.axhline(TARGETS[f"{first}_miou5"], color="grey", ls=":", lw=1)
        ax.set_title(f"{first} first, oracle clicks")
        ax.set_xlabel("interaction")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mIoU (dev)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--encoder", default="auto")
    parser.add_argument("--decoder", default="default", help="the decoder under test (default: the shipped default)")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head", default=None, help="a Bayesian head (shipped name or file) on its own decoder")
    parser.add_argument("--box-alone", choices=[b.value for b in BoxAlone], default=None,
                        help="who answers a box without clicks (default: the head file's setting)")
    add_common_arguments(parser)
    args = parse_args(parser)
    if args.head:
        found = resolve_head(args.head)
        new = load_head_click_model(found.path, head_sha256=found.sha256, encoder=args.encoder, cache_items=128,
                                    box_alone=args.box_alone)
        suffix = "_box_decoder" if args.box_alone == BoxAlone.DECODER.value else ""
        args.variant = args.variant or f"{found.path.stem}{suffix}"
    else:
        new = load_click_model(decoder=args.decoder, encoder=args.encoder, cache_items=128)
    original = load_click_model(decoder="original", cache_items=1)
    original.predictor = type(new.predictor)(original.predictor.backbone, new.predictor.cache, new.predictor.encoder)
    rows = {}
    for domain in args.domains.split(","):
        rows[domain] = _domain(domain, new, original, args.clicks, args.seed)
        new.predictor.cache.clear()
        print(domain, {k: rows[domain][k]["miou_at"] for k in ("box", "click")}, "NoC90",
              round(rows[domain]["box"]["noc90"], 2), "original box", round(rows[domain]["original_box_alone"], 4),
              flush=True)
    record = {"benchmark": "decoder_dev", **provenance("cpu"), "model": new.signature, "encoder": new.predictor.encoder.tag,
              "clicks": args.clicks, "seed": args.seed, "targets": TARGETS, "domains": rows}
    path = result_path("decoder_dev", "cpu", args.variant)
    write_json(path, record, args.allow_dirty)
    _plot(rows, path)


if __name__ == "__main__":
    main()

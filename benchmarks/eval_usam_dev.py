"""UncertainSAM heads on dev data: how well the predicted IoU ranks masks, what the stop rule saves, what it costs.

Per domain, the first ``--limit`` dev images (sorted by name), each encoded once. Prompt states per image:

* plain LiteMedSAM decoder (``sam``): the ground-truth box and two boxes jittered by 10 % and 25 % (seeded);
* the Bayesian head ``--head`` (``head``): two sessions of the evaluation's simulator with oracle clicks and mask
  feedback, one after the ground-truth box and one after the deepest click, ``--clicks`` interactions each; every
  interaction is a state.

For every state: the true IoU at slice size, the heads' predicted IoU, and the baselines (SAM's own IoU prediction
from the same decoder call; minus the mean predictive entropy over the image, of the head's predictive or of SAM's
probability; minus the head's mean BALD, head states only). Scores: Spearman's rho and the pairwise ranking AUC
(:mod:`monai_baldsam.usam.metrics`) against the true IoU, per domain, over all states and over head states. The gap
heads are scored the same way against the true prompt gap (IoU with the box + dense clicks, or the box alone when
better, minus the IoU) and task gap (best multimask output minus the judged mask).

Stop rule (``--targets``): on the head sessions, stop once the predicted IoU reaches the target; clicks saved and
stops with a true IoU below the target (:func:`monai_baldsam.usam.stopping_outcomes`).

Cost: on the first ``--cost-images`` images per domain, interleaved ``--repeats`` times, medians: a plain decoder
call (box), the same call judged by the heads (token hooks + heads), a head click (box + click + previous mask)
and the same judged; ratios to the plain decoder call.

Writes ``benchmarks/results/eval_usam_dev[_<variant>]_cpu.json`` and ``.png``.

    python -m benchmarks.eval_usam_dev --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.bayes.acquisition import binary_entropy
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import jitter_boxes, mask_boxes
from monai_baldsam.interaction.metrics import iou_score
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.interaction.policies import make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.geometry import postprocess_low_res_logits
from monai_baldsam.usam import StopRule, UsamModel, decoder_readout, load_usam, resolve_usam, stopping_outcomes
from monai_baldsam.usam.train.data import dense_prompt, image_rng
from monai_baldsam.usam.metrics import ranking_auc, spearman

DOMAINS = ("busi", "kvasir", "ph2")
METHODS = ("usam", "sam_iou", "neg_mean_entropy", "neg_mean_bald")


class Recorder:
    """A UsamModel that keeps (quality, output, tokens) of every prediction."""

    def __init__(self, model: UsamModel) -> None:
        self.model = model
        self.records: list = []

    signature = property(lambda self: self.model.signature)

    def encode(self, image):
        return self.model.encode(image)

    def predict(self, embedding, points, labels, box, mask_input):
        result = self.model.assess(embedding, points, labels, box, mask_input)
        self.records.append(result)
        return result.output


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float(iou_score(mask[None], truth[None])[0])


def _state(result, truth: np.ndarray, decoder, img_size: int, dense_iou: float) -> dict:
    """True and predicted numbers of one assessed prediction."""
    out = result.output
    iou = _iou(out.mask, truth)
    sam_iou, masks = decoder_readout(decoder, result.tokens)
    full = postprocess_low_res_logits(masks[:, 1:], img_size, truth.shape)[0] > 0
    task = max([iou] + [_iou(m.numpy(), truth) for m in full]) - iou
    if "predictive_entropy" in out.extras:
        entropy = float(np.mean(out.extras["predictive_entropy"]))
        bald = float(np.mean(out.extras["mutual_information"]))
    else:
        entropy = float(binary_entropy(torch.as_tensor(out.probability, dtype=torch.float64)).mean())
        bald = float("nan")
    q = result.quality
    return {"true_iou": iou, "true_prompt_gap": dense_iou - iou, "true_task_gap": task,
            "usam": q.iou, "usam_prompt_gap": q.prompt_gap, "usam_task_gap": q.task_gap,
            "sam_iou": float(sam_iou[0, 0]), "neg_mean_entropy": -entropy, "neg_mean_bald": -bald}


def _scores(states: list[dict]) -> dict:
    true = np.array([s["true_iou"] for s in states])
    out: dict = {"n": len(states)}
    for method in METHODS:
        score = np.array([s[method] for s in states], dtype=np.float64)
        out[method] = {"spearman": round(spearman(score, true), 4), "rank_auc": round(ranking_auc(score, true), 4)}
    for gap in ("prompt_gap", "task_gap"):
        t = np.array([s[f"true_{gap}"] for s in states])
        p = np.array([s[f"usam_{gap}"] for s in states])
        out[gap] = {"spearman": round(spearman(p, t), 4), "mae": round(float(np.mean(np.abs(p - t))), 4),
                    "true_mean": round(float(t.mean()), 4)}
    return out


def _cost(sam_usam: UsamModel, head_usam: UsamModel, embedding, truth: np.ndarray, repeats: int) -> dict:
    plain, head = sam_usam.click_model, head_usam.click_model
    box = mask_boxes(truth[None])[0]
    ys, xs = np.nonzero(truth)
    click, label = np.array([[xs[len(xs) // 2], ys[len(ys) // 2]]], dtype=np.float64), np.array([1])
    previous = plain.predict(embedding, None, None, box, None).low_res_logits
    calls = {"plain_decoder": lambda: plain.predict(embedding, None, None, box, None),
             "plain_decoder+usam": lambda: sam_usam.assess(embedding, None, None, box, None),
             "head_click": lambda: head.predict(embedding, click, label, box, previous),
             "head_click+usam": lambda: head_usam.assess(embedding, click, label, box, previous)}
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {**{f"{k}_ms": round(1e3 * v, 2) for k, v in med.items()},
            "ratio_plain+usam": round(med["plain_decoder+usam"] / med["plain_decoder"], 3),
            "ratio_usam_extra_on_head": round((med["head_click+usam"] - med["head_click"]) / med["plain_decoder"], 3)}


def _plot(per_domain: dict, stopping: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(per_domain) + 1, figsize=(4.2 * (len(per_domain) + 1), 4.0))
    for ax, (domain, states) in zip(axes, per_domain.items()):
        true = [s["true_iou"] for s in states]
        ax.scatter(true, [s["sam_iou"] for s in states], s=7, alpha=0.5, label="SAM IoU prediction", c="tab:gray")
        ax.scatter(true, [s["usam"] for s in states], s=7, alpha=0.6, label="UncertainSAM", c="tab:blue")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(title=domain, xlabel="true IoU", ylabel="predicted IoU", xlim=(0, 1.02), ylim=(0, 1.1))
        ax.legend(fontsize=7)
    ax = axes[-1]
    early = ax.twinx()
    for n, (domain, by_target) in enumerate(stopping.items()):
        targets = sorted(by_target, key=float)
        x = [float(t) for t in targets]
        ax.plot(x, [by_target[t]["mean_clicks_saved"] for t in targets], marker="o", color=f"C{n}",
                label=f"{domain}: clicks saved")
        early.plot(x, [100 * by_target[t]["too_early_fraction"] for t in targets], marker="x", ls=":",
                   color=f"C{n}", label=f"{domain}: stopped too early")
    ax.set(title="stop rule (head sessions)", xlabel="target IoU", ylabel="mean clicks saved (solid)")
    early.set_ylabel("% of stops too early (dotted)")
    early.set_ylim(0, 100)
    ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def _finite(value):
    """NaN (undefined scores, BALD of plain-decoder states) as JSON null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _stopping(curves: dict[str, tuple[list, list]], targets: list[float]) -> dict[str, dict]:
    """The stop rule at each target IoU on the sessions' predicted and true IoU curves, by first prompt."""
    out = {}
    for target in targets:
        by_first = {first: stopping_outcomes(np.array(p), np.array(t), StopRule(target))
                    for first, (p, t) in curves.items()}
        out[f"{target:g}"] = {
            "by_first": {f: {k: v for k, v in o.items() if k not in ("stops", "clicks_saved", "oracle_stop")}
                         for f, o in by_first.items()},
            "mean_clicks_saved": round(float(np.mean([o["mean_clicks_saved"] for o in by_first.values()])), 3),
            "too_early_fraction": round(sum(o["too_early"] for o in by_first.values())
                                        / max(1, sum(o["stopped"] for o in by_first.values())), 3)}
    return out


def _cost_summary(costs: list[dict]) -> dict:
    """The per-image cost rows and their median ratios."""
    return {"rows": costs,
            "median_ratio_plain+usam": round(float(np.median([c["ratio_plain+usam"] for c in costs])), 3),
            "median_ratio_usam_extra_on_head": round(float(np.median(
                [c["ratio_usam_extra_on_head"] for c in costs])), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usam", default="general")
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS))
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--targets", nargs="+", type=float, default=[0.8, 0.85, 0.9])
    parser.add_argument("--cost-images", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    started = time.time()
    found = resolve_head(args.head)
    head_model = load_head_click_model(found.path, head_sha256=found.sha256)
    head_usam = load_usam(args.usam, click_model=head_model)
    sam_usam = load_usam(args.usam, click_model=SamClickModel(head_model.predictor))
    backbone = head_model.predictor.backbone
    decoder, img_size = backbone.mask_decoder, backbone.img_size
    oracle = make_policy("oracle")
    per_domain: dict[str, list[dict]] = {}
    table, stopping, costs = {}, {}, []
    for domain in args.domains:
        states: list[dict] = []
        curves: dict[str, tuple[list, list]] = {"box": ([], []), "click": ([], [])}
        cases = discover_cases(domain_dir(domain), limit=args.limit)
        for n, case in enumerate(tqdm(cases, desc=domain, unit="image")):
            loaded = load_case(case)
            truth = loaded.truth
            embedding = head_model.encode(loaded.image)
            rng = image_rng(0, case.name)
            box = mask_boxes(truth[None])[0]
            d_box, d_clicks, d_labels = dense_prompt(truth, rng, 3)
            box_sam = sam_usam.assess(embedding, None, None, box, None)
            dense_sam = max(_iou(box_sam.output.mask, truth),
                            _iou(sam_usam.click_model.predict(embedding, d_clicks, d_labels, d_box, None).mask, truth))
            box_head = head_usam.click_model.predict(embedding, None, None, box, None)
            dense_head = max(_iou(box_head.mask, truth),
                             _iou(head_model.predict(embedding, d_clicks, d_labels, d_box, None).mask, truth))
            states.append({**_state(box_sam, truth, decoder, img_size, dense_sam), "path": "sam", "image": case.name})
            for fraction in (0.1, 0.25):
                jittered = jitter_boxes(box[None], truth.shape, fraction, rng)[0]
                result = sam_usam.assess(embedding, None, None, jittered, None)
                states.append({**_state(result, truth, decoder, img_size, dense_sam), "path": "sam",
                               "image": case.name})
            for first in ("box", "click"):
                recorder = Recorder(head_usam)
                prompt = make_first_prompt(truth, first, rng)
                session = run_session(recorder, embedding, truth, oracle,
                                      run_first_interaction(recorder, embedding, prompt), args.clicks, rng)
                session_states = [{**_state(r, truth, decoder, img_size, dense_head), "path": "head",
                                   "first": first, "interaction": k + 1, "image": case.name}
                                  for k, r in enumerate(recorder.records)]
                states += session_states
                pred = [s["usam"] for s in session_states]
                pred += [pred[-1]] * (args.clicks - len(pred))  # an early "perfect" stop keeps the last mask
                curves[first][0].append(pred)
                curves[first][1].append(session.iou.tolist())
            if n < args.cost_images:
                costs.append({"domain": domain, "image": case.name, "image_hw": list(truth.shape),
                              **_cost(sam_usam, head_usam, embedding, truth, args.repeats)})
                print(costs[-1], flush=True)
        per_domain[domain] = states
        table[domain] = {"all": _scores(states), "head": _scores([s for s in states if s["path"] == "head"]),
                         "sam": _scores([s for s in states if s["path"] == "sam"])}
        stopping[domain] = _stopping(curves, args.targets)
        print(domain, {k: {m: table[domain][k][m] for m in METHODS} for k in ("all", "head")}, flush=True)
    usam_file = resolve_usam(args.usam)
    record = {"benchmark": "eval_usam_dev", "usam": usam_file.name, "usam_sha256": usam_file.sha256,
              "head": found.name, "head_sha256": found.sha256, "dev_images_per_domain": args.limit,
              "clicks": args.clicks, "seed": 0, "protocol": __doc__, "table": table, "stopping": stopping,
              "cost": _cost_summary(costs),
              "states": per_domain, "seconds": round(time.time() - started, 1), **provenance("cpu")}
    path = result_path("eval_usam_dev", "cpu", args.variant)
    write_json(path, _finite(record), args.allow_dirty)
    _plot(per_domain, stopping, path)


if __name__ == "__main__":
    main()

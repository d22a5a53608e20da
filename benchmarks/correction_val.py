"""Corrections on validation volumes: what a re-propagation does with the slices past the point where the stop rule
rejects its new result (issue 18).

A correction on a volume re-segments the clicked slice and re-propagates outward from it. When the stop rule rejects
the new result on some slice, the results beyond it came from the earlier run through the clicked slice. The rule
``clear`` removes them (the session's behaviour so far); ``keep`` leaves them, and the rejected slice's earlier
result, as they were (:attr:`~monai_baldsam.volume.PropagationConfig.keep_past_rejection`). A correction that leaves
the clicked slice empty clears what came through it under both.

The volumes are the validation splits of decoder training configurations (``--decoder-configs``): never dev. On
each, the CLI's default volume model (LiteMedSAM on its default decoder, no head; ``--head`` for one) runs the
evaluation's oracle session under each rule: one box on the truth's central slice, then ``--clicks - 1`` oracle
clicks, Dice after every interaction. Per group of volumes (one configuration) and over all of them: the mean Dice
curve per rule and the 95 % paired bootstrap interval of keep minus clear after the last interaction and averaged
over the corrections (interactions 2 to ``--clicks``).

Writes ``benchmarks/results/correction_val[_<variant>]_cpu.json``.

    python -m benchmarks.correction_val --config configs/benchmarks/correction_val.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from benchmarks.small_structure_val import validation_volumes
from monai_baldsam.evaluation.runner import session_rng
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.evaluation.volumes import run_volume_session
from monai_baldsam.io import load_image, load_mask
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.volume.propagation import PropagationConfig

#: the rules compared: what a re-propagation rejected on a slice does with the earlier results beyond it
RULES: dict[str, PropagationConfig] = {"clear": PropagationConfig(),
                                       "keep": PropagationConfig(keep_past_rejection=True)}


def _compare(rows: list[dict[str, Any]], clicks: int, resamples: int) -> dict[str, Any]:
    """Mean Dice curves per rule and keep minus clear, paired over the volumes of ``rows``."""
    curves = {rule: np.array([row["dice"][rule] for row in rows]) for rule in RULES}
    out: dict[str, Any] = {"n_volumes": len(rows),
                           "mdice_curve": {rule: np.round(c.mean(axis=0), 4).tolist() for rule, c in curves.items()},
                           "volumes_changed": int(sum(row["dice"]["keep"] != row["dice"]["clear"] for row in rows))}
    if len(rows) >= 2:
        for name, pick in (("last", lambda c: c[:, clicks - 1]), ("corrections_mean", lambda c: c[:, 1:].mean(1))):
            diff = paired_bootstrap(pick(curves["keep"]), pick(curves["clear"]), resamples, 0.95, rng=0)
            out[f"keep_minus_clear_{name}"] = diff.to_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder-configs", nargs="+",
                        default=["configs/decoder_brain_mri_v1.json", "configs/decoder_hippocampus_v1.json"],
                        help="decoder training configurations whose validation volumes are measured")
    parser.add_argument("--head", default=None, help="a head for the clicked slices (default: none, as the CLI)")
    parser.add_argument("--clicks", type=int, default=5, help="interactions: the box, then clicks")
    parser.add_argument("--encoder", default="auto")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    add_common_arguments(parser)
    args = parse_args(parser)
    if args.clicks < 2:
        raise SystemExit("--clicks must be at least 2: the rules differ only after a correction")
    torch.set_num_threads(args.threads)
    started = time.time()
    groups = {Path(config).stem: validation_volumes(config) for config in args.decoder_configs}
    cache = EmbeddingCache()
    segmenter = Segmenter(head=args.head, encoder=args.encoder, cache=cache)
    rows: dict[str, list[dict[str, Any]]] = {group: [] for group in groups}
    for group, cases in groups.items():
        for case in tqdm(cases, desc=group, unit="volume"):
            image = load_image(case.image)
            truth = load_mask(case.mask, reference=image)[0].numpy().astype(bool)
            dice = {}
            for rule, config in RULES.items():
                result = run_volume_session(segmenter, image, truth, "oracle", args.clicks,
                                            session_rng(0, case.name, "volume:oracle"), case.name, "central", config)
                dice[rule] = [round(d, 4) for d in result.dice]
            rows[group].append({"volume": case.name, "dice": dice})
            cache.clear()  # one volume's slices at a time: both rules share its embeddings
    everything = [row for group_rows in rows.values() for row in group_rows]
    summary = {**{group: _compare(r, args.clicks, args.resamples) for group, r in rows.items()},
               "all": _compare(everything, args.clicks, args.resamples)}
    record = {"benchmark": "correction_val", "split": "validation", "decoder_configs": list(args.decoder_configs),
              "model": segmenter.predictor.backbone.signature, "head": args.head,
              "encoder": segmenter.predictor.encoder.tag, "clicks": args.clicks, "policy": "oracle",
              "box_on": "central", "rules": {rule: {"keep_past_rejection": c.keep_past_rejection}
                                             for rule, c in RULES.items()},
              "summary": summary, "rows": rows, "seconds": round(time.time() - started, 1), **provenance("cpu")}
    out = write_json(result_path("correction_val", "cpu", args.variant), record, args.allow_dirty)
    for group, entry in summary.items():
        curves = "; ".join(f"{rule} {' '.join(f'{v:.3f}' for v in c)}" for rule, c in entry["mdice_curve"].items())
        print(f"{group}: {entry['n_volumes']} volumes, {entry['volumes_changed']} changed; {curves}; "
              f"keep-clear last {entry.get('keep_minus_clear_last')}")
    print(out)


if __name__ == "__main__":
    main()

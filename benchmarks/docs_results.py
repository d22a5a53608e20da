"""The docs' results pages, generated from the benchmark records in ``benchmarks/results/*.json``.

Every number on a results page is read from a JSON file here, never typed in: re-running a benchmark and building
the docs updates its page. One page per benchmark (the ``benchmark`` field of a record, or for older records without
one the benchmark its file name starts with: ``<benchmark>[_<variant>]_<device>.json``, the rule of
:func:`benchmarks.results_io.result_path`), each with a section per results file (its provenance: commit, dirty
tree, device, command, run time; its tables; its chart when a PNG of the same name exists), and an index of every
file. A record of a benchmark this script does not know still gets a page, a table of its scalar fields.

The pages are written into ``docs/results/`` (generated, not committed: ``.gitignore`` lists it) by the MkDocs hook
below (``hooks:`` in ``mkdocs.yml``), so ``mkdocs build`` and ``mkdocs serve`` always render the current JSON and a
page can never disagree with its record. To write them without building the site::

    python -m benchmarks.docs_results [--results benchmarks/results] [--out docs/results]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from benchmarks.docs_performance import performance_page
from monai_baldsam.io.atomic import atomic_write_bytes

__all__ = ["REPO", "RESULTS", "OUT", "PAGES", "ResultFile", "load_results", "page_name", "render_pages", "write_pages",
           "on_config", "main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
OUT = REPO / "docs" / "results"
NAV_SECTION = "Results"

Record = dict[str, Any]


@dataclass(frozen=True)
class ResultFile:
    """One ``benchmarks/results/<stem>.json``: its record, the benchmark it belongs to, its chart if any."""

    stem: str
    record: Record
    benchmark: str
    png: Path | None


def _benchmark_of(stem: str, record: Record) -> str:
    """The record's ``benchmark``; else the longest known benchmark its name starts with; else the name without its
    last part (the device)."""
    if isinstance(record.get("benchmark"), str):
        return record["benchmark"]
    known = [name for name in PAGES if stem == name or stem.startswith(name + "_")]
    if known:
        return max(known, key=len)
    return stem.rsplit("_", 1)[0]


def load_results(results: Path = RESULTS) -> list[ResultFile]:
    """Every ``*.json`` record in ``results``, sorted by file name."""
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}: run from the repository root or pass --results")
    files = []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}): fix or re-run the benchmark that wrote it") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path} holds a {type(record).__name__}, not a JSON object: not a benchmark record")
        png = path.with_suffix(".png")
        files.append(ResultFile(path.stem, record, _benchmark_of(path.stem, record), png if png.is_file() else None))
    return files


# ---------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def _pair(a: Any, b: Any, digits: int = 3) -> str:
    return f"{_num(a, digits)} / {_num(b, digits)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return (value if isinstance(value, str) else _num(value)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _device(record: Record) -> str:
    info = record.get("device_info") or record.get("device") or {}
    if isinstance(info, str):
        return info
    name = str(info.get("device", "?"))
    detail = info.get("gpu") or (f"{info['cpu_count']} CPU cores" if info.get("cpu_count") else None)
    threads = info.get("torch_threads")
    plural = "" if threads == 1 else "s"
    return name + (f" ({detail})" if detail else "") + (f", {threads} torch thread{plural}" if threads else "")


def _commit(record: Record) -> str:
    commit = record.get("git_commit") or record.get("commit") or "unknown"
    dirty = record.get("git_dirty")
    state = {True: "uncommitted changes", False: "clean tree", None: "tree state not recorded"}.get(dirty, str(dirty))
    return f"`{str(commit)[:7]}` ({state})"


def _provenance(item: ResultFile) -> str:
    record = item.record
    lines = [f"* file: `benchmarks/results/{item.stem}.json`", f"* commit: {_commit(record)}",
             f"* device: {_device(record)}"]
    if record.get("seconds") is not None:
        lines.append(f"* run time: {_num(record['seconds'], 1)} s")
    if record.get("command"):
        lines.append(f"* command: `{record['command']}`")
    if record.get("git_dirty_files"):
        lines.append("* uncommitted changes: " + ", ".join(f"`{name}`" for name in record["git_dirty_files"]))
    if record.get("git_note"):
        lines.append(f"* note: {record['git_note']}")
    return "\n".join(lines) + "\n"


def _png(item: ResultFile) -> str:
    return f"\n![{item.stem}](img/{item.stem}.png)\n" if item.png is not None else ""


def _curve(values: Sequence[float]) -> str:
    return ", ".join(_num(v) for v in values)


# ---------------------------------------------------------------- renderers (one per benchmark)


def _eval_heads_dev(item: ResultFile) -> str:
    record = item.record
    policies: list[str] = list(record.get("policies", []))
    rows, noc_rows = [], []
    for head, domains in record["table"].items():
        for domain, firsts in domains.items():
            for first, by_policy in firsts.items():
                names = policies or list(by_policy)
                cells = [_pair(by_policy[p].get("miou@5"), by_policy[p].get("miou@10")) if p in by_policy else "-"
                         for p in names]
                first_alone = next(iter(by_policy.values()))["miou_curve"][0]
                rows.append([head, domain, first, *cells, first_alone])
                noc_rows.append([head, domain, first, *(_num(by_policy[p].get("noc85"), 2) if p in by_policy else "-"
                                                        for p in names)])
    head_file = ", ".join(f"`{name}` = `{h['file']}` (SHA-256 `{h['sha256'][:12]}...`)"
                          for name, h in record.get("heads", {}).items())
    return (f"{record.get('dev_images_per_domain', '?')} dev images per domain, {record.get('clicks', '?')} "
            f"interactions, seed {record.get('seed', '?')}; {record.get('protocol', '')}. Head: {head_file}.\n\n"
            "Cells: mIoU@5 / mIoU@10; the last column is the first prompt alone.\n\n"
            + _table(["head", "domain", "first", *(policies or ["policies"]), "first prompt alone"], rows)
            + "\nNoC85 (the budget when never reached):\n\n"
            + _table(["head", "domain", "first", *(policies or ["policies"])], noc_rows))


def _eval_baselines(item: ResultFile) -> str:
    record = item.record
    rows = []
    for domain, result in record["domains"].items():
        runs = {row["run"]: row for row in result["table"]}
        box_only, box, click = runs.get("box only", {}), runs.get("box + oracle", {}), runs.get("click + oracle", {})

        def at(run: Record, k: str) -> Any:
            return run.get("miou_at", {}).get(k)

        rows.append([domain, result.get("n_images"), box_only.get("miou@1"),
                     " / ".join(_num(at(box, k), 2) for k in ("5", "10", "20")),
                     f"{_num(box.get('noc85'), 1)} ({box.get('failures85')})", box.get("auc"),
                     " / ".join(_num(at(click, k), 2) for k in ("1", "5", "10", "20")),
                     f"{_num(click.get('noc85'), 1)} ({click.get('failures85')})", click.get("auc"),
                     _num(result.get("seconds"), 1)])
    return (f"Backbone `{record.get('backbone')}`, {record.get('clicks')} interactions, policy "
            f"`{record.get('policy')}`, seed {record.get('seed')}. {record.get('protocol', '')}.\n\n"
            + _table(["domain", "n", "box only mIoU@1", "box + oracle mIoU@5 / @10 / @20", "box + oracle NoC85 (fail)",
                      "box + oracle AUC", "click + oracle mIoU@1 / @5 / @10 / @20", "click + oracle NoC85 (fail)",
                      "click + oracle AUC", "seconds"], rows))


def _cost_rows(columns: Sequence[str], rows: Sequence[Record]) -> str:
    body = [[row.get("domain"), row.get("image"), " x ".join(str(v) for v in row.get("image_hw", [])),
             *(row.get(c) for c in columns)] for row in rows]
    return _table(["domain", "image", "size (h x w)", *columns], body)


def _click_latency(item: ResultFile) -> str:
    record = item.record
    targets = record.get("targets", {})
    stages = [c for c in record["rows"][0] if c.endswith("_ms")]
    return (f"Head `{record.get('head')}` on `{record.get('decoder')}`, {record.get('threads')} torch thread(s), "
            f"median of {record.get('repeats')} interleaved repeats; times in ms. Targets: a BALD click at most "
            f"{targets.get('cpu_ratio_speed_issue')}x a plain decoder call on the CPU "
            f"({targets.get('cpu_ratio_model_issue')}x in the model issue), at most {targets.get('gpu_bald_click_ms')} "
            "ms on an H100.\n\n"
            + _cost_rows([*stages, "ratio"], record["rows"])
            + f"\nMedian ratio **{_num(record.get('median_ratio'), 2)}x**, at most "
            f"{_num(record.get('max_ratio'), 2)}x. `posterior_maps` and `to_slice` are derived: `low_res` minus "
            "`decoder_inputs` and `head_network`; `bald_click` minus `low_res` and `policy`.\n")


def _usam_cost(item: ResultFile) -> str:
    record = item.record
    columns = [c for c in record["rows"][0] if c not in ("domain", "image", "image_hw")]
    medians = record.get("median", {})
    return (f"UncertainSAM heads `{record.get('usam')}`, head `{record.get('head')}`, {record.get('threads')} torch "
            f"thread(s), median of {record.get('repeats')} interleaved repeats; times in ms.\n\n"
            + _cost_rows(columns, record["rows"])
            + "\nMedians: " + ", ".join(f"{k} {_num(v, 4)}" for k, v in medians.items())
            + f"; largest plain + UncertainSAM ratio {_num(record.get('max_ratio_plain+usam'), 3)}.\n")


def _bald_diagnostics(item: ResultFile) -> str:
    record = item.record
    calibration = record["calibration"]
    firsts = list(calibration)
    bins = [[f"{b['low']:.2f}-{b['high']:.2f}", *(f"{calibration[f][i]['foreground_fraction']:.3f} "
                                                    f"({calibration[f][i]['pixels']} px)" for f in firsts)]
            for i, b in enumerate(calibration[firsts[0]])]
    detection = record["error_detection"]
    det_rows = [[f, v["mutual_information_auc"], v["predictive_entropy_auc"],
                 v["error_within_5px_of_predicted_boundary"]] for f, v in detection.items()]
    click_rows = [[f, policy, v["clicks"], v["on_error"], _num(v["median_boundary_px"], 2), v["mean_mi_fraction"]]
                  for f, by_policy in record["clicks"].items() for policy, v in by_policy.items()]
    return (f"Head `{record.get('head')}` on {record.get('images')} validation images of the training split "
            f"({', '.join(record.get('domains', []))}), interactions 2-{record.get('interactions')}.\n\n"
            "**Calibration**: share of foreground among pixels by predicted probability (first prompt box / click).\n\n"
            + _table(["probability", *(f"after a {f}" for f in firsts)], bins)
            + "\n**Error detection**: ROC AUC of the maps for the pixels the mask has wrong.\n\n"
            + _table(["first", "MI AUC", "entropy AUC", "errors within 5 px of the boundary"], det_rows)
            + "\n**Where each policy clicks**:\n\n"
            + _table(["first", "policy", "clicks", "on an error", "median px to boundary",
                      "MI at the click / image max"], click_rows))


def _laplace_ablation(item: ResultFile) -> str:
    record = item.record
    table, fit = record["table"], record["fit"]
    domains = list(table)
    variants = list(table[domains[0]])
    rows = [[f"`{v}`", *(f"{_num(table[d][v].get('miou@5'))} / {_num(table[d][v].get('noc85'), 2)}" for d in domains),
             _num(fit["by_variant"][v]["prior_precision"], 3), _num(fit["by_variant"][v]["val_probit_nll"], 4),
             " / ".join(_num(table[d][v].get("seconds_per_click"), 2) for d in domains)] for v in variants]
    return (f"Head `{record.get('head')}`, last layer refitted on {fit.get('train_images')} training images "
            f"(validation {fit.get('val_images')}), temperature {_num(fit.get('temperature'), 0)}; policy "
            f"`{record.get('policy')}` after a {record.get('first')} on the first "
            f"{record.get('dev_images_per_domain')} dev images per domain, {record.get('clicks')} interactions. "
            "Variant = structure / prior tuning / predictive. Cells: mIoU@5 / NoC85.\n\n"
            + _table(["variant", *domains, "prior precision", "validation probit NLL",
                      "seconds per click (" + " / ".join(domains) + ")"], rows))


def _tune_footprint(item: ResultFile) -> str:
    record = item.record
    table = record["table"]
    firsts = list(table)
    variants = list(table[firsts[0]])
    rows = []
    for variant in variants:
        cells = [table[f][variant] for f in firsts]
        values = [c[k] for c in cells for k in ("miou@5", "miou@10")]
        rows.append([f"`{variant}`", *(_pair(c["miou@5"], c["miou@10"]) for c in cells), sum(values) / len(values)])
    return (f"Head `{record.get('head')}` on {record.get('images')} validation images of the training split "
            f"({', '.join(record.get('domains', []))}), {record.get('clicks')} interactions; never dev data. "
            "Cells: mIoU@5 / mIoU@10; score = the mean of the four.\n\n"
            + _table(["variant", *(f"{f} first" for f in firsts), "score"], rows))


def _monailabel_load(item: ResultFile) -> str:
    record = item.record
    concurrent = record["concurrent"]
    summary = [[key, _num(value) if not isinstance(value, list) else len(value)] for key, value in concurrent.items()]
    cold = [[name, seconds] for name, seconds in record.get("cold_first_request_s", {}).items()]
    return (f"Model `{record.get('model')}`, {record.get('requests')} concurrent requests on "
            f"{len(record.get('pictures', []))} pictures, server with {record.get('server_torch_threads')} torch "
            f"thread(s), start-up {_num(record.get('startup_s'), 1)} s. {record.get('note', '')}\n\n"
            + _table(["concurrent requests", "value"], summary)
            + "\nFirst request on each picture (encoder pass):\n\n" + _table(["picture", "seconds"], cold))


def _eval_usam_dev(item: ResultFile) -> str:
    record = item.record
    scores = ("usam", "sam_iou", "neg_mean_entropy", "neg_mean_bald")
    parts = [f"UncertainSAM heads `{record.get('usam')}`, head `{record.get('head')}`, the first "
             f"{record.get('dev_images_per_domain')} dev images per domain, {record.get('clicks')} interactions.\n"]
    subsets = {"all": "all states", "sam": "LiteMedSAM's own masks", "head": "the head's masks"}
    for subset, label in subsets.items():
        rows = []
        for domain, by_subset in record["table"].items():
            result = by_subset[subset]
            rows.append([domain, result.get("n"), *(_pair(result[s]["spearman"], result[s]["rank_auc"])
                                                    for s in scores)])
        parts.append(f"\n**Ranking masks, {label}** (Spearman / pairwise ranking AUC with the true IoU):\n\n"
                     + _table(["domain", "states", "UncertainSAM", "SAM's IoU prediction", "- mean entropy",
                               "- mean BALD"], rows))
    gap_rows = [[domain, subsets[subset], *(_num(by_subset[subset][g]["spearman"]) for g in ("prompt_gap", "task_gap"))]
                for domain, by_subset in record["table"].items() for subset in ("sam", "head")]
    parts.append("\n**Gaps** (Spearman with the true gap):\n\n"
                 + _table(["domain", "masks", "prompt gap", "task gap"], gap_rows))
    stopping = record.get("stopping", {})
    if stopping:
        domains = list(stopping)
        targets = list(stopping[domains[0]])
        rows = [[t, *(f"{_num(stopping[d][t]['mean_clicks_saved'], 2)} / "
                      f"{100 * stopping[d][t]['too_early_fraction']:.0f} %" for d in domains)] for t in targets]
        parts.append("\n**Stop rule** (mean clicks saved / share of stopped sessions still below the target):\n\n"
                     + _table(["target", *domains], rows))
    return "".join(parts)


def _small_structure(item: ResultFile) -> str:
    """small_structure_train / small_structure_val: per model and stop rule, one box on the central slice then
    propagation, on training (validation-split) volumes."""
    record = item.record
    rows = [[f"`{name}`", _num(entry.get("mean_dice")), _num(entry.get("mean_box_slice_iou")),
             _num(entry.get("median_slices_missed"), 1), _num(entry.get("within_one_slice"), 2),
             ", ".join(f"{k} {v}" for k, v in sorted(entry.get("stops", {}).items()))]
            for name, entry in record["summary"].items()]
    where = record.get("decoder_config") or f"train/{record.get('domain')}"
    return (f"{len(record.get('volumes', []))} volumes ({record.get('split')} split of `{where}`; never dev), one box "
            "on the truth's central slice, then propagation, no head.\n\n"
            + _table(["model / stop rule", "mean Dice", "box-slice IoU", "median slices missed",
                      "share within one slice", "stops"], rows))


def _propagation_dev(item: ResultFile) -> str:
    record = item.record
    rows = []
    for row in record["rows"]:
        stops = "; ".join(f"{s['slice']} ({s['reason']}, slice Dice {_num(s.get('slice_dice'), 2)})"
                          for s in row.get("stops", []))
        rows.append([row["volume"], row["seed"], row["seed_slice"], "-".join(map(str, row["tumour_slices"])),
                     "-".join(map(str, row["covered"])), row["dice"], row["slices_encoded"], stops])
    return (f"Backbone `{record.get('backbone')}`. {record.get('protocol', '')}.\n\n"
            + _table(["volume", "seed", "seed slice", "tumour slices (truth)", "covered", "Dice over the volume",
                      "slices encoded", "stops"], rows))


def _eval_volumes_dev(item: ResultFile) -> str:
    record = item.record
    rows = []
    for head, domains in record["table"].items():
        for domain, by_policy in domains.items():
            for policy, result in by_policy.items():
                rows.append([f"{domain} ({result.get('n_volumes')})", head, policy, _curve(result["mdice_curve"]),
                             _pair(result.get("noc85"), result.get("noc90"), 1),
                             _num(result.get("within_one_slice_after_box"), 2),
                             _num(result.get("seconds_per_click"), 2)])
    models = [f"`{h}`" for h in record.get("heads", [])] + [f"`decoder:{d}`" for d in record.get("decoders", [])]
    return (f"Models {', '.join(models)}, {record.get('clicks')} interactions. "
            f"{record.get('protocol', '')}.\n\n"
            + _table(["volumes", "model", "policy", "mean Dice after each interaction", "NoC85 / NoC90",
                      "share within one slice after the box", "seconds per click"], rows))


def _decoder_dev(item: ResultFile) -> str:
    record = item.record
    targets = record.get("targets", {})
    rows = []
    for domain, row in record["domains"].items():
        box, click, delta = row["box"], row["click"], row["box_alone_minus_original"]
        rows.append([f"{domain} ({row['n_images']})", _curve([box["miou_at"][k] for k in ("1", "5", "10")]),
                     _curve([click["miou_at"][k] for k in ("1", "5", "10")]), _num(box["noc90"], 2),
                     _num(row["original_box_alone"]), f"{_num(delta['mean'], 4)} [{_num(delta['low'], 4)}, "
                     f"{_num(delta['high'], 4)}]", ", ".join(k for k, ok in row["meets"].items() if ok) or "none"])
    return (f"Model `{record.get('model')}`, encoder `{record.get('encoder')}`, {record.get('clicks')} interactions "
            f"with oracle clicks, seed {record.get('seed')}, full dev folders. Targets: box + 4 clicks mIoU@5 >= "
            f"{targets.get('box_miou5')}, click + 4 >= {targets.get('click_miou5')}, NoC90 after a box <= "
            f"{targets.get('noc90_box')}, box alone within {targets.get('box_alone_drop')} of the original decoder.\n\n"
            + _table(["domain (images)", "box first: mIoU@1 / @5 / @10", "click first: mIoU@1 / @5 / @10",
                      "NoC90 (box)", "original decoder, box alone", "box alone minus original [95 % CI]",
                      "targets met"], rows))


def _encoder_throughput(item: ResultFile) -> str:
    record = item.record
    rows = [[f"`{name}`", _num(row["seconds_per_slice"], 3), _num(row["speedup_vs_fp32_eager"], 2),
             _num(row.get("gflops"), 1), _num(row["min_mask_iou"], 4),
             ", ".join(f"{d} {v['min']:.3f} / {v['mean']:.3f}" for d, v in row.get("mask_iou_by_domain", {}).items())
             or "-", _num(row["max_abs_embedding_diff"], 4)]
            for name, row in record["runtimes"].items()]
    peaks = record.get("matmul_peak_gflops")
    roofline = "" if not peaks else (
        f" The encoder costs {_num(record.get('gflop_per_slice'), 1)} GFLOP per slice; this CPU's matrix products "
        f"sustain {_num(peaks.get('f32'), 0)} GFLOP/s in fp32 and {_num(peaks.get('bf16'), 0)} in bf16 on the same "
        f"threads, so no fp32 runtime can pass {_num(record.get('fp32_ceiling_speedup'), 2)}x the baseline.")
    return (f"Backbone `{record.get('backbone')}`, {record.get('slices')} dev slices, {record.get('threads')} "
            f"thread(s), median of {record.get('repeats')} interleaved repeats. {record.get('note', '')}.{roofline}"
            "\n\n"
            + _table(["runtime", "seconds per slice", "speed-up vs fp32 eager", "GFLOP/s", "worst box-mask IoU vs fp32",
                      "box-mask IoU by domain (worst / mean)", "largest embedding difference"], rows))


def _cli_latency(item: ResultFile) -> str:
    record = item.record
    segment, imports = record["segment_2d"], record.get("imports_s", {})
    rows = [["`segment`, box, 2D picture", "-", _num(segment["wall_s"], 2), _num(segment["run_s"], 2), "-", "-", "-"]]
    for encoder, found in record["first_suggest_3d"].items():
        timings = found.get("timings") or {}
        rows.append(["first `suggest`, one box, volume", f"`{encoder}`", _num(found["wall_s"], 2),
                     _num(found["run_s"], 2), _num(timings.get("segment_s"), 2),
                     f"{_num(timings.get('encode_s'), 2)} ({timings.get('slices_encoded', '-')} slices)",
                     _num(timings.get("score_s"), 2)])
    return (f"Picture `{record.get('picture')}`, volume `{record.get('volume')}`, head `{record.get('head')}`; "
            "seconds. "
            f"Imports: `monai_baldsam.segmentation` {_num(imports.get('monai_baldsam.segmentation'), 2)} s, of which "
            f"`monai` {_num(imports.get('monai'), 2)} s and `torch` {_num(imports.get('torch'), 2)} s. Targets: "
            f"{', '.join(f'{k} <= {v} s' for k, v in record.get('targets_s', {}).items())}.\n\n"
            + _table(["command", "encoder", "command to answer", "run", "propagation", "encoding", "BALD scoring"],
                     rows))


def _generic(item: ResultFile) -> str:
    rows: list[list[Any]] = []

    def walk(prefix: str, value: Any, depth: int) -> None:
        if isinstance(value, dict) and depth < 3:
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub, depth + 1)
        elif isinstance(value, (int, float, str, bool)) or value is None:
            if prefix not in ("command", "git_commit", "git_dirty", "seconds", "git_note") and \
                    not prefix.startswith("device_info"):
                rows.append([f"`{prefix}`", value if not isinstance(value, str) else value[:200]])

    walk("", item.record, 0)
    return ("No page layout for this benchmark yet (add one to `benchmarks/docs_results.py`); its scalar fields:\n\n"
            + _table(["field", "value"], rows[:80]))


Renderer = Callable[[ResultFile], str]

#: benchmark name -> (page title, renderer, the topic page that discusses it)
PAGES: dict[str, tuple[str, Renderer, str]] = {
    "eval_baselines": ("Baselines: LiteMedSAM with oracle clicks", _eval_baselines, "evaluation.md"),
    "eval_heads_dev": ("Bayesian heads on dev data", _eval_heads_dev, "head-and-bald.md"),
    "bald_diagnostics": ("Why BALD loses to random_error", _bald_diagnostics, "head-and-bald.md"),
    "tune_footprint": ("Click-rule tuning on validation images", _tune_footprint, "head-and-bald.md"),
    "click_latency": ("Cost of a BALD click", _click_latency, "head-and-bald.md"),
    "laplace_ablation": ("Laplace ablation", _laplace_ablation, "head-and-bald.md"),
    "eval_usam_dev": ("UncertainSAM heads on dev data", _eval_usam_dev, "uncertainsam.md"),
    "usam_cost": ("Cost of UncertainSAM", _usam_cost, "uncertainsam.md"),
    "monailabel_load": ("MONAI Label under load", _monailabel_load, "monailabel.md"),
    "propagation_dev": ("Propagation on dev volumes", _propagation_dev, "volumes.md"),
    "eval_volumes_dev": ("Clicks on dev volumes", _eval_volumes_dev, "volumes.md"),
    "small_structure_train": ("Small structures on training volumes", _small_structure, "volumes.md"),
    "small_structure_val": ("Small structures on validation volumes", _small_structure, "volumes.md"),
    "decoder_dev": ("Click-trained decoder on dev data", _decoder_dev, "backbones.md"),
    "encoder_throughput": ("Image encoder runtimes", _encoder_throughput, "backbones.md"),
    "cli_latency": ("Command line: waiting for segment and suggest", _cli_latency, "volumes.md"),
}


#: topic page -> its title, for the link from a results page
TOPICS = {"evaluation.md": "Evaluating click policies", "head-and-bald.md": "The Bayesian head and BALD clicks",
          "uncertainsam.md": "Mask quality: UncertainSAM heads", "monailabel.md": "MONAI Label app",
          "volumes.md": "Volumes", "backbones.md": "Backbones and models"}


def page_name(benchmark: str) -> str:
    """The results page of a benchmark: ``eval_heads_dev`` -> ``eval-heads-dev.md``."""
    return (re.sub(r"[^a-z0-9]+", "-", benchmark.lower()).strip("-") or "results") + ".md"


def render_pages(files: Sequence[ResultFile]) -> dict[str, str]:
    """Markdown text per page file name (``index.md``, one ``<benchmark>.md`` per benchmark, and ``performance.md``
    when a speed record exists: :mod:`benchmarks.docs_performance`)."""
    by_benchmark: dict[str, list[ResultFile]] = {}
    for item in files:
        by_benchmark.setdefault(item.benchmark, []).append(item)
    pages: dict[str, str] = {}
    index_rows = []
    for benchmark in sorted(by_benchmark, key=lambda b: (b not in PAGES, list(PAGES).index(b) if b in PAGES else 0, b)):
        title, renderer, topic = PAGES.get(benchmark, (f"`{benchmark}`", _generic, ""))
        name = page_name(benchmark)
        parts = [f"# {title}\n\n",
                 "<!-- generated by benchmarks/docs_results.py from benchmarks/results/: do not edit -->\n\n",
                 f"What these numbers mean: [{TOPICS.get(topic, topic)}](../{topic}).\n\n" if topic else ""]
        for item in by_benchmark[benchmark]:
            try:
                body = renderer(item)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
                raise ValueError(f"benchmarks/results/{item.stem}.json does not have the fields the "
                                 f"'{benchmark}' page reads ({type(exc).__name__}: {exc}): update "
                                 f"benchmarks/docs_results.py for the new record layout") from exc
            parts.append(f"## `{item.stem}`\n\n{_provenance(item)}\n{body}{_png(item)}\n")
            index_rows.append([f"[`{item.stem}.json`]({name})", title, _device(item.record), _commit(item.record)])
        pages[name] = "".join(parts)
    pages["index.md"] = ("# Results\n\n"
                         "<!-- generated by benchmarks/docs_results.py from benchmarks/results/: do not edit -->\n\n"
                         "Every page in this section is generated from the JSON records in `benchmarks/results/` "
                         "when the docs are built: a number here is the number in the record. Each record names the "
                         "commit, device and command that produced it. A benchmark runs from the repository root as "
                         "`python -m benchmarks.<name>` and writes `benchmarks/results/<name>[_<variant>]_<device>"
                         ".json` (its chart as `.png` beside it); it refuses to write from a tree with uncommitted "
                         "changes unless run with `--allow-dirty`.\n\n"
                         + _table(["record", "page", "device", "commit"], index_rows))
    records = {b: [item.record for item in items] for b, items in by_benchmark.items()}
    performance = performance_page(records, lambda b: f"[{PAGES.get(b, (b,))[0]}]({page_name(b)})", _table)
    if performance is not None:
        pages["performance.md"] = performance
    return pages


def write_pages(files: Sequence[ResultFile], out: Path = OUT) -> list[str]:
    """Write the pages (and the charts, under ``img/``) into ``out``; a file is rewritten only when its content
    changes (so ``mkdocs serve`` does not rebuild in a loop), and generated files no longer produced are removed.
    Returns the page file names, ``index.md`` first."""
    pages = render_pages(files)
    wanted: dict[Path, bytes] = {out / name: text.encode() for name, text in pages.items()}
    for item in files:
        if item.png is not None:
            wanted[out / "img" / f"{item.stem}.png"] = item.png.read_bytes()
    for path, data in wanted.items():
        if not path.is_file() or path.read_bytes() != data:
            atomic_write_bytes(path, data, overwrite=True)
    for stale in [*out.glob("*.md"), *out.glob("img/*.png")]:
        if stale not in wanted:
            stale.unlink()
    first = [name for name in ("index.md", "performance.md") if name in pages]
    return [*first, *(name for name in pages if name not in first)]


def on_config(config: Any, **_: Any) -> Any:
    """MkDocs hook: write the results pages into ``<docs_dir>/results`` and list them under the nav's "Results"."""
    names = write_pages(load_results(RESULTS), Path(config["docs_dir"]) / "results")
    for entry in config.get("nav") or []:
        if isinstance(entry, dict) and NAV_SECTION in entry:
            entry[NAV_SECTION] = [f"results/{name}" for name in names]
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the docs' results pages from benchmarks/results/*.json")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of benchmark JSON records")
    parser.add_argument("--out", type=Path, default=OUT, help="folder the pages are written into (docs/results)")
    args = parser.parse_args(argv)
    names = write_pages(load_results(args.results), args.out)
    print(f"wrote {len(names)} pages into {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

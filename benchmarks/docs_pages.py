"""The docs' results pages, one per benchmark: :data:`PAGES` gives each its title, the renderer that writes its
record as Markdown and the topic page that discusses it. A benchmark without an entry gets :func:`generic_page`.
Pages are assembled and written by :mod:`benchmarks.docs_results`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from benchmarks.bald_targets import check_targets, miou
from benchmarks.docs_markdown import Record, ResultFile, curve_text, fmt_num, fmt_pair, md_table

__all__ = ["Renderer", "PAGES", "TOPICS", "generic_page"]


def _eval_heads_dev(item: ResultFile) -> str:
    record = item.record
    policies: list[str] = list(record.get("policies", []))
    rows, noc_rows = [], []
    for head, domains in record["table"].items():
        for domain, firsts in domains.items():
            for first, by_policy in firsts.items():
                names = policies or list(by_policy)
                cells = [fmt_pair(by_policy[p].get("miou@5"), by_policy[p].get("miou@10")) if p in by_policy else "-"
                         for p in names]
                first_alone = next(iter(by_policy.values()))["miou_curve"][0]
                rows.append([head, domain, first, *cells, first_alone])
                noc_rows.append([head, domain, first, *(fmt_num(by_policy[p].get("noc85"), 2) if p in by_policy else "-"
                                                        for p in names)])
    head_file = ", ".join(f"`{name}` = `{h['file']}` (SHA-256 `{h['sha256'][:12]}...`)"
                          for name, h in record.get("heads", {}).items())
    return (f"{record.get('dev_images_per_domain', '?')} dev images per domain, {record.get('clicks', '?')} "
            f"interactions, seed {record.get('seed', '?')}; {record.get('protocol', '')}. Head: {head_file}.\n\n"
            "Cells: mIoU@5 / mIoU@10; the last column is the first prompt alone.\n\n"
            + md_table(["head", "domain", "first", *(policies or ["policies"]), "first prompt alone"], rows)
            + "\nNoC85 (the budget when never reached):\n\n"
            + md_table(["head", "domain", "first", *(policies or ["policies"])], noc_rows))


def _eval_baselines(item: ResultFile) -> str:
    record = item.record
    rows = []
    for domain, result in record["domains"].items():
        runs = {row["run"]: row for row in result["table"]}
        box_only, box, click = runs.get("box only", {}), runs.get("box + oracle", {}), runs.get("click + oracle", {})

        def at(run: Record, k: str) -> Any:
            return run.get("miou_at", {}).get(k)

        rows.append([domain, result.get("n_images"), box_only.get("miou@1"),
                     " / ".join(fmt_num(at(box, k), 2) for k in ("5", "10", "20")),
                     f"{fmt_num(box.get('noc85'), 1)} ({box.get('failures85')})", box.get("auc"),
                     " / ".join(fmt_num(at(click, k), 2) for k in ("1", "5", "10", "20")),
                     f"{fmt_num(click.get('noc85'), 1)} ({click.get('failures85')})", click.get("auc"),
                     fmt_num(result.get("seconds"), 1)])
    return (f"Backbone `{record.get('backbone')}`, {record.get('clicks')} interactions, policy "
            f"`{record.get('policy')}`, seed {record.get('seed')}. {record.get('protocol', '')}.\n\n"
            + md_table(["domain", "n", "box only mIoU@1", "box + oracle mIoU@5 / @10 / @20", "box + oracle NoC85 (fail)",
                      "box + oracle AUC", "click + oracle mIoU@1 / @5 / @10 / @20", "click + oracle NoC85 (fail)",
                      "click + oracle AUC", "seconds"], rows))


def _cost_rows(columns: Sequence[str], rows: Sequence[Record]) -> str:
    body = [[row.get("domain"), row.get("image"), " x ".join(str(v) for v in row.get("image_hw", [])),
             *(row.get(c) for c in columns)] for row in rows]
    return md_table(["domain", "image", "size (h x w)", *columns], body)


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
            + f"\nMedian ratio **{fmt_num(record.get('median_ratio'), 2)}x**, at most "
            f"{fmt_num(record.get('max_ratio'), 2)}x. `posterior_maps` and `to_slice` are derived: `low_res` minus "
            "`decoder_inputs` and `head_network`; `bald_click` minus `low_res` and `policy`.\n")


def _usam_cost(item: ResultFile) -> str:
    record = item.record
    columns = [c for c in record["rows"][0] if c not in ("domain", "image", "image_hw")]
    medians = record.get("median", {})
    return (f"UncertainSAM heads `{record.get('usam')}`, head `{record.get('head')}`, {record.get('threads')} torch "
            f"thread(s), median of {record.get('repeats')} interleaved repeats; times in ms.\n\n"
            + _cost_rows(columns, record["rows"])
            + "\nMedians: " + ", ".join(f"{k} {fmt_num(v, 4)}" for k, v in medians.items())
            + f"; largest plain + UncertainSAM ratio {fmt_num(record.get('max_ratio_plain+usam'), 3)}.\n")


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
    click_rows = [[f, policy, v["clicks"], v["on_error"], fmt_num(v["median_boundary_px"], 2), v["mean_mi_fraction"]]
                  for f, by_policy in record["clicks"].items() for policy, v in by_policy.items()]
    return (f"Head `{record.get('head')}` on {record.get('images')} validation images of the training split "
            f"({', '.join(record.get('domains', []))}), interactions 2-{record.get('interactions')}.\n\n"
            "**Calibration**: share of foreground among pixels by predicted probability (first prompt box / click).\n\n"
            + md_table(["probability", *(f"after a {f}" for f in firsts)], bins)
            + "\n**Error detection**: ROC AUC of the maps for the pixels the mask has wrong.\n\n"
            + md_table(["first", "MI AUC", "entropy AUC", "errors within 5 px of the boundary"], det_rows)
            + "\n**Where each policy clicks**:\n\n"
            + md_table(["first", "policy", "clicks", "on an error", "median px to boundary",
                      "MI at the click / image max"], click_rows))


def _laplace_ablation(item: ResultFile) -> str:
    record = item.record
    table, fit = record["table"], record["fit"]
    domains = list(table)
    variants = list(table[domains[0]])
    rows = [[f"`{v}`", *(f"{fmt_num(table[d][v].get('miou@5'))} / {fmt_num(table[d][v].get('noc85'), 2)}" for d in domains),
             fmt_num(fit["by_variant"][v]["prior_precision"], 3), fmt_num(fit["by_variant"][v]["val_probit_nll"], 4),
             " / ".join(fmt_num(table[d][v].get("seconds_per_click"), 2) for d in domains)] for v in variants]
    return (f"Head `{record.get('head')}`, last layer refitted on {fit.get('train_images')} training images "
            f"(validation {fit.get('val_images')}), temperature {fmt_num(fit.get('temperature'), 0)}; policy "
            f"`{record.get('policy')}` after a {record.get('first')} on the first "
            f"{record.get('dev_images_per_domain')} dev images per domain, {record.get('clicks')} interactions. "
            "Variant = structure / prior tuning / predictive. Cells: mIoU@5 / NoC85.\n\n"
            + md_table(["variant", *domains, "prior precision", "validation probit NLL",
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
        rows.append([f"`{variant}`", *(fmt_pair(c["miou@5"], c["miou@10"]) for c in cells), sum(values) / len(values)])
    shares, paired = record.get("clicks_on_error"), record.get("paired")
    if shares:
        for row, variant in zip(rows, variants):
            row.append(" / ".join(fmt_num(shares[f].get(variant), 2) for f in firsts))
    text = (f"Head `{record.get('head')}` on {record.get('images')} validation images of the training split "
            f"({', '.join(record.get('domains', []))}), {record.get('clicks')} interactions; never dev data. "
            "Cells: mIoU@5 / mIoU@10; score = the mean of the four"
            + ("; clicks on error: the share of the policy's clicks on an error pixel" if shares else "") + ".\n\n"
            + md_table(["variant", *(f"{f} first" for f in firsts), "score",
                        *(["clicks on error (" + " / ".join(firsts) + ")"] if shares else [])], rows))
    if paired:
        diffs = [[f"`{key.split('@')[0]}`", key.rsplit("@", 1)[1], _interval(d)] for key, d in paired.items()]
        compared = {key.split("/", 1)[1].rsplit("@", 1)[0] for key in paired}
        reference = ", ".join(f"`{v}`" for v in variants if v not in compared)
        text += (f"\nEach run minus the reference {reference}, 95 % paired bootstrap over images (* beyond "
                 "noise):\n\n"
                 + md_table(["first / run", "after interaction", "difference"], diffs))
    return text


def _monailabel_load(item: ResultFile) -> str:
    record = item.record
    concurrent = record["concurrent"]
    summary = [[key, fmt_num(value) if not isinstance(value, list) else len(value)] for key, value in concurrent.items()]
    cold = [[name, seconds] for name, seconds in record.get("cold_first_request_s", {}).items()]
    return (f"Model `{record.get('model')}`, {record.get('requests')} concurrent requests on "
            f"{len(record.get('pictures', []))} pictures, server with {record.get('server_torch_threads')} torch "
            f"thread(s), start-up {fmt_num(record.get('startup_s'), 1)} s. {record.get('note', '')}\n\n"
            + md_table(["concurrent requests", "value"], summary)
            + "\nFirst request on each picture (encoder pass):\n\n" + md_table(["picture", "seconds"], cold))


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
            rows.append([domain, result.get("n"), *(fmt_pair(result[s]["spearman"], result[s]["rank_auc"])
                                                    for s in scores)])
        parts.append(f"\n**Ranking masks, {label}** (Spearman / pairwise ranking AUC with the true IoU):\n\n"
                     + md_table(["domain", "states", "UncertainSAM", "SAM's IoU prediction", "- mean entropy",
                               "- mean BALD"], rows))
    gap_rows = [[domain, subsets[subset], *(fmt_num(by_subset[subset][g]["spearman"]) for g in ("prompt_gap", "task_gap"))]
                for domain, by_subset in record["table"].items() for subset in ("sam", "head")]
    parts.append("\n**Gaps** (Spearman with the true gap):\n\n"
                 + md_table(["domain", "masks", "prompt gap", "task gap"], gap_rows))
    stopping = record.get("stopping", {})
    if stopping:
        domains = list(stopping)
        targets = list(stopping[domains[0]])
        rows = [[t, *(f"{fmt_num(stopping[d][t]['mean_clicks_saved'], 2)} / "
                      f"{100 * stopping[d][t]['too_early_fraction']:.0f} %" for d in domains)] for t in targets]
        parts.append("\n**Stop rule** (mean clicks saved / share of stopped sessions still below the target):\n\n"
                     + md_table(["target", *domains], rows))
    return "".join(parts)


def _small_structure(item: ResultFile) -> str:
    """small_structure_train / small_structure_val: per model and stop rule, one box on the central slice then
    propagation, on training (validation-split) volumes."""
    record = item.record
    rows = [[f"`{name}`", fmt_num(entry.get("mean_dice")), fmt_num(entry.get("mean_box_slice_iou")),
             fmt_num(entry.get("median_slices_missed"), 1), fmt_num(entry.get("within_one_slice"), 2),
             ", ".join(f"{k} {v}" for k, v in sorted(entry.get("stops", {}).items()))]
            for name, entry in record["summary"].items()]
    where = record.get("decoder_config") or f"train/{record.get('domain')}"
    return (f"{len(record.get('volumes', []))} volumes ({record.get('split')} split of `{where}`; never dev), one box "
            "on the truth's central slice, then propagation, no head.\n\n"
            + md_table(["model / stop rule", "mean Dice", "box-slice IoU", "median slices missed",
                      "share within one slice", "stops"], rows))


def _propagation_dev(item: ResultFile) -> str:
    record = item.record
    rows = []
    for row in record["rows"]:
        stops = "; ".join(f"{s['slice']} ({s['reason']}, slice Dice {fmt_num(s.get('slice_dice'), 2)})"
                          for s in row.get("stops", []))
        rows.append([row["volume"], row["seed"], row["seed_slice"], "-".join(map(str, row["tumour_slices"])),
                     "-".join(map(str, row["covered"])), row["dice"], row["slices_encoded"], stops])
    return (f"Backbone `{record.get('backbone')}`. {record.get('protocol', '')}.\n\n"
            + md_table(["volume", "seed", "seed slice", "tumour slices (truth)", "covered", "Dice over the volume",
                      "slices encoded", "stops"], rows))


def _eval_volumes_dev(item: ResultFile) -> str:
    record = item.record
    rows = []
    for head, domains in record["table"].items():
        for domain, by_policy in domains.items():
            for policy, result in by_policy.items():
                rows.append([f"{domain} ({result.get('n_volumes')})", head, policy, curve_text(result["mdice_curve"]),
                             fmt_pair(result.get("noc85"), result.get("noc90"), 1),
                             fmt_num(result.get("within_one_slice_after_box"), 2),
                             fmt_num(result.get("seconds_per_click"), 2)])
    models = [f"`{h}`" for h in record.get("heads", [])] + [f"`decoder:{d}`" for d in record.get("decoders", [])]
    return (f"Models {', '.join(models)}, {record.get('clicks')} interactions. "
            f"{record.get('protocol', '')}.\n\n"
            + md_table(["volumes", "model", "policy", "mean Dice after each interaction", "NoC85 / NoC90",
                      "share within one slice after the box", "seconds per click"], rows))


def _decoder_dev(item: ResultFile) -> str:
    record = item.record
    targets = record.get("targets", {})
    rows = []
    for domain, row in record["domains"].items():
        box, click, delta = row["box"], row["click"], row["box_alone_minus_original"]
        rows.append([f"{domain} ({row['n_images']})", curve_text([box["miou_at"][k] for k in ("1", "5", "10")]),
                     curve_text([click["miou_at"][k] for k in ("1", "5", "10")]), fmt_num(box["noc90"], 2),
                     fmt_num(row["original_box_alone"]), f"{fmt_num(delta['mean'], 4)} [{fmt_num(delta['low'], 4)}, "
                     f"{fmt_num(delta['high'], 4)}]", ", ".join(k for k, ok in row["meets"].items() if ok) or "none"])
    return (f"Model `{record.get('model')}`, encoder `{record.get('encoder')}`, {record.get('clicks')} interactions "
            f"with oracle clicks, seed {record.get('seed')}, full dev folders. Targets: box + 4 clicks mIoU@5 >= "
            f"{targets.get('box_miou5')}, click + 4 >= {targets.get('click_miou5')}, NoC90 after a box <= "
            f"{targets.get('noc90_box')}, box alone within {targets.get('box_alone_drop')} of the original decoder.\n\n"
            + md_table(["domain (images)", "box first: mIoU@1 / @5 / @10", "click first: mIoU@1 / @5 / @10",
                      "NoC90 (box)", "original decoder, box alone", "box alone minus original [95 % CI]",
                      "targets met"], rows))


def _interval(diff: Record, digits: int = 4) -> str:
    mark = " *" if diff.get("beyond_noise") else ""
    return f"{fmt_num(diff['mean'], digits)} [{fmt_num(diff['low'], digits)}, {fmt_num(diff['high'], digits)}]{mark}"


def _box_alone_val(item: ResultFile) -> str:
    record = item.record
    rows = []
    for domain, row in record["domains"].items():
        head, decoder, diff = row["head"], row["decoder"], row["decoder_minus_head"]
        rows.append([f"{domain} ({head['n_images']})",
                     fmt_pair(head["miou_at"]["1"], decoder["miou_at"]["1"]),
                     fmt_pair(head["miou_at"]["5"], decoder["miou_at"]["5"]),
                     fmt_pair(head["noc90"], decoder["noc90"], 2),
                     _interval(diff["box_alone"]), _interval(diff["miou5"]), _interval(diff["miou10"]),
                     _interval(diff["noc90"], 2)])
    return (f"Head `{record.get('head')}`, encoder `{record.get('encoder')}`, its validation images, box first then "
            f"oracle clicks, {record.get('clicks')} interactions, seed {record.get('seed')}. Each pair is the head "
            "answering the box / the decoder answering it; differences are decoder minus head with 95 % paired "
            "bootstrap intervals over images (* beyond noise).\n\n"
            + md_table(["domain (images)", "mIoU after the box", "mIoU@5", "NoC90", "after the box: decoder - head",
                        "@5: decoder - head", "@10: decoder - head", "NoC90: decoder - head"], rows))


def _bald_paired_dev(item: ResultFile) -> str:
    record = item.record
    policies, groups = list(record["policies"]), [*record["domains"], "all"]
    others = [p for p in policies if p != "bald"]
    firsts = list(dict.fromkeys(r["first"] for r in record["table"][groups[0]]))
    n_images = {g: next((r["n"] for r in record["table"][g]), "-") for g in groups}
    scores = [[f"{g} ({n_images[g]})", first,
               *(fmt_pair(miou(record, g, first, p, 5), miou(record, g, first, p, 10)) for p in policies)]
              for g in groups for first in firsts]

    def paired(at: int) -> list[list[str]]:
        rows = []
        for g in groups:
            for first in firsts:
                found = {r["other_policy"]: r for r in record["paired"][g] if r["first"] == first and r["at"] == at}
                rows.append([g, first, *(_interval(found[o], 3) if o in found else "-" for o in others)])
        return rows

    shares = []
    for g in groups:
        by = {(r["policy"], r["first"]): r["share"] for r in record["clicks_on_error"][g]}
        shares.append([g, *(fmt_pair(by.get((p, "box")), by.get((p, "click")), 2) for p in policies)])
    targets = [[t["target"], "yes" if t["met"] else "**no**", t["value"]] for t in check_targets(record)]
    boot = record.get("bootstrap", {})
    return (f"Head `{record['head']['name']}`, encoder `{record.get('encoder')}`, {record.get('clicks')} interactions, "
            f"seed {record.get('seed')}, every dev image of each domain (limit {record.get('limit')}). "
            f"{record.get('protocol', '')}. Intervals: {boot.get('resamples')} paired bootstrap resamples over "
            "images, 95 %; `*` marks a difference beyond noise (the interval excludes 0).\n\n"
            "**mIoU@5 / mIoU@10**\n\n" + md_table(["domain (images)", "first", *policies], scores)
            + "\n**bald minus each policy, mIoU@5**\n\n" + md_table(["domain", "first", *others], paired(5))
            + "\n**bald minus each policy, mIoU@10**\n\n" + md_table(["domain", "first", *others], paired(10))
            + "\n**Share of the policy's clicks on an error pixel of the mask before them (box first / click "
              "first)**\n\n" + md_table(["domain", *policies], shares)
            + "\n**Issue 17's targets, box first**\n\n" + md_table(["target", "met", "measured"], targets))


def _active_learning_sim(item: ResultFile) -> str:
    record = item.record
    config, k = record["config"], record["config"]["interactions"]
    curves, savings, paired = [], [], []
    for domain, entry in record["domains"].items():
        for strategy, curve in entry["curves"].items():
            cells = [f"{fmt_num(v)} ({fmt_num(lo)}-{fmt_num(hi)})" for v, lo, hi in
                     zip(curve[f"miou@{k}"], curve["seed_min"], curve["seed_max"])]
            curves.append([domain, strategy, *cells])
            saved = entry["savings"][strategy]
            savings.append([domain, strategy, saved["target_miou"], fmt_num(saved["labels"], 1),
                            "-" if saved["saving"] is None else f"{100 * saved['saving']:.0f} %"])
        for row in entry["paired_vs_random"]:
            paired.append([domain, row["strategy"], row["labelled"], _interval(row, 3),
                           _per_seed_difference(entry["runs"], row["strategy"], row["labelled"], k)])
    counts = [str(c) for c in next(iter(next(iter(record["domains"].values()))["curves"].values()))["labelled"]]
    pools = ", ".join(f"{d}: {e['pool']['images']} of {e['pool']['of']} training images, {e['dev_images']} dev "
                      f"images, start `{e['start_head']['file']}` (bundle `{e['bundle']}`, dev mIoU@{k} "
                      f"{fmt_num(e.get(f'start_head_miou@{k}'))} before any label)"
                      for d, e in record["domains"].items())
    return (f"Seeds {record['seeds']}; {config['seed_images']} seed images, then {config['rounds']} rounds of "
            f"{config['per_round']}; the app's trainer settings ({config['train']['epochs']} epochs, validation "
            f"fraction {config['val_fraction']}); encoder `{record.get('encoder')}`. {pools}.\n\n"
            f"**Dev mIoU@{k} (box + {k - 1} oracle clicks) against labelled images, mean over seeds (seed range)**"
            "\n\n" + md_table(["domain", "strategy", *counts], curves)
            + "\n**Labelled images needed to reach `random`'s final mIoU (target: 25 % fewer)**\n\n"
            + md_table(["domain", "strategy", "random's final mIoU", "labelled images", "saving"], savings)
            + "\n**Strategy minus random at each count (per-image IoU averaged over seeds; 95 % paired bootstrap "
              "over dev images, * beyond noise; it leaves out the fine-tuning's own variation between seeds, which "
              "the last column shows: each seed's strategy minus random)**\n\n"
            + md_table(["domain", "strategy", "labelled", "difference", "per seed"], paired))


def _per_seed_difference(runs: Record, strategy: str, labelled: int, k: int) -> str:
    values = []
    for seed, rounds in runs[strategy].items():
        mine = next(r for r in rounds if r["labelled"] == labelled)[f"miou@{k}"]
        base = next(r for r in runs["random"][seed] if r["labelled"] == labelled)[f"miou@{k}"]
        values.append(f"{mine - base:+.3f}")
    return ", ".join(values)


def _correction_val(item: ResultFile) -> str:
    record = item.record
    rows = []
    for group, entry in record["summary"].items():
        curves = entry["mdice_curve"]
        rows.append([f"{group} ({entry['n_volumes']})", curve_text(curves["clear"]), curve_text(curves["keep"]),
                     entry["volumes_changed"], _interval(entry["keep_minus_clear_last"]) if
                     "keep_minus_clear_last" in entry else "-",
                     _interval(entry["keep_minus_clear_corrections_mean"]) if
                     "keep_minus_clear_corrections_mean" in entry else "-"])
    return (f"Model `{record.get('model')}`, head `{record.get('head')}`, encoder `{record.get('encoder')}`; the "
            f"validation volumes of {', '.join(f'`{c}`' for c in record['decoder_configs'])} (never dev); a box on "
            f"the truth's central slice, then {record.get('clicks', 1) - 1} oracle clicks. `clear` removes the "
            "results past a slice where a re-propagation's new result is rejected, `keep` leaves them; keep minus "
            "clear with 95 % paired bootstrap intervals over volumes (* beyond noise).\n\n"
            + md_table(["volumes", "mean Dice per interaction, clear", "mean Dice per interaction, keep",
                        "volumes changed", "keep - clear, last", "keep - clear, mean over corrections"], rows))


def _encoder_throughput(item: ResultFile) -> str:
    record = item.record
    rows = [[f"`{name}`", fmt_num(row["seconds_per_slice"], 3), fmt_num(row["speedup_vs_fp32_eager"], 2),
             fmt_num(row.get("gflops"), 1), fmt_num(row["min_mask_iou"], 4),
             ", ".join(f"{d} {v['min']:.3f} / {v['mean']:.3f}" for d, v in row.get("mask_iou_by_domain", {}).items())
             or "-", fmt_num(row["max_abs_embedding_diff"], 4)]
            for name, row in record["runtimes"].items()]
    peaks = record.get("matmul_peak_gflops")
    roofline = "" if not peaks else (
        f" The encoder costs {fmt_num(record.get('gflop_per_slice'), 1)} GFLOP per slice; this CPU's matrix products "
        f"sustain {fmt_num(peaks.get('f32'), 0)} GFLOP/s in fp32 and {fmt_num(peaks.get('bf16'), 0)} in bf16 on the same "
        f"threads, so no fp32 runtime can pass {fmt_num(record.get('fp32_ceiling_speedup'), 2)}x the baseline.")
    return (f"Backbone `{record.get('backbone')}`, {record.get('slices')} dev slices, {record.get('threads')} "
            f"thread(s), median of {record.get('repeats')} interleaved repeats. {record.get('note', '')}.{roofline}"
            "\n\n"
            + md_table(["runtime", "seconds per slice", "speed-up vs fp32 eager", "GFLOP/s", "worst box-mask IoU vs fp32",
                      "box-mask IoU by domain (worst / mean)", "largest embedding difference"], rows))


def _cli_latency(item: ResultFile) -> str:
    record = item.record
    segment, imports = record["segment_2d"], record.get("imports_s", {})
    rows = [["`segment`, box, 2D picture", "-", fmt_num(segment["wall_s"], 2), fmt_num(segment["run_s"], 2), "-", "-", "-"]]
    for encoder, found in record["first_suggest_3d"].items():
        timings = found.get("timings") or {}
        rows.append(["first `suggest`, one box, volume", f"`{encoder}`", fmt_num(found["wall_s"], 2),
                     fmt_num(found["run_s"], 2), fmt_num(timings.get("segment_s"), 2),
                     f"{fmt_num(timings.get('encode_s'), 2)} ({timings.get('slices_encoded', '-')} slices)",
                     fmt_num(timings.get("score_s"), 2)])
    return (f"Picture `{record.get('picture')}`, volume `{record.get('volume')}`, head `{record.get('head')}`; "
            "seconds. "
            f"Imports: `monai_baldsam.segmentation` {fmt_num(imports.get('monai_baldsam.segmentation'), 2)} s, of which "
            f"`monai` {fmt_num(imports.get('monai'), 2)} s and `torch` {fmt_num(imports.get('torch'), 2)} s. Targets: "
            f"{', '.join(f'{k} <= {v} s' for k, v in record.get('targets_s', {}).items())}.\n\n"
            + md_table(["command", "encoder", "command to answer", "run", "propagation", "encoding", "BALD scoring"],
                     rows))


def generic_page(item: ResultFile) -> str:
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
    return ("No page layout for this benchmark yet (add one to `benchmarks/docs_pages.py`); its scalar fields:\n\n"
            + md_table(["field", "value"], rows[:80]))


Renderer = Callable[[ResultFile], str]

#: benchmark name -> (page title, renderer, the topic page that discusses it)
PAGES: dict[str, tuple[str, Renderer, str]] = {
    "eval_baselines": ("Baselines: LiteMedSAM with oracle clicks", _eval_baselines, "evaluation.md"),
    "eval_heads_dev": ("Bayesian heads on dev data", _eval_heads_dev, "head-and-bald.md"),
    "bald_diagnostics": ("Why BALD loses to random_error", _bald_diagnostics, "head-and-bald.md"),
    "bald_paired_dev": ("BALD against every click policy on the full dev folders", _bald_paired_dev,
                        "head-and-bald.md"),
    "tune_footprint": ("Click-rule tuning on validation images", _tune_footprint, "head-and-bald.md"),
    "active_learning_sim": ("Active learning over images, simulated", _active_learning_sim, "monailabel.md"),
    "click_latency": ("Cost of a BALD click", _click_latency, "head-and-bald.md"),
    "laplace_ablation": ("Laplace ablation", _laplace_ablation, "head-and-bald.md"),
    "eval_usam_dev": ("UncertainSAM heads on dev data", _eval_usam_dev, "uncertainsam.md"),
    "usam_cost": ("Cost of UncertainSAM", _usam_cost, "uncertainsam.md"),
    "monailabel_load": ("MONAI Label under load", _monailabel_load, "monailabel.md"),
    "propagation_dev": ("Propagation on dev volumes", _propagation_dev, "volumes.md"),
    "eval_volumes_dev": ("Clicks on dev volumes", _eval_volumes_dev, "volumes.md"),
    "small_structure_train": ("Small structures on training volumes", _small_structure, "volumes.md"),
    "small_structure_val": ("Small structures on validation volumes", _small_structure, "volumes.md"),
    "correction_val": ("Corrections on validation volumes: clear or keep past a rejection", _correction_val,
                       "volumes.md"),
    "decoder_dev": ("Click-trained decoder on dev data", _decoder_dev, "backbones.md"),
    "box_alone_val": ("Who answers a box alone: head or decoder (validation)", _box_alone_val, "backbones.md"),
    "encoder_throughput": ("Image encoder runtimes", _encoder_throughput, "backbones.md"),
    "cli_latency": ("Command line: waiting for segment and suggest", _cli_latency, "volumes.md"),
}


#: topic page -> its title, for the link from a results page
TOPICS = {"evaluation.md": "Evaluating click policies", "head-and-bald.md": "The Bayesian head and BALD clicks",
          "uncertainsam.md": "Mask quality: UncertainSAM heads", "monailabel.md": "MONAI Label app",
          "volumes.md": "Volumes", "backbones.md": "Backbones and models"}

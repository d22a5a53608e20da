"""The docs' performance page: the speed issue's targets against the speed records in ``benchmarks/results/``.

Generated with the results pages (:mod:`benchmarks.docs_results` calls :func:`performance_page`): each row is a
target, the device class it is set for, what the newest record of that benchmark on such a device measured, whether
that meets it, and the record's page. A target no record covers says so (the GPU rows, until a GPU run is recorded).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["SPEED_BENCHMARKS", "performance_page"]

#: the benchmarks whose records feed the page
SPEED_BENCHMARKS = ("encoder_throughput", "click_latency", "cli_latency")

Record = dict[str, Any]
Row = list[str]


def _is_gpu(record: Record) -> bool:
    return str(record.get("device_info", {}).get("device", "cpu")) != "cpu"


def _pick(records: dict[str, list[Record]], benchmark: str, gpu: bool) -> Record | None:
    found = [r for r in records.get(benchmark, []) if _is_gpu(r) == gpu]
    return found[-1] if found else None


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("**met**" if ok else "not met")


def _cpu_encoder(record: Record) -> tuple[str, bool]:
    runtimes = record["runtimes"]
    exact = {n: r for n, r in runtimes.items() if r["min_mask_iou"] >= 0.99 and n != "torch"}
    best_exact = max(exact, key=lambda n: exact[n]["speedup_vs_fp32_eager"]) if exact else None
    fastest = max(runtimes, key=lambda n: runtimes[n]["speedup_vs_fp32_eager"])
    text = (f"`{fastest}` {runtimes[fastest]['speedup_vs_fp32_eager']:.2f}x (worst mask IoU "
            f"{runtimes[fastest]['min_mask_iou']:.3f})")
    if best_exact:
        text += f"; with masks kept (IoU >= 0.99): `{best_exact}` {exact[best_exact]['speedup_vs_fp32_eager']:.2f}x"
    if "fp32_ceiling_speedup" in record:
        text += f"; fp32 ceiling {record['fp32_ceiling_speedup']:.2f}x"
    return text, bool(best_exact) and exact[best_exact]["speedup_vs_fp32_eager"] >= 4.0


def _cpu_rows(records: dict[str, list[Record]], link: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    encoder = _pick(records, "encoder_throughput", gpu=False)
    if encoder is not None:
        text, ok = _cpu_encoder(encoder)
        rows.append(["image encoder >= 4x fp32 eager, masks kept", "CPU, 2 cores", text, _verdict(ok),
                     link("encoder_throughput")])
    cli = _pick(records, "cli_latency", gpu=False)
    if cli is not None:
        suggest = cli["first_suggest_3d"]
        best = min(suggest, key=lambda e: suggest[e]["wall_s"])
        rows.append(["first `suggest` on a 155-slice volume <= 30 s", "CPU, 2 cores",
                     ", ".join(f"`{e}` {v['wall_s']:.1f} s" for e, v in suggest.items()),
                     _verdict(suggest[best]["wall_s"] <= 30.0), link("cli_latency")])
        rows.append(["`segment` on a 2D picture <= 4 s, command to mask", "CPU, 2 cores",
                     f"{cli['segment_2d']['wall_s']:.1f} s (run {cli['segment_2d']['run_s']:.1f} s)",
                     _verdict(cli["segment_2d"]["wall_s"] <= 4.0), link("cli_latency")])
    for click in (r for r in records.get("click_latency", []) if not _is_gpu(r)):  # one row per head
        rows.append(["BALD click <= 1.3x a plain decoder call", "CPU",
                     f"head `{click.get('head')}`: median {click['median_ratio']:.2f}x, at most "
                     f"{click['max_ratio']:.2f}x", _verdict(click["max_ratio"] <= 1.3), link("click_latency")])
    return rows


def _gpu_rows(records: dict[str, list[Record]], link: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    encoder = _pick(records, "encoder_throughput", gpu=True)
    for name, target in (("lite_medsam", 1000), ("vit_b", 300), ("vit_h", 60)):
        modes = (encoder or {}).get("backbones", {}).get(name, {}).get("modes", {})
        if not modes:
            rows.append([f"`{name}` >= {target} img/s", "H100", "no GPU record yet", "-", "-"])
            continue
        best = max(modes, key=lambda m: modes[m]["images_per_s"])
        rows.append([f"`{name}` >= {target} img/s", str(encoder["device_info"].get("device")),
                     f"`{best}` {modes[best]['images_per_s']:.0f} img/s "
                     f"({100 * modes[best]['bf16_peak_fraction']:.0f} % of bf16 peak)",
                     _verdict(modes[best]["images_per_s"] >= target), link("encoder_throughput")])
    click = _pick(records, "click_latency", gpu=True)
    if click is None:
        rows.append(["BALD click <= 5 ms", "H100", "no GPU record yet", "-", "-"])
    else:
        ms = click["median_ms"]["bald_click_ms"]
        rows.append(["BALD click <= 5 ms", str(click["device_info"].get("device")), f"median {ms:.1f} ms",
                     _verdict(ms <= 5.0), link("click_latency")])
    rows.append(["155-slice volume encoded, first suggestion <= 1 s", "H100", "no GPU record yet", "-", "-"])
    return rows


def performance_page(records: dict[str, list[Record]], link: Callable[[str], str],
                     table: Callable[[Sequence[str], Sequence[Row]], str]) -> str | None:
    """The page's markdown, or ``None`` when no speed record exists. ``records``: benchmark -> its records (oldest
    first); ``link``: benchmark -> a markdown link to its results page; ``table``: the results pages' table maker."""
    if not any(records.get(b) for b in SPEED_BENCHMARKS):
        return None
    header = ["target", "set for", "measured (newest record)", "", "record"]
    return ("# Performance\n\n"
            "<!-- generated by benchmarks/docs_performance.py from benchmarks/results/: do not edit -->\n\n"
            "The speed issue's targets against the newest speed record of each kind. Speed is always a ratio or a "
            "time measured against a baseline run in the same process; each record names its commit, device and "
            "command on its own page.\n\n## CPU\n\n" + table(header, _cpu_rows(records, link))
            + "\n## GPU\n\n" + table(header, _gpu_rows(records, link)))

"""Markdown for the docs' results pages: a benchmark record as a :class:`ResultFile`, and how its fields are written
(numbers, tables, provenance, charts). Used by :mod:`benchmarks.docs_pages` (one renderer per benchmark) and
:mod:`benchmarks.docs_results` (the pages and the MkDocs hook)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = ["Record", "ResultFile", "fmt_num", "fmt_pair", "md_table", "device_text", "commit_text", "provenance_text",
           "png_link", "curve_text"]

Record = dict[str, Any]


@dataclass(frozen=True)
class ResultFile:
    """One ``benchmarks/results/<stem>.json``: its record, the benchmark it belongs to, its chart if any."""

    stem: str
    record: Record
    benchmark: str
    png: Path | None


def fmt_num(value: Any, digits: int = 3) -> str:
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


def fmt_pair(a: Any, b: Any, digits: int = 3) -> str:
    return f"{fmt_num(a, digits)} / {fmt_num(b, digits)}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return (value if isinstance(value, str) else fmt_num(value)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def device_text(record: Record) -> str:
    info = record.get("device_info") or record.get("device") or {}
    if isinstance(info, str):
        return info
    name = str(info.get("device", "?"))
    detail = info.get("gpu") or (f"{info['cpu_count']} CPU cores" if info.get("cpu_count") else None)
    threads = info.get("torch_threads")
    plural = "" if threads == 1 else "s"
    return name + (f" ({detail})" if detail else "") + (f", {threads} torch thread{plural}" if threads else "")


def commit_text(record: Record) -> str:
    commit = record.get("git_commit") or record.get("commit") or "unknown"
    dirty = record.get("git_dirty")
    state = {True: "uncommitted changes", False: "clean tree", None: "tree state not recorded"}.get(dirty, str(dirty))
    return f"`{str(commit)[:7]}` ({state})"


def provenance_text(item: ResultFile) -> str:
    record = item.record
    lines = [f"* file: `benchmarks/results/{item.stem}.json`", f"* commit: {commit_text(record)}",
             f"* device: {device_text(record)}"]
    if record.get("seconds") is not None:
        lines.append(f"* run time: {fmt_num(record['seconds'], 1)} s")
    if record.get("command"):
        lines.append(f"* command: `{record['command']}`")
    if record.get("git_dirty_files"):
        lines.append("* uncommitted changes: " + ", ".join(f"`{name}`" for name in record["git_dirty_files"]))
    if record.get("git_note"):
        lines.append(f"* note: {record['git_note']}")
    return "\n".join(lines) + "\n"


def png_link(item: ResultFile) -> str:
    return f"\n![{item.stem}](img/{item.stem}.png)\n" if item.png is not None else ""


def curve_text(values: Sequence[float]) -> str:
    return ", ".join(fmt_num(v) for v in values)

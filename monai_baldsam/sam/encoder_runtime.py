"""How the image encoder runs: the fp32 eager PyTorch reference, or a compiled OpenVINO graph on the CPU.

The image encoder is the expensive step (LiteMedSAM: 75 GFLOP per 256 px slice). Eager PyTorch on the CPU runs it
op by op in fp32; OpenVINO compiles the same graph once (fused convolutions, batch norms and GELUs) and, on CPUs
with AVX-512 BF16 or AMX, runs it in fp16 or bf16. Both return float32 ``(B, D, h, w)`` features; the fast
runtimes are checked against the reference (``tests/test_sam_encoder_runtime.py``,
``benchmarks/encoder_throughput.py``).

Frames and shapes: the runner takes the encoder's own input, ``B x 3 x S x S`` (resized, normalised, padded by
:meth:`~monai_baldsam.sam.predictor.SamPredictor.prepare`).

The converted OpenVINO model is kept on disk (``$BALDSAM_CACHE/openvino`` or ``~/.cache/monai_baldsam/openvino``),
keyed by backbone name, full checkpoint SHA-256, input size and OpenVINO version, so the conversion (about 20 s for
LiteMedSAM) happens once per machine; the files are written atomically.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from enum import Enum
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from monai_baldsam.sam.checkpoints import CACHE_ENV_VAR
from monai_baldsam.sam.model import SamBackbone

__all__ = ["EncoderRuntime", "ImageEncoderRunner", "TorchEncoder", "OpenVinoEncoder", "openvino_available",
           "default_encoder_runtime", "make_encoder", "openvino_cache_dir"]


class EncoderRuntime(str, Enum):
    """Where and in which precision the image encoder runs."""

    TORCH = "torch"  # eager PyTorch in the backbone's dtype (fp32): the reference
    OPENVINO_BF16 = "openvino-bf16"
    OPENVINO_F16 = "openvino-f16"
    OPENVINO_F32 = "openvino-f32"
    AUTO = "auto"  # openvino-f32 on a CPU where OpenVINO is installed, else torch


class ImageEncoderRunner(Protocol):
    """Encodes ``B x 3 x S x S`` encoder inputs to float32 ``B x D x h x w`` features; ``tag`` names the runtime."""

    tag: str

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...


class TorchEncoder:
    """The backbone's own image encoder, eager PyTorch: the reference every other runtime is checked against."""

    tag = "torch"

    def __init__(self, backbone: SamBackbone) -> None:
        self.backbone = backbone

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.backbone.image_encoder(inputs)


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_cache_dir() -> Path:
    """``$BALDSAM_CACHE/openvino``, else ``~/.cache/monai_baldsam/openvino``."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "monai_baldsam"
    return base / "openvino"


_CONVERT_LOCK = threading.Lock()


class OpenVinoEncoder:
    """The backbone's image encoder converted to OpenVINO and compiled for the CPU in ``precision``.

    Args:
        backbone: the loaded backbone (its ``checkpoint_sha256`` keys the converted file; random weights are
            converted afresh in a temporary folder every time, never cached).
        precision: ``"bf16"``, ``"f16"`` or ``"f32"`` (OpenVINO's ``INFERENCE_PRECISION_HINT``).
        threads: CPU threads (default: ``torch.get_num_threads()``).
        cache_dir: where converted models are kept (default :func:`openvino_cache_dir`).
    """

    def __init__(self, backbone: SamBackbone, precision: str = "bf16", threads: int | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        if precision not in ("bf16", "f16", "f32"):
            raise ValueError(f"precision must be bf16, f16 or f32, got {precision!r}")
        if backbone.device.type != "cpu":
            raise ValueError(f"the OpenVINO encoder runs on the CPU; the backbone is on {backbone.device}: use the "
                             "torch runtime on a GPU")
        import openvino as ov

        self.tag = f"openvino-{precision}"
        self.backbone = backbone
        self.img_size = int(backbone.img_size)
        self._ov = ov
        core = ov.Core()
        model = core.read_model(str(self._converted_model(Path(cache_dir) if cache_dir else openvino_cache_dir())))
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()

    def _converted_model(self, cache_dir: Path) -> Path:
        """The converted model's ``.xml`` (with its ``.bin``), converted and stored once per key."""
        sha = self.backbone.checkpoint_sha256
        if sha is None:  # random weights: nothing stable to key a cache on
            folder = Path(tempfile.mkdtemp(prefix="baldsam-ov-"))
            return self._convert(folder / "encoder.xml")
        name = f"{self.backbone.name}-{sha}-{self.img_size}px-ov{self._ov.__version__.split('-')[0]}"
        target = cache_dir / f"{name}.xml"
        with _CONVERT_LOCK:
            if target.is_file() and target.with_suffix(".bin").is_file():
                return target
            cache_dir.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache_dir))
            try:
                converted = self._convert(work / "encoder.xml")
                os.replace(converted.with_suffix(".bin"), target.with_suffix(".bin"))
                os.replace(converted, target)  # the .xml last: it marks the pair complete
            finally:
                for leftover in work.glob("*"):
                    leftover.unlink(missing_ok=True)
                work.rmdir()
        return target

    def _convert(self, xml_path: Path) -> Path:
        example = torch.zeros(1, 3, self.img_size, self.img_size, device=self.backbone.device)

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about python-side shape arithmetic
            model = self._ov.convert_model(self.backbone.image_encoder.eval(), example_input=example)
        self._ov.save_model(model, str(xml_path), compress_to_fp16=False)
        return xml_path

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != (3, self.img_size, self.img_size):
            raise ValueError(f"expected encoder inputs (B, 3, {self.img_size}, {self.img_size}), got "
                             f"{tuple(inputs.shape)}")
        batch = inputs.detach().to("cpu", torch.float32).numpy()
        outputs = []
        with self._lock:  # one infer request: calls from several threads take turns
            for image in batch:  # the converted graph has a static batch of one
                result = self._request.infer({0: np.ascontiguousarray(image[None])})
                outputs.append(torch.from_numpy(np.array(result[0], dtype=np.float32, copy=True)))
        return torch.cat(outputs, dim=0)


def default_encoder_runtime(device: str | torch.device) -> EncoderRuntime:
    """``openvino-f32`` on a CPU with OpenVINO installed, else ``torch``.

    Measured on this project's 2-core CPU (``benchmarks/results/encoder_throughput_cpu.json``): OpenVINO f32 is 2.6x
    the fp32 eager baseline with the same masks; bf16 is 5.9x but its 8-bit mantissa moves small masks (ct2d organs:
    box-mask IoU with the reference down to 0.48, mean 0.948 over 30 dev slices); f16 keeps them (mean 0.993) but is
    slower than f32 on a CPU without fp16 matrix units. So the default is the exact one; ``openvino-bf16`` is there
    for whoever accepts its masks."""
    if torch.device(device).type == "cpu" and openvino_available():
        return EncoderRuntime.OPENVINO_F32
    return EncoderRuntime.TORCH


def make_encoder(backbone: SamBackbone, runtime: EncoderRuntime | str = EncoderRuntime.TORCH,
                 threads: int | None = None) -> ImageEncoderRunner:
    """The runner for ``runtime`` (``auto`` resolves with :func:`default_encoder_runtime`)."""
    try:
        runtime = EncoderRuntime(runtime)
    except ValueError:
        known = ", ".join(r.value for r in EncoderRuntime)
        raise ValueError(f"unknown encoder runtime {runtime!r}; choose one of {known}") from None
    if runtime is EncoderRuntime.AUTO:
        runtime = default_encoder_runtime(backbone.device)
    if runtime is EncoderRuntime.TORCH:
        return TorchEncoder(backbone)
    if not openvino_available():
        raise RuntimeError(f"encoder runtime {runtime.value} needs the openvino package: pip install openvino, or "
                           "use --encoder torch")
    return OpenVinoEncoder(backbone, precision=runtime.value.split("-", 1)[1], threads=threads)

"""create_backend(name, ...): one entry point; each backend's heavy imports happen only when chosen."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, Callable

from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.weights.bundle import parse_weights

from .base import Backend
from .engine_cache import cache_root

log = logging.getLogger(__name__)


def prepare_export(weights: str | Path | None, config: SocialMAEConfig | None, *, int8: bool = False,
                   cache_dir: str | Path | None = None, seed: int = 0):
    """An ONNX export for these weights: an export directory as given, or a cached export of the
    checkpoint (or of the seeded random model), written once and reused while the weights match."""
    from .onnx_export import MANIFEST, ExportError, export_onnx, load_export, quantize_export, weights_fingerprint
    from .torch_backend import load_model

    if weights is not None and (Path(weights) / MANIFEST).is_file():
        export = load_export(weights)
        if int8 and "int8" not in export.manifest["graphs"]["audiovisual"]:
            raise ExportError(f"{weights} has no int8 graphs; make them with `socialmae-rt export-onnx --int8`")
        return export
    model, preprocess = load_model(weights, config, seed)
    directory = Path(cache_dir or cache_root()) / "onnx" / weights_fingerprint(model)[:16]
    try:
        export = load_export(directory)
    except ExportError as reason:
        log.warning("exporting ONNX graphs to %s (once per set of weights): %s", directory, reason)
        export = export_onnx(model, directory, preprocess, source=str(weights) if weights else "random")
    if int8 and "int8" not in export.manifest["graphs"]["audiovisual"]:
        report = quantize_export(export, model)
        log.info("int8 accuracy vs torch fp32: %s", report)
    return export


def _torch(precision: str) -> Callable[..., Backend]:
    def make(weights, config, **options):
        from .torch_backend import TorchBackend

        return TorchBackend(weights, config, precision=precision, **options)

    return make


def _ort(variant: str) -> Callable[..., Backend]:
    def make(weights, config, *, cache_dir=None, threads=None, providers=None, graph_optimization="all", seed=0):
        from .ort_backend import OrtBackend

        export = prepare_export(weights, config, int8=variant == "int8", cache_dir=cache_dir, seed=seed)
        return OrtBackend(export, variant, threads=threads, providers=providers, graph_optimization=graph_optimization)

    return make


def _tensorrt(weights, config, *, cache_dir=None, seed=0, on_status=None, threads=None, **options) -> Backend:
    """`threads` is accepted for a uniform call but only matters if this falls back to the CPU."""
    from .tensorrt_backend import TensorRTConfig, create_tensorrt_backend

    export = prepare_export(weights, config, cache_dir=cache_dir, seed=seed)
    trt_cache = str(Path(cache_dir or cache_root()) / "trt")
    return create_tensorrt_backend(export, TensorRTConfig(cache_dir=trt_cache, **options), on_status=on_status)


TORCH_HINT = "pip install torch==2.13.0 (CPU) or a CUDA build"
ORT_HINT = "pip install onnxruntime (or onnxruntime-gpu for CUDA)"
# name -> (constructor, the module it needs, install hint)
_BACKENDS: dict[str, tuple[Callable[..., Backend], str, str]] = {
    "torch": (_torch("fp32"), "torch", TORCH_HINT),
    "torch-bf16": (_torch("bf16"), "torch", TORCH_HINT),
    "ort": (_ort("fp32"), "onnxruntime", ORT_HINT),
    "ort-int8": (_ort("int8"), "onnxruntime", ORT_HINT),
    # TensorRT falls back to ONNX Runtime (with a warning) where TensorRT or a GPU is missing.
    "trt": (_tensorrt, "onnxruntime", ORT_HINT),
}


def available_backends() -> list[str]:
    return list(_BACKENDS)


def create_backend(
    name: str = "torch",
    weights: str | Path | None = None,
    config: SocialMAEConfig | None = None,
    **options: Any,
) -> Backend:
    """A backend by name: torch, torch-bf16, ort, ort-int8, trt.

    `weights`: a released .pth (sized by `config`), our .safetensors (carries its config), an ONNX
    export directory (ort, ort-int8, trt), None for random weights (a loud warning: outputs
    are meaningless), or a task bundle (`emotion=A laughter=B ...` or a bundle directory from
    `weights import`): one backend of this kind per checkpoint behind one BundleBackend. ONNX
    backends export a checkpoint once into the cache (`cache_dir`, default $SOCIALMAE_RT_CACHE or
    ~/.cache/socialmae_rt).
    """
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(_BACKENDS)}")
    make, module, hint = _BACKENDS[name]
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"backend {name!r} needs the '{module}' package: {hint}") from err
    spec = parse_weights(str(weights) if isinstance(weights, Path) else weights)
    if spec.is_bundle:
        from .bundle_backend import create_bundle_backend

        return create_bundle_backend(spec, lambda path: make(path, None, **options))
    return make(spec.single, config, **options)

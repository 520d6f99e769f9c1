"""create_backend(name, ...): one entry point; each backend's heavy imports happen only when chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from socialmae_rt.backend import Backend
from socialmae_rt.engines.engine_cache import cache_root
from socialmae_rt.engines.exports import export_and_model, prepare_export
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.weights.bundle import parse_weights


def _bars(min_cosine: float | None, max_prob_diff: float | None) -> dict[str, float]:
    """The int8 gate's bars, where a caller set them (else the gate's defaults)."""
    return {k: v for k, v in (("min_cosine", min_cosine), ("max_prob_diff", max_prob_diff)) if v is not None}


def _torch(precision: str) -> Callable[..., Backend]:
    def make(weights, config, *, on_status=None, **options):  # loads in seconds: nothing to report
        from socialmae_rt.engines.torch_backend import TorchBackend

        return TorchBackend(weights, config, precision=precision, **options)

    return make


def _ort(variant: str) -> Callable[..., Backend]:
    def make(weights, config, *, cache_dir=None, threads=None, providers=None, graph_optimization="all", seed=0,
             on_status=None, min_cosine=None, max_prob_diff=None):
        from socialmae_rt.engines.ort_backend import OrtBackend

        export = export_and_model(weights, config, int8=variant == "int8", cache_dir=cache_dir, seed=seed,
                                   on_status=on_status, bars=_bars(min_cosine, max_prob_diff))[0]
        return OrtBackend(export, variant, threads=threads, providers=providers, graph_optimization=graph_optimization)

    return make


def _tensorrt(weights, config, *, cache_dir=None, seed=0, on_status=None, threads=None, **options) -> Backend:
    """`threads`: the CPU threads of the ONNX Runtime fallback (TensorRT itself runs on the GPU)."""
    from socialmae_rt.engines.tensorrt_backend import TensorRTConfig, create_tensorrt_backend

    export = prepare_export(weights, config, cache_dir=cache_dir, seed=seed, on_status=on_status)
    trt_cache = str(Path(cache_dir or cache_root()) / "trt")
    return create_tensorrt_backend(export, TensorRTConfig(cache_dir=trt_cache, **options), on_status=on_status,
                                   threads=threads)


def _openvino(kind: str) -> Callable[..., Backend]:
    def make(weights, config, *, cache_dir=None, threads=None, seed=0, precision="auto",
             calibration_clips=None, held_out_clips=(), min_cosine=None, max_prob_diff=None, on_status=None):
        from socialmae_rt.engines.int8_gate import MAX_BINARY_PROB_DIFF, MIN_INT8_COSINE
        from socialmae_rt.engines.openvino_backend import OpenVinoBackend
        from socialmae_rt.engines.openvino_ir import prepare_ir
        from socialmae_rt.engines.references import fp32_reference

        export, model = export_and_model(weights, config, cache_dir=cache_dir, seed=seed, on_status=on_status)
        ir = prepare_ir(export, kind, cache_dir=cache_dir, calibration_clips=calibration_clips,
                        held_out_clips=held_out_clips or (),
                        reference=fp32_reference(export, model) if kind == "int8" else None,
                        min_cosine=MIN_INT8_COSINE if min_cosine is None else min_cosine,
                        max_prob_diff=MAX_BINARY_PROB_DIFF if max_prob_diff is None else max_prob_diff,
                        progress=on_status)
        return OpenVinoBackend(export, ir, precision=precision, threads=threads)

    return make


TORCH_HINT = "pip install torch==2.13.0 (CPU) or a CUDA build"
OPENVINO_HINT = "pip install openvino"
ORT_HINT = "pip install onnxruntime (or onnxruntime-gpu for CUDA)"
TRITON_HINT = "pip install 'tritonclient[grpc,http]'"
# name -> (constructor, the module it needs, install hint)
_BACKENDS: dict[str, tuple[Callable[..., Backend], str, str]] = {
    "torch": (_torch("fp32"), "torch", TORCH_HINT),
    "torch-bf16": (_torch("bf16"), "torch", TORCH_HINT),
    "ort": (_ort("fp32"), "onnxruntime", ORT_HINT),
    "ort-int8": (_ort("int8"), "onnxruntime", ORT_HINT),
    "ov": (_openvino("fp32"), "openvino", OPENVINO_HINT),
    "ov-int8": (_openvino("int8"), "openvino", OPENVINO_HINT),
    # TensorRT falls back to ONNX Runtime (with a warning) where TensorRT or a GPU is missing.
    "trt": (_tensorrt, "onnxruntime", ORT_HINT),
}


def available_backends() -> list[str]:
    """Every local backend name create_backend takes (besides `auto`, which picks one of these, and
    `triton`, a remote server)."""
    return list(_BACKENDS)


def _needs(name: str, module: str, hint: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"backend {name!r} needs the '{module}' package: {hint}") from err


def create_backend(
    name: str = "torch",
    weights: str | Path | None = None,
    config: SocialMAEConfig | None = None,
    **options: Any,
) -> Backend:
    """A backend by name: auto (engines/auto.py), torch, torch-bf16, ort, ort-int8, ov, ov-int8, trt,
    triton (a Triton Inference Server holding our repository: engines/triton_backend.py).

    `weights`: a released .pth (sized by `config`), our .safetensors (carries its config), an ONNX
    export directory (ort, ort-int8, trt), None for random weights (a loud warning: outputs
    are meaningless), or a task bundle (`emotion=A laughter=B ...` or a bundle directory from
    `weights import`): one backend of this kind per checkpoint behind one BundleBackend. ONNX
    backends export a checkpoint once into the cache (`cache_dir`, default $SOCIALMAE_RT_CACHE or
    ~/.cache/socialmae_rt).
    """
    spec = parse_weights(str(weights) if isinstance(weights, Path) else weights)
    if spec.is_bundle:
        from socialmae_rt.engines.bundle_backend import check_bundle_entries

        check_bundle_entries(spec)  # before `auto` says what it picked and anything builds
    if name == "auto":
        from socialmae_rt.engines.auto import create_auto_backend

        return create_auto_backend(create_backend, weights, config, **options)
    if name == "triton":
        _needs("triton", "tritonclient", TRITON_HINT)
        from socialmae_rt.engines.triton_backend import create_triton_backend

        return create_triton_backend(spec, **options)
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: auto, {', '.join(_BACKENDS)}, triton")
    make, module, hint = _BACKENDS[name]
    _needs(name, module, hint)
    if spec.is_bundle:
        from socialmae_rt.engines.bundle_backend import create_bundle_backend

        return create_bundle_backend(spec, lambda path: make(path, None, **options))
    return make(spec.single, config, **options)

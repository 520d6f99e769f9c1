"""create_backend(name, ...): one entry point; each backend's heavy imports happen only when chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from socialmae_rt.model.config import SocialMAEConfig

from .base import Backend


def _torch(precision: str) -> Callable[..., Backend]:
    def make(weights, config, **options):
        from .torch_backend import TorchBackend

        return TorchBackend(weights, config, precision=precision, **options)

    return make


# name -> (constructor, the module it needs, install hint)
_BACKENDS: dict[str, tuple[Callable[..., Backend], str, str]] = {
    "torch": (_torch("fp32"), "torch", "pip install torch==2.13.0 (CPU) or a CUDA build"),
    "torch-bf16": (_torch("bf16"), "torch", "pip install torch==2.13.0 (CPU) or a CUDA build"),
}


def available_backends() -> list[str]:
    return list(_BACKENDS)


def create_backend(
    name: str = "torch",
    weights: str | Path | None = None,
    config: SocialMAEConfig | None = None,
    **options: Any,
) -> Backend:
    """A backend by name: `torch` (fp32 reference) or `torch-bf16` (CPU autocast).

    `weights`: a released .pth (sized by `config`), our .safetensors (carries its config), or
    None for random weights (a loud warning: outputs are meaningless).
    """
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(_BACKENDS)}")
    make, module, hint = _BACKENDS[name]
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"backend {name!r} needs the '{module}' package: {hint}") from err
    return make(weights, config, **options)

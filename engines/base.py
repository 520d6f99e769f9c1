"""The one protocol every inference backend keeps, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.config import SocialMAEConfig


@dataclass(frozen=True)
class BackendInfo:
    name: str  # "torch", "torch-bf16", ...
    precision: str  # "fp32", "bf16", ...
    device: str  # "cpu", "cuda:0", ...
    weights: str  # path, or "random" when no weights were given


@dataclass
class BackendOutput:
    """One encoder pass for a batch of windows: pooled embedding and every head's raw outputs."""

    embedding: np.ndarray  # float32 [B, D]
    heads: dict[str, np.ndarray]  # head name -> float32 [B, size] (logits / regression values)


@runtime_checkable
class Backend(Protocol):
    info: BackendInfo
    model_config: SocialMAEConfig
    preprocess: PreprocessConfig

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        """audio float32 [B, 1024, 128] and/or video float32 [B, 3, 224, 224, 8] -> outputs."""
        ...

    def close(self) -> None: ...

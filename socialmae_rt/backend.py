"""The one protocol every inference backend keeps, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.modality import Modality
from socialmae_rt.tasks import PERCEPTION_TASKS

StatusCallback = Callable[[str], None]

# Which named inputs each modality's graph takes.
MODE_INPUTS = {
    Modality.AUDIOVISUAL: ("audio", "video"),
    Modality.AUDIO: ("audio",),
    Modality.VIDEO: ("video",),
}


RANDOM_WEIGHTS = "random"  # BackendInfo.weights of a model made without weights (outputs meaningless)


@dataclass(frozen=True)
class BackendInfo:
    name: str  # "torch", "torch-bf16", ...
    precision: str  # "fp32", "bf16", ...
    device: str  # "cpu", "cuda:0", ...
    weights: str  # path, or RANDOM_WEIGHTS when no weights were given

    @property
    def random_weights(self) -> bool:
        return self.weights == RANDOM_WEIGHTS


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


class Int8Refused(RuntimeError):
    """Int8 graphs that stray too far from the fp32 model: not used, and the refusal is cached so
    that the next start says so at once. `auto` and `bench` move on to the next backend."""


class BackendUnavailable(ConnectionError):
    """A remote backend cannot be reached now (server down, network gone, timeout). Not a broken
    window: the pipeline keeps capturing, counts the windows it could not run, says the backend is
    down, and the backend tries again on later windows (with backoff)."""


class NonFiniteOutputError(FloatingPointError):
    """A backend produced NaN or Inf: the result is unusable and is never passed on."""


def _check_one_input(name: str, array: Any, window_shape: Sequence[int]) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"backend inputs must be numpy arrays, got {type(array).__name__} for {name}")
    expected = "[B, " + ", ".join(str(d) for d in window_shape) + "]"
    if array.ndim != len(window_shape) + 1 or tuple(array.shape[1:]) != tuple(window_shape):
        raise ValueError(f"{name} must have shape {expected}, got {list(array.shape)}")
    if array.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {array.dtype}; convert with {name}.astype(np.float32)")
    if array.shape[0] < 1:
        raise ValueError(f"{name} has an empty batch (B=0); pass at least one window")
    if not np.isfinite(array).all():  # NaN in would come out as NaN and be blamed on the engine
        raise ValueError(f"{name} contains NaN or Inf values; check the preprocessing of this window")
    return np.ascontiguousarray(array)


def check_inputs(
    audio: Any, video: Any, window_shapes: Mapping[str, Sequence[int]]
) -> tuple[Modality, dict[str, np.ndarray], int]:
    """Validate inputs before they reach a runtime: -> (modality, named C-contiguous arrays, batch).

    Each given input must be a finite float32 numpy array [B, *window_shape] with B >= 1, and
    audio and video must hold the same number of windows.
    """
    modality = Modality.of(audio, video)
    given = {"audio": audio, "video": video}
    inputs = {name: _check_one_input(name, given[name], window_shapes[name]) for name in MODE_INPUTS[modality]}
    batches = {name: array.shape[0] for name, array in inputs.items()}
    if len(set(batches.values())) > 1:
        raise ValueError(f"audio and video must hold the same number of windows, got {batches}")
    return modality, inputs, next(iter(batches.values()))


def check_finite(outputs: Mapping[str, np.ndarray], where: str, hint: str = "") -> None:
    """Raise when any output holds NaN or Inf, naming the outputs and how many values."""
    bad = {name: int((~np.isfinite(values)).sum()) for name, values in outputs.items()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        listed = ", ".join(f"{n} ({c} values)" for n, c in bad.items())
        raise NonFiniteOutputError(f"{where} produced NaN/Inf in {listed}" + (f"; {hint}" if hint else ""))


def task_sources(backend: Backend) -> dict[str, str]:
    """Which checkpoint serves which task (for status lines and diagnostics)."""
    tasks = getattr(backend, "tasks", None)
    if tasks is not None:
        return dict(tasks)
    return {head: backend.info.weights for head in backend.model_config.head_sizes if head in PERCEPTION_TASKS}


def describe_tasks(backend: Backend) -> str:
    """`emotion <- a.safetensors; laughter <- b.safetensors` for console lines (`weights W` with no task head)."""
    served = "; ".join(f"{task} <- {path}" for task, path in task_sources(backend).items())
    return served or f"weights {backend.info.weights}"

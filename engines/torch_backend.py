"""Reference backend: the PyTorch model on CPU (fp32 or bf16 autocast) or CUDA."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch

from socialmae_rt.backend import RANDOM_WEIGHTS, BackendInfo, BackendOutput
from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model import SocialMAE, SocialMAEConfig, load_any_checkpoint
from socialmae_rt.util.threads import compute_threads, idle_threads_spin

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "NO WEIGHTS GIVEN: the model has RANDOM weights and its outputs are MEANINGLESS. "
    "Pass --weights with a released Social-MAE checkpoint (.pth) or one of ours (.safetensors); "
    "see README, 'Weights'."
)


def load_model(
    weights: str | Path | None, config: SocialMAEConfig | None = None, seed: int = 0
) -> tuple[SocialMAE, PreprocessConfig]:
    """The model a backend runs: from a checkpoint, or random (seeded) with a loud warning."""
    if weights is None:
        log.warning(RANDOM_WEIGHTS_WARNING)
        torch.manual_seed(seed)
        return SocialMAE(config or SocialMAEConfig()).eval(), PreprocessConfig()
    loaded = load_any_checkpoint(weights, config)
    return loaded.model.eval(), loaded.preprocess


class TorchBackend:
    """SocialMAE in eager PyTorch; `precision` "fp32" or "bf16" (autocast)."""

    def __init__(
        self,
        weights: str | Path | None = None,
        config: SocialMAEConfig | None = None,
        *,
        precision: str = "fp32",
        device: str = "cpu",
        threads: int | None = None,
        seed: int = 0,
    ) -> None:
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {precision!r}")
        if precision == "fp16" and not device.startswith("cuda"):
            raise ValueError("fp16 autocast needs a CUDA device; on CPU use precision='bf16'")
        # The pool is process-wide in torch: the last backend made sets it.
        self.threads = compute_threads(threads)
        torch.set_num_threads(self.threads)
        if idle_threads_spin():
            log.info("torch's idle OpenMP threads spin (slow beside other busy processes): set "
                     "OMP_WAIT_POLICY=PASSIVE, or call socialmae_rt.util.threads.yield_idle_threads() before importing torch")
        self.device = torch.device(device)
        self.precision = precision
        model, self.preprocess = load_model(weights, config, seed)
        self.model = model.to(self.device)
        self.model_config = self.model.config
        self.info = BackendInfo(
            name="torch" if precision == "fp32" else f"torch-{precision}",
            precision=precision,
            device=str(self.device),
            weights=str(weights) if weights is not None else RANDOM_WEIGHTS,
        )

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _tensor(self, array: np.ndarray | None) -> torch.Tensor | None:
        if array is None:
            return None
        if not isinstance(array, np.ndarray):
            raise TypeError(f"backend inputs must be numpy arrays, got {type(array).__name__}")
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.inference_mode()
    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        with self._autocast():
            out = self.model.predict(self._tensor(audio), self._tensor(video))
        return BackendOutput(
            embedding=out.embedding.float().cpu().numpy(),
            heads={name: logits.float().cpu().numpy() for name, logits in out.logits.items()},
        )

    def close(self) -> None:
        self.model = None

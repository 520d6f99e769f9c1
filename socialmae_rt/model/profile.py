"""Size and cost of a model configuration, measured on the model itself (not from a formula)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.social_mae import Modality, SocialMAE


@dataclass
class ModelProfile:
    name: str
    parameters: int
    gflops: dict[Modality, float]  # per 4 s window, batch 1, multiply-add counted as 2 FLOPs


def dummy_inputs(config: SocialMAEConfig, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.zeros(batch, config.audio_length, config.num_mel_bins)  # [B, T, F]
    video = torch.zeros(batch, config.in_chans, config.image_size, config.image_size, config.num_frames)
    return audio, video  # video: [B, C, H, W, T]


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_gflops(model: SocialMAE, modality: Modality = Modality.AUDIOVISUAL) -> float:
    """GFLOP of one window, counted by PyTorch's FLOP counter over a real forward pass."""
    audio, video = dummy_inputs(model.config)
    inputs = {
        Modality.AUDIOVISUAL: (audio, video),
        Modality.AUDIO: (audio, None),
        Modality.VIDEO: (None, video),
    }[modality]
    counter = FlopCounterMode(display=False)
    # The counter has no formula for the fused CPU attention kernel; the math backend spells
    # attention out as matmuls it does count.
    with sdpa_kernel([SDPBackend.MATH]), counter:
        model.predict(*inputs)
    return counter.get_total_flops() / 1e9


def profile_config(name: str, config: SocialMAEConfig) -> ModelProfile:
    model = SocialMAE(config).eval()
    return ModelProfile(
        name=name,
        parameters=count_parameters(model),
        gflops={m: count_gflops(model, m) for m in Modality},
    )

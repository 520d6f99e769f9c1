"""Fixtures for model tests: the released checkpoint layout, written out from the reference code.

The released checkpoint layout (`official_layout`, `official_state`) lives in tests/fixtures/checkpoints.py,
shared with the pretraining tests.
"""

from __future__ import annotations

import pytest
import torch

from socialmae_rt.model import SocialMAEConfig


@pytest.fixture
def small_config() -> SocialMAEConfig:
    """Full input sizes (the released token counts), tiny width and depth: fast on 2 cores."""
    return SocialMAEConfig(embed_dim=64, num_heads=4, modality_specific_depth=2, joint_depth=1, num_classes=6)


@pytest.fixture
def inputs(small_config):
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(2, small_config.audio_length, small_config.num_mel_bins, generator=generator)
    video = torch.randn(2, 3, small_config.image_size, small_config.image_size, small_config.num_frames, generator=generator)
    return audio, video



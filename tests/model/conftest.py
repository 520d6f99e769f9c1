"""Fixtures for model tests: the released checkpoint layout, written out from the reference code.

`official_shapes` lists every tensor a released fine-tuned checkpoint (SocialMAEFT) holds, by the
reference's module names and shapes, independently of our model code, so the tests compare our
model against the reference layout rather than against itself.
"""

from __future__ import annotations

import pytest
import torch

from socialmae_rt.model import SocialMAEConfig


def official_shapes(config: SocialMAEConfig) -> dict[str, tuple[int, ...]]:
    d, p, s = config.embed_dim, config.patch_size, config.temporal_stride
    hidden = int(d * config.mlp_ratio)
    num_audio = (config.num_mel_bins // p) * (config.audio_length // p)
    num_video = (config.image_size // p) ** 2 * (config.num_frames // s)
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed_a.proj.weight": (d, 1, p, p),
        "patch_embed_a.proj.bias": (d,),
        "patch_embed_v.proj.weight": (d, 3, p, p, s),
        "patch_embed_v.proj.bias": (d,),
        "modality_a": (1, 1, d),
        "modality_v": (1, 1, d),
        "pos_embed_a": (1, num_audio, d),
        "pos_embed_v": (1, num_video, d),
    }
    block = {
        "attn.qkv.weight": (3 * d, d),
        "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d),
        "attn.proj.bias": (d,),
        "mlp.fc1.weight": (hidden, d),
        "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (d, hidden),
        "mlp.fc2.bias": (d,),
    }
    for norm in ("norm1", "norm1_a", "norm1_v", "norm2", "norm2_a", "norm2_v"):
        block[f"{norm}.weight"] = (d,)
        block[f"{norm}.bias"] = (d,)
    depths = {"blocks_a": config.modality_specific_depth, "blocks_v": config.modality_specific_depth}
    depths["blocks_u"] = config.joint_depth
    for group, depth in depths.items():
        for i in range(depth):
            for name, shape in block.items():
                shapes[f"{group}.{i}.{name}"] = shape
    for norm in ("norm_a", "norm_v", "norm"):
        shapes[f"{norm}.weight"] = (d,)
        shapes[f"{norm}.bias"] = (d,)
    shapes["mlp_head.0.weight"] = (d,)
    shapes["mlp_head.0.bias"] = (d,)
    shapes["mlp_head.1.weight"] = (config.num_classes, d)
    shapes["mlp_head.1.bias"] = (config.num_classes,)
    return shapes


def make_official_state(config: SocialMAEConfig, prefix: str = "module.", seed: int = 0) -> dict[str, torch.Tensor]:
    """A released-format state dict with random values (LayerNorm weights near 1)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in official_shapes(config).items():
        tensor = torch.randn(shape, generator=generator) * 0.05
        if "norm" in name and name.endswith(".weight") or name == "mlp_head.0.weight":
            tensor += 1.0
        state[prefix + name] = tensor
    return state


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


@pytest.fixture
def official_layout():
    """The reference layout as a function: config -> {name: shape}."""
    return official_shapes


@pytest.fixture
def official_state():
    """Factory: (config, prefix='module.', seed=0) -> a released-format state dict."""
    return make_official_state

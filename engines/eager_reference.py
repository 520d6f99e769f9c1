"""The model as the reference code computes it, for the bench's "vs reference" row.

The reference (timm 0.4.5 blocks) writes attention out (q @ k^T * scale, softmax, @ v) and runs
the patch embeddings as strided convolutions. `as_reference_code(model)` swaps those modules
for ones that compute that way on the same parameters (shared, not copied), so the bench times
our model against the reference's arithmetic in the same process. Outputs equal ours to float
rounding (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from socialmae_rt.engines.module_views import with_attention
from socialmae_rt.model import SocialMAE
from socialmae_rt.model.social_mae import Attention, AudioPatchEmbed, VideoPatchEmbed


class ExplicitAttention(nn.Module):
    """Attention spelled out as in timm 0.4.5, on another Attention's qkv and proj layers."""

    def __init__(self, fused: Attention) -> None:
        super().__init__()
        self.num_heads = fused.num_heads
        self.qkv, self.proj = fused.qkv, fused.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.num_heads
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)  # [3, B, H, N, Dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * head_dim**-0.5  # [B, H, N, N]
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(batch, tokens, dim))  # [B, N, D]


class ConvAudioPatchEmbed(nn.Module):
    def __init__(self, ours: AudioPatchEmbed) -> None:
        super().__init__()
        self.proj = ours.proj

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = self.proj(fbank.unsqueeze(1).transpose(2, 3))  # [B, D, F/p, T/p]
        return x.flatten(2).transpose(1, 2)  # [B, Na, D]


class ConvVideoPatchEmbed(nn.Module):
    def __init__(self, ours: VideoPatchEmbed) -> None:
        super().__init__()
        self.proj = ours.proj

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(frames).flatten(2).transpose(1, 2)  # [B, D, H/p, W/p, T/s] -> [B, Nv, D]


def as_reference_code(model: SocialMAE) -> SocialMAE:
    """A view of `model` whose attention and patch embeddings compute as the reference's do."""
    reference = with_attention(model, ExplicitAttention)
    reference.patch_embed_a = ConvAudioPatchEmbed(model.patch_embed_a)
    reference.patch_embed_v = ConvVideoPatchEmbed(model.patch_embed_v)
    return reference

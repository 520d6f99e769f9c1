"""The Social-MAE encoder with its task heads (fine-tuning layout of the released checkpoints).

Maths and parameter names follow the released checkpoints (timm 0.4.5 ViT blocks, CAV-MAE
layout): `patch_embed_a/v`, `modality_a/v`, `pos_embed_a/v`, `blocks_a/v/u`, `norm_a/v`, `norm`,
`mlp_head`. Audio tokens and video tokens pass their own blocks, then the shared block(s):

    both streams  -> blocks_u on the concatenation with norm1/norm2 -> norm
    audio only    -> blocks_u with norm1_a/norm2_a                    -> norm_a
    video only    -> blocks_u with norm1_v/norm2_v                    -> norm_v

then mean-pool over tokens -> pooled embedding -> heads (LayerNorm + Linear each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.modality import Modality

# Which LayerNorm pair of a block a stream uses (the released blocks carry all three pairs).
_NORM_SUFFIX = {Modality.AUDIOVISUAL: "", Modality.AUDIO: "_a", Modality.VIDEO: "_v"}


def reference_sincos_pos_embed(embed_dim: int, num_tokens: int, grid_width: int) -> np.ndarray:
    """Position embedding exactly as the reference code initialises it.

    The reference's 2-D sin-cos helper feeds the column coordinate (token index mod grid width)
    to both halves and uses frequencies i / (D/4) / 1000, so every row is
    [sin(p*w), cos(p*w), sin(p*w), cos(p*w)]. Released checkpoints store the trained values;
    this only seeds a fresh model the way the released one was seeded.
    """
    quarter = embed_dim // 4
    omega = np.arange(quarter, dtype=np.float64) / quarter / 1000.0  # [D/4]
    positions = np.arange(num_tokens, dtype=np.float64) % grid_width  # [N]
    angles = np.outer(positions, omega)  # [N, D/4]
    half = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # [N, D/2]
    return np.concatenate([half, half], axis=1).astype(np.float32)  # [N, D]


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


# The patch embeddings keep the reference's Conv2d/Conv3d parameters (kernel = stride, so the
# checkpoints load unchanged) but compute the same sums as patchify + one matrix multiply: a
# convolution with kernel = stride is exactly that, and runtimes run a [tokens, C*k] x [C*k, D]
# GEMM far better than a strided convolution (the ViT-B video Conv3d took 16.5 % of an int8
# OpenVINO window as a convolution). Token order is the convolution's output order.


class AudioPatchEmbed(nn.Module):
    """Fbank [B, T, F] -> patch tokens [B, (F/p)*(T/p), D], mel-row major."""

    def __init__(self, config: SocialMAEConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.patch = p
        self.proj = nn.Conv2d(1, config.embed_dim, kernel_size=p, stride=p)  # weight [D, 1, p(F), p(T)]

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        _, frames, bins = fbank.shape
        p = self.patch
        # -1 for the batch keeps it dynamic in exported graphs
        x = fbank.reshape(-1, frames // p, p, bins // p, p)  # [B, T/p, pT, F/p, pF]
        x = x.permute(0, 3, 1, 4, 2)  # [B, F/p, T/p, pF, pT]: conv output order, kernel order
        x = x.reshape(-1, (bins // p) * (frames // p), p * p)  # [B, Na, p*p]
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)  # [B, Na, D]


class VideoPatchEmbed(nn.Module):
    """Frames [B, C, H, W, T] -> tubelet tokens [B, (H/p)*(W/p)*(T/s), D], time fastest."""

    def __init__(self, config: SocialMAEConfig) -> None:
        super().__init__()
        p, s = config.patch_size, config.temporal_stride
        self.patch, self.stride = p, s
        # weight [D, C, p, p, s]
        self.proj = nn.Conv3d(config.in_chans, config.embed_dim, kernel_size=(p, p, s), stride=(p, p, s))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        _, chans, height, width, time = frames.shape
        p, s = self.patch, self.stride
        x = frames.reshape(-1, chans, height // p, p, width // p, p, time // s, s)  # [B, C, H/p, p, W/p, p, T/s, s]
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # [B, H/p, W/p, T/s, C, p, p, s]
        x = x.reshape(-1, (height // p) * (width // p) * (time // s), chans * p * p * s)  # [B, Nv, C*p*p*s]
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)  # [B, Nv, D]


class Attention(nn.Module):
    """Multi-head self-attention with timm 0.4.5 parameter names (qkv, proj); fused kernel."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)  # [B, N, 3, H, Dh]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [B, H, N, Dh]
        x = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, Dh], scale Dh^-0.5 as in timm
        x = x.transpose(1, 2).reshape(batch, tokens, dim)  # [B, N, D]
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with one LayerNorm pair per stream (joint, audio, video)."""

    def __init__(self, config: SocialMAEConfig) -> None:
        super().__init__()
        dim, eps = config.embed_dim, config.norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm1_a = nn.LayerNorm(dim, eps=eps)
        self.norm1_v = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, config.num_heads, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.norm2_a = nn.LayerNorm(dim, eps=eps)
        self.norm2_v = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))

    def forward(self, x: torch.Tensor, stream: Modality = Modality.AUDIOVISUAL) -> torch.Tensor:
        suffix = _NORM_SUFFIX[stream]
        x = x + self.attn(getattr(self, "norm1" + suffix)(x))
        return x + self.mlp(getattr(self, "norm2" + suffix)(x))


def _make_head(dim: int, size: int, eps: float) -> nn.Sequential:
    # Sequential so parameters are named `.0` (LayerNorm) and `.1` (Linear) like `mlp_head`.
    return nn.Sequential(nn.LayerNorm(dim, eps=eps), nn.Linear(dim, size))


@dataclass
class SocialMAEOutput:
    """One encoder pass: the pooled embedding and every head's raw outputs (logits)."""

    embedding: torch.Tensor  # [B, D]
    logits: dict[str, torch.Tensor]  # head name -> [B, size]
    modality: Modality


class SocialMAE(nn.Module):
    """Social-MAE encoder + task heads. `model(audio=a, video=v)` returns the primary head's logits."""

    def __init__(self, config: SocialMAEConfig | None = None) -> None:
        super().__init__()
        config = config or SocialMAEConfig()
        self.config = config
        dim = config.embed_dim
        self.patch_embed_a = AudioPatchEmbed(config)
        self.patch_embed_v = VideoPatchEmbed(config)
        self.modality_a = nn.Parameter(torch.zeros(1, 1, dim))
        self.modality_v = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed_a = nn.Parameter(torch.zeros(1, config.num_audio_patches, dim))
        self.pos_embed_v = nn.Parameter(torch.zeros(1, config.num_video_patches, dim))
        self.blocks_a = nn.ModuleList(Block(config) for _ in range(config.modality_specific_depth))
        self.blocks_v = nn.ModuleList(Block(config) for _ in range(config.modality_specific_depth))
        self.blocks_u = nn.ModuleList(Block(config) for _ in range(config.joint_depth))
        self.norm_a = nn.LayerNorm(dim, eps=config.norm_eps)
        self.norm_v = nn.LayerNorm(dim, eps=config.norm_eps)
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.mlp_head = _make_head(dim, config.num_classes, config.norm_eps)  # the official single head
        self.extra_heads = nn.ModuleDict(
            {name: _make_head(dim, size, config.norm_eps) for name, size in config.extra_heads.items()}
        )
        self.initialize_weights()

    # Initialisation (as the reference seeds a fresh model) ---------------------------------
    def initialize_weights(self) -> None:
        cfg = self.config
        pos_a = reference_sincos_pos_embed(cfg.embed_dim, cfg.num_audio_patches, grid_width=cfg.audio_grid[1])
        self.pos_embed_a.data.copy_(torch.from_numpy(pos_a).unsqueeze(0))
        # The reference lays video tokens on a sqrt(N) x sqrt(N) grid (28 x 28 for 784 tubelets).
        side = int(round(cfg.num_video_patches**0.5))
        video_width = side if side * side == cfg.num_video_patches else cfg.video_grid[1]
        pos_v = reference_sincos_pos_embed(cfg.embed_dim, cfg.num_video_patches, grid_width=video_width)
        self.pos_embed_v.data.copy_(torch.from_numpy(pos_v).unsqueeze(0))
        for proj in (self.patch_embed_a.proj, self.patch_embed_v.proj):
            nn.init.xavier_uniform_(proj.weight.data.view(proj.weight.shape[0], -1))
        nn.init.normal_(self.modality_a, std=0.02)
        nn.init.normal_(self.modality_v, std=0.02)
        self.apply(self._init_module)

    @staticmethod
    def _init_module(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # Input checks ----------------------------------------------------------------------------
    def _check_input(self, name: str, x: torch.Tensor, expected: tuple[int, ...], meaning: str) -> None:
        shape_text = f"[B, {', '.join(map(str, expected))}] ({meaning})"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape {shape_text}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor {shape_text}, got dtype {x.dtype}")
        if _tracing():
            return  # checks would freeze into the traced graph; the ONNX backends check their inputs
        if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{name} must have shape {shape_text}, got {list(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} has batch size 0; need at least one window")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or Inf values; check the preprocessing of this window")

    def _check_inputs(self, audio: torch.Tensor | None, video: torch.Tensor | None) -> Modality:
        modality = Modality.of(audio, video)
        cfg = self.config
        if audio is not None:
            self._check_input("audio", audio, (cfg.audio_length, cfg.num_mel_bins), "fbank frames x mel bins")
        if video is not None:
            self._check_input(
                "video",
                video,
                (cfg.in_chans, cfg.image_size, cfg.image_size, cfg.num_frames),
                "channels x height x width x frames, time last",
            )
        if modality is Modality.AUDIOVISUAL and not _tracing() and audio.shape[0] != video.shape[0]:
            raise ValueError(
                f"audio and video must have the same batch size, got {audio.shape[0]} and {video.shape[0]}"
            )
        return modality

    # Forward ------------------------------------------------------------------------------
    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        return self.patch_embed_a(audio) + self.pos_embed_a + self.modality_a  # [B, Na, D]

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.patch_embed_v(video) + self.pos_embed_v + self.modality_v  # [B, Nv, D]

    def encode(self, audio: torch.Tensor | None = None, video: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embedding [B, D] from audio [B, T, F], video [B, C, H, W, T], or both."""
        modality = self._check_inputs(audio, video)
        streams = []
        if audio is not None:
            a = self.embed_audio(audio)
            for block in self.blocks_a:
                a = block(a)
            streams.append(a)
        if video is not None:
            v = self.embed_video(video)
            for block in self.blocks_v:
                v = block(v)
            streams.append(v)
        x = torch.cat(streams, dim=1)  # [B, Na + Nv, D] (or one stream alone)
        for block in self.blocks_u:
            x = block(x, modality)
        final_norm = {Modality.AUDIOVISUAL: self.norm, Modality.AUDIO: self.norm_a, Modality.VIDEO: self.norm_v}
        return final_norm[modality](x).mean(dim=1)  # [B, D]

    def apply_heads(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head on a pooled embedding: name -> logits [B, size], primary head first."""
        logits = {self.config.primary_head: self.mlp_head(embedding)}
        for name, head in self.extra_heads.items():
            logits[name] = head(embedding)
        return logits

    def predict(self, audio: torch.Tensor | None = None, video: torch.Tensor | None = None) -> SocialMAEOutput:
        """One encoder pass, all heads, plus the pooled embedding."""
        embedding = self.encode(audio, video)
        return SocialMAEOutput(embedding, self.apply_heads(embedding), Modality.of(audio, video))

    def forward(self, audio: torch.Tensor | None = None, video: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp_head(self.encode(audio, video))  # [B, num_classes]

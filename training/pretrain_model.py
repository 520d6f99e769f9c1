"""The Social-MAE pretraining model: our encoder + the MAE decoder of the released checkpoint.

Parameter names are those of the reference pretraining class (HuBohy/SocialMAE
`src/models/social_mae.py`, `SocialMAE`, a CAV-MAE extension), saved bare at the top level:
encoder `patch_embed_a/v`, `modality_a/v`, `pos_embed_a/v`, `blocks_a/v/u`, `norm_a/v`, `norm`
(no task head), decoder `decoder_embed`, `mask_token` (one, shared by both modalities),
`decoder_modality_a/v`, `decoder_pos_embed_a/v`, `decoder_blocks`, `decoder_norm`,
`decoder_pred_a/v`. A released pretraining checkpoint therefore loads strictly once
DataParallel's `module.` prefix is gone.

One pretraining step, as the reference does it:
  embed both streams -> mask 75% of each stream's tokens at random, per sample
  visible audio -> blocks_a, visible video -> blocks_v
  reconstruction: concat -> blocks_u (joint norms) -> norm -> decoder -> masked-patch MSE per stream
  contrastive:    audio -> blocks_u (_a norms) -> norm_a, video -> blocks_u (_v norms) -> norm_v,
                  mean-pool over visible tokens -> InfoNCE (temperature 0.05)
  loss = mae_weight * (mae_a + mae_v) + contrastive_weight * infonce
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.features.config import dataclass_from_dict
from socialmae_rt.model.checkpoint import (
    _DECODER_KEY_PREFIXES, CheckpointError, _read_torch_file, _unwrap_state_dict, compare_keys, describe_state_dict,
    load_state_strictly, official_key_to_model_key)
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.social_mae import Block, Modality, SocialMAE, reference_sincos_pos_embed
from socialmae_rt.training.masking import MaskedTokens, num_visible_tokens, random_masking, restore_with_mask_tokens

# SocialMAE submodules that are task heads: fine-tuning only, absent from a pretraining checkpoint.
_HEAD_MODULES = ("mlp_head", "extra_heads")
# SocialMAEConfig fields that size the heads only; every other field shapes the encoder.
_HEAD_FIELDS = ("num_classes", "primary_head", "extra_heads")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class PretrainConfig:
    """Social-MAE pretraining: encoder size, MAE decoder size, masking and loss weights.

    Defaults are the reference's (`SocialMAE(...)` in `main_pretrain.py` and its argument
    defaults): decoder 512 wide, 8 blocks, 16 heads; 75% masking per modality; MAE weight 1,
    contrastive weight 0.01 at temperature 0.05, single-direction InfoNCE; raw-pixel targets.
    """

    encoder: SocialMAEConfig = field(default_factory=SocialMAEConfig)
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    mask_ratio_a: float = 0.75
    mask_ratio_v: float = 0.75
    mae_weight: float = 1.0
    contrastive_weight: float = 0.01
    contrastive_temperature: float = 0.05
    # False: the reference (and CAV-MAE's default) softmaxes over audio for each video only;
    # True: CAV-MAE's `bidirect_contrast`, the mean of both directions.
    bidirectional_contrastive: bool = False
    # Normalise each target patch by its own mean and variance (MAE's option; reference default off).
    norm_pix_loss: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder, Mapping):
            self.encoder = SocialMAEConfig.from_dict(self.encoder)
        if not isinstance(self.encoder, SocialMAEConfig):
            raise TypeError(f"PretrainConfig.encoder must be a SocialMAEConfig, got {type(self.encoder).__name__}")
        for name in ("decoder_dim", "decoder_depth", "decoder_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"PretrainConfig.{name} must be a positive integer, got {value!r}")
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(
                f"PretrainConfig.decoder_dim ({self.decoder_dim}) must be divisible by decoder_heads "
                f"({self.decoder_heads})"
            )
        if self.decoder_dim % 4:
            raise ValueError(
                f"PretrainConfig.decoder_dim must be a multiple of 4 for the sin-cos position embedding, "
                f"got {self.decoder_dim}"
            )
        for name in ("mae_weight", "contrastive_weight"):
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (is_number and math.isfinite(value) and value >= 0):
                raise ValueError(f"PretrainConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.mae_weight == 0 and self.contrastive_weight == 0:
            raise ValueError("PretrainConfig: mae_weight and contrastive_weight are both 0; nothing would be trained")
        if not (isinstance(self.contrastive_temperature, (int, float)) and self.contrastive_temperature > 0):
            raise ValueError(
                f"PretrainConfig.contrastive_temperature must be > 0, got {self.contrastive_temperature!r}"
            )
        tokens = {"mask_ratio_a": self.encoder.num_audio_patches, "mask_ratio_v": self.encoder.num_video_patches}
        for name, num_tokens in tokens.items():
            ratio = getattr(self, name)
            if not (isinstance(ratio, (int, float)) and 0 <= ratio < 1):
                raise ValueError(f"PretrainConfig.{name} must be in [0, 1), got {ratio!r}")
            visible = num_visible_tokens(num_tokens, ratio)
            if visible < 1:
                raise ValueError(
                    f"PretrainConfig.{name}={ratio} leaves no visible token of {num_tokens}; lower the ratio"
                )
            if self.mae_weight > 0 and visible == num_tokens:
                raise ValueError(
                    f"PretrainConfig.{name}={ratio} hides none of {num_tokens} tokens, so the reconstruction "
                    "loss has nothing to reconstruct; raise the ratio or set mae_weight=0"
                )

    @property
    def decoder_block_config(self) -> SocialMAEConfig:
        """The decoder's blocks are encoder blocks at decoder width (same names, norm1_a/_v included)."""
        return replace(self.encoder, embed_dim=self.decoder_dim, num_heads=self.decoder_heads)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PretrainConfig":
        return dataclass_from_dict(cls, data, "PretrainConfig")


# ---------------------------------------------------------------------------------------------
# Reconstruction targets: patches in the patch embeddings' token order
# ---------------------------------------------------------------------------------------------


def patchify_audio(fbank: torch.Tensor, config: SocialMAEConfig) -> torch.Tensor:
    """Fbank [B, T, F] -> [B, Na, p*p] in AudioPatchEmbed's token order (mel rows major).

    Within a patch, values run mel-bin major, frame minor (the reference's (p, q) order).
    """
    p = config.patch_size
    rows, cols = config.audio_grid
    batch = fbank.shape[0]
    x = fbank.transpose(1, 2)  # [B, F, T], as the patch embedding sees it
    x = x.reshape(batch, rows, p, cols, p)  # [B, F/p, p, T/p, p]
    x = x.permute(0, 1, 3, 2, 4)  # [B, F/p, T/p, p, p]
    return x.reshape(batch, rows * cols, p * p)  # [B, Na, p*p]


def unpatchify_audio(patches: torch.Tensor, config: SocialMAEConfig) -> torch.Tensor:
    """Inverse of `patchify_audio`: [B, Na, p*p] -> fbank [B, T, F]."""
    p = config.patch_size
    rows, cols = config.audio_grid
    batch = patches.shape[0]
    x = patches.reshape(batch, rows, cols, p, p)  # [B, F/p, T/p, p, p]
    x = x.permute(0, 1, 3, 2, 4)  # [B, F/p, p, T/p, p]
    x = x.reshape(batch, rows * p, cols * p)  # [B, F, T]
    return x.transpose(1, 2)  # [B, T, F]


def patchify_video(frames: torch.Tensor, config: SocialMAEConfig) -> torch.Tensor:
    """Frames [B, C, H, W, T] -> [B, Nv, s*p*p*C] in VideoPatchEmbed's token order (time fastest).

    Within a tubelet, values run frame, row, column, channel (the reference's (s, p, q, c) order,
    which is the layout `decoder_pred_v` of a released checkpoint writes).
    """
    p, s, c = config.patch_size, config.temporal_stride, config.in_chans
    rows, cols, slices = config.video_grid
    batch = frames.shape[0]
    x = frames.reshape(batch, c, rows, p, cols, p, slices, s)  # [B, C, H/p, p, W/p, p, T/s, s]
    x = x.permute(0, 2, 4, 6, 7, 3, 5, 1)  # [B, H/p, W/p, T/s, s, p, p, C]
    return x.reshape(batch, rows * cols * slices, s * p * p * c)  # [B, Nv, s*p*p*C]


def unpatchify_video(patches: torch.Tensor, config: SocialMAEConfig) -> torch.Tensor:
    """Inverse of `patchify_video`: [B, Nv, s*p*p*C] -> frames [B, C, H, W, T]."""
    p, s, c = config.patch_size, config.temporal_stride, config.in_chans
    rows, cols, slices = config.video_grid
    batch = patches.shape[0]
    x = patches.reshape(batch, rows, cols, slices, s, p, p, c)  # [B, H/p, W/p, T/s, s, p, p, C]
    x = x.permute(0, 7, 1, 5, 2, 6, 3, 4)  # [B, C, H/p, p, W/p, p, T/s, s]
    return x.reshape(batch, c, rows * p, cols * p, slices * s)  # [B, C, H, W, T]


def reference_video_token_order(patches: torch.Tensor, config: SocialMAEConfig) -> torch.Tensor:
    """Reorder video patches [B, Nv, V] from our (row, column, time) order to the reference's targets.

    The reference's `patchify` lists tubelets time-slice major while its Conv3d embedding (and so
    its mask and its decoder) list them time-slice minor: its video loss compared each decoder
    output with another tubelet. Use this only to reproduce the reference's loss values.
    """
    rows, cols, slices = config.video_grid
    batch, _, values = patches.shape
    x = patches.reshape(batch, rows, cols, slices, values)  # [B, H/p, W/p, T/s, V]
    return x.permute(0, 3, 1, 2, 4).reshape(batch, -1, values)  # [B, Nv, V], time-slice major


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def masked_patch_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix_loss: bool = False
) -> torch.Tensor:
    """Mean squared error over hidden patches only: mean over a patch's values, then over hidden patches.

    pred, target [B, N, V]; mask [B, N] with 1 where the patch was hidden from the encoder.
    """
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)  # [B, N, 1]
        var = target.var(dim=-1, keepdim=True)  # [B, N, 1], unbiased as in the reference
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # [B, N]
    return (per_patch * mask).sum() / mask.sum()


def info_nce(
    audio_rep: torch.Tensor, video_rep: torch.Tensor, temperature: float, bidirectional: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE between paired clip representations [B, D]; returns (loss, retrieval accuracy).

    Similarities of L2-normalised vectors over `temperature`, rows audio i, columns video j. The
    reference softmaxes each column over the audio clips (dim 0): for every video, pick its audio.
    `bidirectional` averages that with the other direction (every audio picks its video).
    """
    audio_rep = F.normalize(audio_rep, dim=-1)
    video_rep = F.normalize(video_rep, dim=-1)
    logits = audio_rep @ video_rep.T / temperature  # [B, B]
    targets = torch.arange(logits.shape[0], device=logits.device)
    audio_for_video = -torch.diagonal(F.log_softmax(logits, dim=0)).mean()
    accuracy = (logits.argmax(dim=0) == targets).float().mean()
    if not bidirectional:
        return audio_for_video, accuracy
    video_for_audio = -torch.diagonal(F.log_softmax(logits, dim=1)).mean()
    return (audio_for_video + video_for_audio) / 2, accuracy


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


@dataclass
class EncodedTokens:
    """What the masked encoder hands on: the joint tokens for the decoder, the pooled views for InfoNCE."""

    joint: torch.Tensor  # [B, Ka + Kv, D] visible tokens after blocks_u (joint norms) and norm
    audio_pooled: torch.Tensor  # [B, D] visible audio after blocks_u (_a norms), norm_a, mean-pooled
    video_pooled: torch.Tensor  # [B, D] visible video after blocks_u (_v norms), norm_v, mean-pooled
    audio: MaskedTokens
    video: MaskedTokens


@dataclass
class PretrainOutput:
    """One pretraining pass. Loss terms are unweighted; `loss` is the weighted total to optimise.

    A term whose weight is 0 is not computed (None), as the reference skips it.
    """

    loss: torch.Tensor  # mae_weight * (mae_loss_a + mae_loss_v) + contrastive_weight * contrastive_loss
    mask_a: torch.Tensor  # [B, Na] 1 = hidden from the encoder
    mask_v: torch.Tensor  # [B, Nv]
    mae_loss_a: torch.Tensor | None = None
    mae_loss_v: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    contrastive_accuracy: torch.Tensor | None = None  # share of videos whose own audio scores highest
    pred_a: torch.Tensor | None = None  # [B, Na, p*p] every audio patch, in patchify_audio's layout
    pred_v: torch.Tensor | None = None  # [B, Nv, s*p*p*C] every video patch, in patchify_video's layout


def _reference_grid_widths(config: SocialMAEConfig) -> tuple[int, int]:
    """Grid widths the reference's sin-cos helper sees, as SocialMAE.initialize_weights uses them.

    Audio: the time axis (64 columns). Video: sqrt(N) (28 for 784 tubelets), else the column count.
    """
    side = int(round(config.num_video_patches**0.5))
    video_width = side if side * side == config.num_video_patches else config.video_grid[1]
    return config.audio_grid[1], video_width


class SocialMAEPretrain(nn.Module):
    """Masked autoencoder + audio-visual contrastive pretraining; `model(audio, video)` -> PretrainOutput."""

    def __init__(self, config: PretrainConfig | None = None) -> None:
        super().__init__()
        config = config or PretrainConfig()
        self.config = config
        encoder_config = config.encoder
        # The encoder is SocialMAE's own modules (built and seeded by SocialMAE), adopted at the top
        # level so they keep the names a pretraining checkpoint stores; its task heads are dropped.
        encoder = SocialMAE(encoder_config)
        for name, parameter in encoder.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        for name, module in encoder.named_children():
            if name not in _HEAD_MODULES:
                self.add_module(name, module)

        dim = config.decoder_dim
        self.decoder_embed = nn.Linear(encoder_config.embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_modality_a = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_modality_v = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed_a = nn.Parameter(torch.zeros(1, encoder_config.num_audio_patches, dim))
        self.decoder_pos_embed_v = nn.Parameter(torch.zeros(1, encoder_config.num_video_patches, dim))
        block_config = config.decoder_block_config
        self.decoder_blocks = nn.ModuleList(Block(block_config) for _ in range(config.decoder_depth))
        self.decoder_norm = nn.LayerNorm(dim, eps=encoder_config.norm_eps)
        p = encoder_config.patch_size
        self.decoder_pred_a = nn.Linear(dim, p * p)  # one mel channel
        self.decoder_pred_v = nn.Linear(dim, p * p * encoder_config.temporal_stride * encoder_config.in_chans)
        self.initialize_decoder_weights()

    def initialize_decoder_weights(self) -> None:
        """Seed the decoder as the reference does (the encoder was seeded by SocialMAE)."""
        cfg = self.config.encoder
        audio_width, video_width = _reference_grid_widths(cfg)
        dim = self.config.decoder_dim
        pos_a = reference_sincos_pos_embed(dim, cfg.num_audio_patches, grid_width=audio_width)
        pos_v = reference_sincos_pos_embed(dim, cfg.num_video_patches, grid_width=video_width)
        self.decoder_pos_embed_a.data.copy_(torch.from_numpy(pos_a).unsqueeze(0))
        self.decoder_pos_embed_v.data.copy_(torch.from_numpy(pos_v).unsqueeze(0))
        for token in (self.mask_token, self.decoder_modality_a, self.decoder_modality_v):
            nn.init.normal_(token, std=0.02)
        decoder = (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred_a, self.decoder_pred_v)
        for module in decoder:
            module.apply(SocialMAE._init_module)

    # Input checks ----------------------------------------------------------------------------
    def _check_inputs(self, audio: torch.Tensor, video: torch.Tensor) -> None:
        cfg = self.config.encoder
        expected = {
            "audio": ((cfg.audio_length, cfg.num_mel_bins), "fbank frames x mel bins"),
            "video": (
                (cfg.in_chans, cfg.image_size, cfg.image_size, cfg.num_frames),
                "channels x height x width x frames, time last",
            ),
        }
        for name, x in (("audio", audio), ("video", video)):
            shape, meaning = expected[name]
            shape_text = f"[B, {', '.join(map(str, shape))}] ({meaning})"
            if not isinstance(x, torch.Tensor) or not x.is_floating_point():
                raise TypeError(f"{name} must be a floating-point torch.Tensor of shape {shape_text}")
            if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
                raise ValueError(f"{name} must have shape {shape_text}, got {list(x.shape)}")
        if audio.shape[0] != video.shape[0]:
            raise ValueError(
                f"audio and video must have the same batch size, got {audio.shape[0]} and {video.shape[0]}"
            )

    # Encoder ----------------------------------------------------------------------------------
    def forward_encoder(
        self, audio: torch.Tensor, video: torch.Tensor, generator: torch.Generator | None = None
    ) -> EncodedTokens:
        cfg = self.config
        a = self.patch_embed_a(audio) + self.pos_embed_a + self.modality_a  # [B, Na, D]
        v = self.patch_embed_v(video) + self.pos_embed_v + self.modality_v  # [B, Nv, D]
        masked_a = random_masking(a, cfg.mask_ratio_a, generator)
        masked_v = random_masking(v, cfg.mask_ratio_v, generator)
        a, v = masked_a.visible, masked_v.visible  # [B, Ka, D], [B, Kv, D]
        for block in self.blocks_a:
            a = block(a)
        for block in self.blocks_v:
            v = block(v)

        joint = torch.cat([a, v], dim=1)  # [B, Ka + Kv, D]
        for block in self.blocks_u:
            joint = block(joint)
        joint = self.norm(joint)

        # Single-modality passes through the shared block(s) for the contrastive views. (The
        # reference feeds every shared block the pre-shared tokens instead of chaining them; with
        # its one shared block that is the same thing.)
        audio_only, video_only = a, v
        for block in self.blocks_u:
            audio_only = block(audio_only, Modality.AUDIO)
            video_only = block(video_only, Modality.VIDEO)
        audio_pooled = self.norm_a(audio_only).mean(dim=1)  # [B, D]
        video_pooled = self.norm_v(video_only).mean(dim=1)  # [B, D]
        return EncodedTokens(joint, audio_pooled, video_pooled, masked_a, masked_v)

    # Decoder ----------------------------------------------------------------------------------
    def forward_decoder(self, encoded: EncodedTokens) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict every patch of both streams: ([B, Na, p*p], [B, Nv, s*p*p*C])."""
        x = self.decoder_embed(encoded.joint)  # [B, Ka + Kv, Dd]
        num_visible_a = encoded.audio.num_visible
        a = restore_with_mask_tokens(x[:, :num_visible_a], self.mask_token, encoded.audio.ids_restore)  # [B, Na, Dd]
        v = restore_with_mask_tokens(x[:, num_visible_a:], self.mask_token, encoded.video.ids_restore)  # [B, Nv, Dd]
        a = a + self.decoder_pos_embed_a + self.decoder_modality_a
        v = v + self.decoder_pos_embed_v + self.decoder_modality_v
        x = torch.cat([a, v], dim=1)  # [B, Na + Nv, Dd]
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x)
        num_audio = encoded.audio.num_tokens
        return self.decoder_pred_a(x[:, :num_audio]), self.decoder_pred_v(x[:, num_audio:])

    # Forward ----------------------------------------------------------------------------------
    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, generator: torch.Generator | None = None
    ) -> PretrainOutput:
        """Audio [B, T, F] and video [B, C, H, W, T] -> losses, masks, predictions.

        `generator` draws the masks (a fixed seed gives fixed masks, e.g. for validation).
        """
        self._check_inputs(audio, video)
        cfg = self.config
        encoded = self.forward_encoder(audio, video, generator)
        out = PretrainOutput(loss=audio.new_zeros(()), mask_a=encoded.audio.mask, mask_v=encoded.video.mask)
        if cfg.mae_weight > 0:
            out.pred_a, out.pred_v = self.forward_decoder(encoded)
            target_a = patchify_audio(audio, cfg.encoder)  # [B, Na, p*p]
            target_v = patchify_video(video, cfg.encoder)  # [B, Nv, s*p*p*C]
            out.mae_loss_a = masked_patch_mse(out.pred_a, target_a, encoded.audio.mask, cfg.norm_pix_loss)
            out.mae_loss_v = masked_patch_mse(out.pred_v, target_v, encoded.video.mask, cfg.norm_pix_loss)
            out.loss = out.loss + cfg.mae_weight * (out.mae_loss_a + out.mae_loss_v)
        if cfg.contrastive_weight > 0:
            out.contrastive_loss, out.contrastive_accuracy = info_nce(
                encoded.audio_pooled,
                encoded.video_pooled,
                cfg.contrastive_temperature,
                cfg.bidirectional_contrastive,
            )
            out.loss = out.loss + cfg.contrastive_weight * out.contrastive_loss
        return out

    # Encoder hand-over ------------------------------------------------------------------------
    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's tensors under SocialMAE's names (everything but the decoder)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(_DECODER_KEY_PREFIXES)}

    def to_finetune_model(self, config: SocialMAEConfig | None = None) -> SocialMAE:
        """A SocialMAE with a copy of this encoder and fresh heads, in training mode.

        `config` may change only the heads (num_classes, primary_head, extra_heads); default: the
        encoder config's heads.
        """
        encoder_config = self.config.encoder
        config = config or encoder_config
        differing = [
            f"{f.name}: {getattr(config, f.name)!r} (pretrained {getattr(encoder_config, f.name)!r})"
            for f in fields(SocialMAEConfig)
            if f.name not in _HEAD_FIELDS and getattr(config, f.name) != getattr(encoder_config, f.name)
        ]
        if differing:
            raise ValueError(
                "the fine-tuning config must describe the pretrained encoder; only the heads may differ, "
                "but these fields do: " + "; ".join(differing)
            )
        model = SocialMAE(config)
        state = {k: v.detach().clone() for k, v in self.encoder_state_dict().items()}
        head_prefixes = tuple(f"{head}." for head in _HEAD_MODULES)
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(head_prefixes)})
        return load_state_strictly(model, state, "the pretraining model's encoder").train()


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def _describe_decoder(state: Mapping[str, torch.Tensor]) -> str:
    parts = []
    if "mask_token" in state:
        parts.append(f"decoder_dim={state['mask_token'].shape[-1]}")
    depth = {int(k.split(".")[1]) for k in state if k.startswith("decoder_blocks.")}
    if depth:
        parts.append(f"decoder_depth={max(depth) + 1}")
    return ", ".join(parts) or "no decoder keys"


def load_pretrain_checkpoint(
    source: str | Path | Mapping[str, torch.Tensor], config: PretrainConfig | None = None
) -> SocialMAEPretrain:
    """Load a released (or our own) pretraining state dict into `SocialMAEPretrain(config)`, strictly.

    `source` is a `.pth` path or a state dict; a `module.` prefix (nn.DataParallel) is stripped.
    Every name and shape must match, otherwise one CheckpointError lists the missing keys, the
    unexpected keys and the shape mismatches, and nothing is loaded. The model is left in training mode.
    """
    if isinstance(source, Mapping):
        where = "pretraining state dict"
        state = _unwrap_state_dict(source, where)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"pretraining checkpoint not found: {path}")
        where = f"pretraining checkpoint {path}"
        state = _unwrap_state_dict(_read_torch_file(path), path)
    state = {official_key_to_model_key(k): v for k, v in state.items()}
    config = config or PretrainConfig()
    model = SocialMAEPretrain(config)
    report = compare_keys(model, state)
    if not report.ok:
        enc = config.encoder
        raise CheckpointError(
            f"{where} does not match PretrainConfig(embed_dim={enc.embed_dim}, "
            f"modality_specific_depth={enc.modality_specific_depth}, decoder_dim={config.decoder_dim}, "
            f"decoder_depth={config.decoder_depth}); the checkpoint looks like {describe_state_dict(state)}, "
            f"{_describe_decoder(state)}.\n{report.describe()}"
        )
    model.load_state_dict(state, strict=True)
    return model

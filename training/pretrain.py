"""Pretraining run: MAE reconstruction + audio-visual contrastive loss on unlabelled clips.

The recipe of the paper (PAPER.md): Adam lr 1e-3, betas (0.95, 0.999), weight decay 5e-7,
MultiStepLR x0.5 every 5 epochs from epoch 10. The result is saved in the released pretraining
layout (`pretrain.pth`, a plain state dict), so `socialmae-rt finetune --init pretrain.pth` and
`load_official_checkpoint(..., encoder_only=True)` read it like the authors' checkpoint, plus
`pretrain.json` with the PretrainConfig.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.training.pretrain_model import PretrainConfig, SocialMAEPretrain
from socialmae_rt.training.trainer import TrainConfig, Trainer


@dataclass
class PretrainRunConfig:
    model: str = "base"  # encoder size
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    mask_ratio: float = 0.75  # per modality
    contrastive_weight: float = 0.01
    contrastive_temperature: float = 0.05
    norm_pix_loss: bool = False
    lr: float = 1e-3
    weight_decay: float = 5e-7
    betas: tuple[float, float] = (0.95, 0.999)
    lr_decay_start_epoch: int = 10
    lr_decay_every: int = 5
    lr_decay: float = 0.5
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/pretrain", batch_size=36))

    def __post_init__(self) -> None:
        if self.model not in MODEL_VARIANTS:
            raise ValueError(f"model must be one of {sorted(MODEL_VARIANTS)}, got {self.model!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.betas = tuple(self.betas)

    def model_config(self) -> PretrainConfig:
        return PretrainConfig(encoder=SocialMAEConfig.variant(self.model), decoder_dim=self.decoder_dim,
                              decoder_depth=self.decoder_depth, decoder_heads=self.decoder_heads,
                              mask_ratio_a=self.mask_ratio, mask_ratio_v=self.mask_ratio,
                              contrastive_weight=self.contrastive_weight,
                              contrastive_temperature=self.contrastive_temperature, norm_pix_loss=self.norm_pix_loss)


class _Losses(nn.Module):
    """forward() = the pretraining output, so DistributedDataParallel wraps the whole model."""

    def __init__(self, model: SocialMAEPretrain) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio, video):
        return self.model(audio, video)


def _step(model: nn.Module, batch: dict):
    device = next(model.parameters()).device
    if batch.get("audio") is None or batch.get("video") is None:
        raise ValueError("pretraining needs clips with both audio and video")
    out = model(batch["audio"].to(device), batch["video"].to(device))
    values = {name: float(getattr(out, name).detach()) for name in
              ("mae_loss_a", "mae_loss_v", "contrastive_loss", "contrastive_accuracy") if getattr(out, name) is not None}
    return out.loss, values


def _evaluate(model: nn.Module, loader) -> dict[str, float]:
    """Validation loss with fixed masks (seeded), so epochs compare like for like."""
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    totals: dict[str, float] = {}
    batches = 0
    for batch in loader:
        out = model.model(batch["audio"].to(device), batch["video"].to(device), generator=generator)
        for name in ("loss", "mae_loss_a", "mae_loss_v", "contrastive_loss"):
            value = getattr(out, name)
            if value is not None:
                totals[name] = totals.get(name, 0.0) + float(value)
        batches += 1
    result = {name: value / max(batches, 1) for name, value in totals.items()}
    result["neg_loss"] = -result.get("loss", 0.0)
    return result


def pretrain(config: PretrainRunConfig, train_data, val_data=None, collate=None) -> dict:
    model = SocialMAEPretrain(config.model_config())
    out_dir = Path(config.train.out_dir)

    def make_optimizer(wrapped: nn.Module):
        return torch.optim.Adam(wrapped.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)

    def make_scheduler(optimizer):
        milestones = list(range(config.lr_decay_start_epoch, 1000, config.lr_decay_every))
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_decay)

    trainer = Trainer(_Losses(model), make_optimizer, train_data, config.train, _step, collate=collate,
                      val_data=val_data, evaluate=_evaluate if val_data is not None else None,
                      key_metric="neg_loss" if val_data is not None else None, make_scheduler=make_scheduler)
    summary = trainer.fit()
    if trainer.dist.is_main:
        torch.save(model.state_dict(), out_dir / "pretrain.pth")
        (out_dir / "pretrain.json").write_text(json.dumps(config.model_config().to_dict(), indent=2))
        summary = {k: v for k, v in summary.items() if k != "last"} | {"checkpoint": str(out_dir / "pretrain.pth")}
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary

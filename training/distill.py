"""Distillation: a base teacher trains a small/tiny student for a robot's CPU.

Per head, the student matches the teacher's outputs (classification: KL divergence between
temperature-softened distributions, scaled by T^2; binary/regression heads: mean squared error
on the raw outputs), and its pooled embedding matches the teacher's through a learned linear
projection (dropped after training). Labelled clips can add the task loss. The student is
saved like any fine-tuned model (`student.safetensors` + JSON) and exports/serves as usual.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.model.checkpoint import load_any_checkpoint, save_checkpoint
from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE

from .finetune import MODALITIES, encode_rows, has_single_stream_clips, model_inputs, task_loss
from .trainer import TrainConfig, Trainer


@dataclass
class DistillConfig:
    teacher: str = ""  # released fine-tuned .pth or our .safetensors
    teacher_model: str = "base"  # size of a released .pth teacher
    student: str = "tiny"  # small | tiny (or base)
    temperature: float = 2.0
    logit_weight: float = 1.0
    embedding_weight: float = 1.0
    label_weight: float = 0.0  # > 0: also the task loss on labelled clips
    lr: float = 1e-4
    weight_decay: float = 5e-7
    modality: str = "audiovisual"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/distill"))

    def __post_init__(self) -> None:
        if self.student not in MODEL_VARIANTS:
            raise ValueError(f"student must be one of {sorted(MODEL_VARIANTS)}, got {self.student!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if min(self.logit_weight, self.embedding_weight, self.label_weight) < 0:
            raise ValueError("distillation weights must be >= 0")


def student_config(teacher: SocialMAEConfig, size: str, **overrides) -> SocialMAEConfig:
    """The teacher's heads and inputs on a smaller encoder."""
    return dataclasses.replace(SocialMAEConfig.variant(size), num_classes=teacher.num_classes,
                               primary_head=teacher.primary_head, extra_heads=dict(teacher.extra_heads), **overrides)


class DistillationPair(nn.Module):
    """Frozen teacher, trained student and the embedding projection; forward = the distillation loss."""

    def __init__(self, teacher: SocialMAE, student: SocialMAE, config: DistillConfig, head_kinds: dict[str, str]) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.student = student
        self.project = nn.Linear(student.config.embed_dim, teacher.config.embed_dim)
        self.config = config
        self.head_kinds = head_kinds  # head -> classification | binary | multilabel | regression

    def train(self, mode: bool = True) -> "DistillationPair":
        super().train(mode)
        self.teacher.eval()  # the teacher never leaves eval mode
        return self

    def forward(self, audio, video, use_audio, use_video) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            t_embedding = encode_rows(self.teacher, audio, video, use_audio, use_video)
            t_logits = self.teacher.apply_heads(t_embedding)
        s_embedding = encode_rows(self.student, audio, video, use_audio, use_video)
        s_logits = self.student.apply_heads(s_embedding)
        temperature = self.config.temperature
        logit_losses = []
        for name, kind in self.head_kinds.items():
            s, t = s_logits[name].float(), t_logits[name].float()
            if kind == "classification":
                logit_losses.append(F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                                             log_target=True, reduction="batchmean") * temperature**2)
            else:
                logit_losses.append(F.mse_loss(s, t))
        embedding_loss = F.mse_loss(self.project(s_embedding.float()), t_embedding.float())
        return {"logits": torch.stack(logit_losses).mean(), "embedding": embedding_loss, "student_logits": s_logits}


def distill(config: DistillConfig, train_data, tasks: Sequence | None = None, val_data=None, collate=None) -> dict:
    """Train the student; returns a summary and writes `student.safetensors` in the run folder."""
    if not config.teacher:
        raise ValueError("distillation needs a teacher checkpoint (--teacher)")
    teacher_config = SocialMAEConfig.variant(config.teacher_model) if config.teacher.endswith((".pth", ".pt")) else None
    loaded = load_any_checkpoint(config.teacher, teacher_config)
    teacher = loaded.model
    student = SocialMAE(student_config(teacher.config, config.student))
    kinds = {t.name: t.kind for t in tasks} if tasks else {}
    head_kinds = {name: kinds.get(name, "classification" if name == teacher.config.primary_head else "regression")
                  for name in teacher.config.head_sizes}
    pair = DistillationPair(teacher, student, config, head_kinds)
    if config.label_weight > 0 and not tasks:
        raise ValueError("label_weight > 0 needs labelled tasks")

    def step(model: nn.Module, batch: dict):
        device = next(model.parameters()).device
        losses = model(**model_inputs(batch, config.modality, device))
        total = config.logit_weight * losses["logits"] + config.embedding_weight * losses["embedding"]
        values = {"logit_loss": float(losses["logits"].detach()), "embedding_loss": float(losses["embedding"].detach())}
        if config.label_weight > 0:
            label = sum(task_loss(t, losses["student_logits"][t.name], batch["targets"][t.name].to(device)) for t in tasks)
            total = total + config.label_weight * label
            values["label_loss"] = float(label.detach())
        return total, values

    def make_optimizer(model: nn.Module):
        trained = [p for name, p in model.named_parameters() if not name.startswith("teacher.")]
        return torch.optim.Adam(trained, lr=config.lr, weight_decay=config.weight_decay, betas=(0.95, 0.999))

    trainer = Trainer(pair, make_optimizer, train_data, config.train, step, collate=collate,
                      find_unused_parameters=has_single_stream_clips(train_data))
    summary = trainer.fit()
    out = Path(config.train.out_dir) / "student.safetensors"
    if trainer.dist.is_main:
        save_checkpoint(pair.student, out, loaded.preprocess,
                        metadata={"distilled_from": config.teacher, "student": config.student})
        summary = {k: v for k, v in summary.items() if k != "last"} | {"student": str(out)}
        (Path(config.train.out_dir) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary

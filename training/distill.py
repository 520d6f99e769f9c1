"""Distillation: teachers train one student, for a robot's CPU or to merge a task bundle.

- One teacher (`teacher`): a base model taught to a small/tiny student, every head it has.
- Several teachers (`teachers`: `emotion=A laughter=B personality=C` or a bundle folder from
  `weights import`): the released checkpoints were fine-tuned separately, one encoder per task;
  the student gets one head per task and learns each from its own teacher, so the merged model
  gives every task in one encoder pass. It may start from the pretrained encoder (`init`; a
  bundle folder's imported encoder by default when its size matches the student).

Per head, the student matches the teacher's outputs (classification: KL divergence between
temperature-softened distributions, scaled by T^2; binary/regression heads: mean squared error
on the raw outputs), and its pooled embedding matches each teacher's through a learned linear
projection per teacher (dropped after training). Labelled clips can add the task loss. Held-out
clips measure how well the student agrees with its teachers, before and after training
(`agreement.json`). The student is saved like any fine-tuned model (`student.safetensors` + JSON).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.checkpoint import load_any_checkpoint, load_encoder, read_checkpoint_config, save_checkpoint
from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.stream.postprocess import laughing_class, laughter_probability, softmax
from socialmae_rt.training.finetune import MODALITIES, encode_rows, has_single_stream_clips, model_inputs, task_loss
from socialmae_rt.training.trainer import TrainConfig, Trainer
from socialmae_rt.weights.bundle import parse_weights

log = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    teacher: str = ""  # one teacher: released fine-tuned .pth or our .safetensors (all its heads)
    teachers: str = ""  # one teacher per task: "emotion=A laughter=B personality=C" or a bundle folder
    teacher_model: str = "base"  # size of a released .pth teacher
    student: str = "tiny"  # small | tiny (or base)
    student_depth: int | None = None  # blocks per stream of the student (None: the size's 11)
    init: str | None = None  # encoder the student starts from (None: a bundle's encoder of the same size, else random)
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
        if self.teacher and self.teachers:
            raise ValueError("give one teacher (--teacher) or one per task (--teachers), not both")
        if self.student_depth is not None and self.student_depth < 1:
            raise ValueError(f"student_depth must be >= 1, got {self.student_depth}")
        parse_weights(self.teachers or None)  # a malformed bundle is refused before anything loads


@dataclass
class Teacher:
    """A frozen model and the heads the student learns from it."""

    model: SocialMAE
    heads: list[str]
    source: str
    preprocess: PreprocessConfig


def student_config(teachers: Sequence[Teacher], size: str, **overrides) -> SocialMAEConfig:
    """An encoder of `size` with one head per taught head, sized and labelled like its teacher's;
    the first is the primary (one teacher: its own heads in its own order)."""
    sizes, labels = {}, {}
    for teacher in teachers:
        for head in teacher.heads:
            sizes[head] = teacher.model.config.head_sizes[head]
            if head in teacher.model.config.head_labels:
                labels[head] = teacher.model.config.head_labels[head]
    first, *others = sizes
    return dataclasses.replace(SocialMAEConfig.variant(size), primary_head=first, num_classes=sizes[first],
                               extra_heads={h: sizes[h] for h in others}, head_labels=labels, **overrides)


def load_teachers(config: DistillConfig) -> list[Teacher]:
    if config.teachers:
        spec = parse_weights(config.teachers)
        if not spec.is_bundle:
            raise ValueError(f"--teachers {config.teachers}: expected task=checkpoint entries or a bundle folder")
        teachers = []
        for entry in spec.entries:
            loaded = load_any_checkpoint(entry.path)
            if entry.task not in loaded.model.config.head_sizes:
                raise ValueError(f"--teachers {entry.task}={entry.path}: the checkpoint has no {entry.task!r} head "
                                 f"(its heads: {list(loaded.model.config.head_sizes)})")
            teachers.append(Teacher(loaded.model, [entry.task], entry.path, loaded.preprocess))
        _preprocess_of(teachers)
        return teachers
    if not config.teacher:
        raise ValueError("distillation needs a teacher checkpoint (--teacher, or --teachers for one per task)")
    released = config.teacher.endswith((".pth", ".pt"))
    loaded = load_any_checkpoint(config.teacher, SocialMAEConfig.variant(config.teacher_model) if released else None)
    return [Teacher(loaded.model, list(loaded.model.config.head_sizes), config.teacher, loaded.preprocess)]


ENCODER_GEOMETRY = ("embed_dim", "num_heads", "modality_specific_depth", "joint_depth")


def _student_init(config: DistillConfig, student: SocialMAEConfig) -> str | None:
    """`init` as given, else the bundle's pretrained encoder when it has the student's geometry."""
    if config.init:
        return config.init
    encoder = parse_weights(config.teachers).encoder if config.teachers else None
    if encoder is None:
        return None
    saved = read_checkpoint_config(encoder)[0]
    if all(getattr(saved, name) == getattr(student, name) for name in ENCODER_GEOMETRY):
        return encoder
    log.info("the bundle's encoder %s is not the student's size; the student starts from random weights", encoder)
    return None


def build_student(config: DistillConfig, teachers: Sequence[Teacher]) -> tuple[SocialMAE, str | None]:
    overrides = {} if config.student_depth is None else {"modality_specific_depth": config.student_depth}
    student = student_config(teachers, config.student, **overrides)
    init = _student_init(config, student)
    if init is None:
        return SocialMAE(student), None
    return load_encoder(init, student)[0].train(), init


def head_kind(name: str, config: SocialMAEConfig, tasks_kinds: dict[str, str]) -> str:
    """classification | binary | regression, from labelled tasks, else from the head's name and width."""
    if name in tasks_kinds:
        return tasks_kinds[name]
    if name == "personality":
        return "regression"
    if name == "laughter":
        return "binary" if config.head_sizes[name] == 1 else "classification"
    return "classification" if name == config.primary_head else "regression"


class DistillationPair(nn.Module):
    """Frozen teachers, the trained student and one embedding projection per teacher; forward = losses."""

    def __init__(self, teachers: Sequence[Teacher], student: SocialMAE, config: DistillConfig,
                 head_kinds: dict[str, str]) -> None:
        super().__init__()
        self.teachers = nn.ModuleList(t.model.eval().requires_grad_(False) for t in teachers)
        self.taught = [list(t.heads) for t in teachers]
        self.student = student
        self.projections = nn.ModuleList(nn.Linear(student.config.embed_dim, t.model.config.embed_dim)
                                         for t in teachers)
        self.config = config
        self.head_kinds = head_kinds  # head -> classification | binary | multilabel | regression

    def train(self, mode: bool = True) -> "DistillationPair":
        super().train(mode)
        self.teachers.eval()  # teachers never leave eval mode
        return self

    def teacher_outputs(self, audio, video, use_audio, use_video) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        logits, embeddings = {}, []
        with torch.no_grad():
            for teacher, heads in zip(self.teachers, self.taught):
                embedding = encode_rows(teacher, audio, video, use_audio, use_video)
                embeddings.append(embedding)
                outputs = teacher.apply_heads(embedding)
                logits.update({head: outputs[head] for head in heads})
        return logits, embeddings

    def forward(self, audio, video, use_audio, use_video) -> dict[str, torch.Tensor]:
        t_logits, t_embeddings = self.teacher_outputs(audio, video, use_audio, use_video)
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
        embedding_loss = torch.stack([F.mse_loss(project(s_embedding.float()), t.float())
                                      for project, t in zip(self.projections, t_embeddings)]).mean()
        return {"logits": torch.stack(logit_losses).mean(), "embedding": embedding_loss, "student_logits": s_logits}


def agreement(pair: DistillationPair, loader, modality: str) -> dict[str, dict[str, float]]:
    """How closely the student follows its teachers on `loader`'s clips, per head:
    classification: top-1 agreement and KL(teacher || student); laughter: F1 of the student's
    laughing decisions (p >= 0.5) against the teacher's; regression: 1 - MAE of the outputs
    clipped to [0, 1] (as the pipeline reports them)."""
    device = next(pair.student.parameters()).device
    teacher_out: dict[str, list] = {h: [] for h in pair.head_kinds}
    student_out: dict[str, list] = {h: [] for h in pair.head_kinds}
    was_training = pair.training
    pair.eval()
    with torch.no_grad():
        for batch in loader:
            inputs = model_inputs(batch, modality, device)
            t_logits, _ = pair.teacher_outputs(**inputs)
            s_logits = pair.student.apply_heads(encode_rows(pair.student, **inputs))
            for head in pair.head_kinds:
                teacher_out[head].append(t_logits[head].float().cpu().numpy())
                student_out[head].append(s_logits[head].float().cpu().numpy())
    pair.train(was_training)
    config = pair.student.config
    report = {}
    for head, kind in pair.head_kinds.items():
        t, s = np.concatenate(teacher_out[head]), np.concatenate(student_out[head])
        if head == "laughter":
            index = laughing_class(t.shape[-1], config.labels_of(head))
            report[head] = {"f1": _f1(laughter_probability(t, index) >= 0.5, laughter_probability(s, index) >= 0.5),
                            "teacher_positive_rate": float(np.mean(laughter_probability(t, index) >= 0.5))}
        elif kind == "classification":
            p, q = softmax(t), softmax(s)
            kl = np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=-1)
            report[head] = {"top1_agreement": float(np.mean(p.argmax(-1) == q.argmax(-1))), "kl": float(kl.mean())}
        else:
            report[head] = {"one_minus_mae": float(1.0 - np.mean(np.abs(np.clip(t, 0, 1) - np.clip(s, 0, 1))))}
    return report


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    true_positive = float(np.sum(truth & predicted))
    denominator = float(np.sum(truth) + np.sum(predicted))
    return 1.0 if denominator == 0 else 2.0 * true_positive / denominator  # nothing to find, nothing found


def distill(config: DistillConfig, train_data, tasks: Sequence | None = None, val_data=None, collate=None) -> dict:
    """Train the student; returns a summary and writes `student.safetensors` in the run folder,
    and with `val_data` the student's agreement with its teachers before and after (`agreement.json`)."""
    teachers = load_teachers(config)
    student, init = build_student(config, teachers)
    kinds = {t.name: t.kind for t in tasks} if tasks else {}
    head_kinds = {name: head_kind(name, student.config, kinds) for name in student.config.head_sizes}
    pair = DistillationPair(teachers, student, config, head_kinds)
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
        trained = [p for name, p in model.named_parameters() if not name.startswith("teachers.")]
        return torch.optim.Adam(trained, lr=config.lr, weight_decay=config.weight_decay, betas=(0.95, 0.999))

    held_out = None
    if val_data is not None:
        held_out = torch.utils.data.DataLoader(val_data, batch_size=config.train.batch_size, collate_fn=collate)
        before = agreement(pair, held_out, config.modality)
    trainer = Trainer(pair, make_optimizer, train_data, config.train, step, collate=collate,
                      find_unused_parameters=has_single_stream_clips(train_data))
    summary = trainer.fit()
    out_dir = Path(config.train.out_dir)
    out = out_dir / "student.safetensors"
    if trainer.dist.is_main:
        sources = {head: t.source for t in teachers for head in t.heads}
        save_checkpoint(pair.student, out, _preprocess_of(teachers),
                        metadata={"distilled_from": config.teacher or sources, "student": config.student,
                                  "student_init": init})
        summary = {k: v for k, v in summary.items() if k != "last"} | {"student": str(out)}
        if held_out is not None:
            summary["agreement"] = {"untrained": before, "trained": agreement(pair, held_out, config.modality),
                                    "clips": len(val_data)}
            (out_dir / "agreement.json").write_text(json.dumps(summary["agreement"], indent=2))
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _preprocess_of(teachers: Sequence[Teacher]) -> PreprocessConfig:
    """The preprocessing every teacher saw (they must agree: the student sees each window once)."""
    first = teachers[0]
    for teacher in teachers[1:]:
        if teacher.preprocess.to_dict() != first.preprocess.to_dict():
            raise ValueError(f"teachers {first.source} and {teacher.source} were trained with different "
                             "preprocessing; a student sees each window once, preprocessed one way")
    return first.preprocess

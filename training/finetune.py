"""Fine-tuning: task heads on one Social-MAE encoder (classification, binary/multi-label, regression).

The first task's head is the model's primary head (the released `mlp_head`), the others are
extra heads, so the live pipeline reads a fine-tuned checkpoint like any other. Backbone and
heads have separate learning rates; the backbone can be frozen. The best epoch by the
validation score (mean of each task's key metric: macro F1, or mean 1 - MAE for personality)
is saved as `best.safetensors`; the test split is evaluated with it at the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.checkpoint import (
    HEAD_PREFIXES, load_checkpoint, load_encoder, read_checkpoint_config, save_checkpoint)
from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.training.metrics import KEY_METRIC, task_metrics
from socialmae_rt.training.trainer import TrainConfig, Trainer

log = logging.getLogger(__name__)

MODALITIES = ("audiovisual", "audio", "video")


@dataclass
class FinetuneConfig:
    model: str = "base"  # encoder size when `init` does not say (random start or a released .pth)
    init: str | None = None  # released .pth (pretrained or fine-tuned), our .safetensors, or None (random)
    backbone_lr: float = 5e-5
    head_lr: float = 5e-3  # fresh heads learn faster than the pretrained encoder
    freeze_backbone: bool = False
    weight_decay: float = 5e-7
    betas: tuple[float, float] = (0.95, 0.999)
    lr_decay_start_epoch: int = 2  # MultiStepLR: x lr_decay every lr_decay_every epochs from here
    lr_decay_every: int = 1
    lr_decay: float = 0.5
    modality: str = "audiovisual"  # audiovisual | audio | video: which streams the model sees
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/finetune"))

    def __post_init__(self) -> None:
        if self.model not in MODEL_VARIANTS:
            raise ValueError(f"model must be one of {sorted(MODEL_VARIANTS)}, got {self.model!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        for name in ("backbone_lr", "head_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        self.betas = tuple(self.betas)


def head_size(task) -> int:
    return task.num_outputs


def heads_config(base: SocialMAEConfig, tasks: Sequence) -> SocialMAEConfig:
    """`base` with one head per task: the first is the primary (released `mlp_head`) head."""
    first, *others = tasks
    labels = {t.name: list(t.labels) for t in tasks}
    return dataclasses.replace(base, primary_head=first.name, num_classes=head_size(first),
                               extra_heads={t.name: head_size(t) for t in others}, head_labels=labels)


def build_model(config: FinetuneConfig, tasks: Sequence) -> tuple[SocialMAE, PreprocessConfig]:
    """The encoder from `config.init` (or random) with fresh heads for `tasks`."""
    if not tasks:
        raise ValueError("fine-tuning needs at least one task")
    if config.init is None:
        return SocialMAE(heads_config(SocialMAEConfig.variant(config.model), tasks)), PreprocessConfig()
    path = Path(config.init)
    # A released .pth says nothing about its size (--model does); ours carry their config.
    base = read_checkpoint_config(path)[0] if path.suffix == ".safetensors" and path.is_file() else \
        SocialMAEConfig.variant(config.model)
    return load_encoder(path, heads_config(base, tasks))


def task_loss(task, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task.kind == "classification":
        return F.cross_entropy(logits.float(), target.long())
    if task.kind in ("binary", "multilabel"):
        return F.binary_cross_entropy_with_logits(logits.float(), target.float().view_as(logits))
    return F.l1_loss(logits.float(), target.float().view_as(logits))  # regression: the metric is 1 - MAE


def model_inputs(batch: dict, modality: str, device: torch.device) -> dict[str, torch.Tensor | None]:
    """The streams `modality` uses, and per row which of them the clip really has.

    A batch may mix clips prepared audio-only or video-only (prepare-data --keep-*-only); their
    missing stream is a zero row in the batch, and `use_audio` / `use_video` [B] keep those rows
    out of the model (encode_rows). A clip with none of the streams the modality asks for is an error.
    """
    audio = batch.get("audio") if modality in ("audiovisual", "audio") else None
    video = batch.get("video") if modality in ("audiovisual", "video") else None
    if audio is None and video is None:
        raise ValueError(f"the batch has no {modality} input (clips: {batch.get('clip_id', [])[:3]})")
    rows = (audio if audio is not None else video).shape[0]
    use_audio = _present(batch, "audio", audio, rows)
    use_video = _present(batch, "video", video, rows)
    unusable = ~(use_audio | use_video)
    if unusable.any():
        names = batch.get("clip_id") or [f"row {i}" for i in range(rows)]
        clips = [names[i] for i in unusable.nonzero().flatten().tolist()]
        raise ValueError(f"{len(clips)} clip(s) in the batch have no {modality} input "
                         f"(e.g. {', '.join(clips[:3])}); prepare them with both streams or change the modality")
    return {"audio": None if audio is None else audio.to(device), "video": None if video is None else video.to(device),
            "use_audio": use_audio.to(device), "use_video": use_video.to(device)}


def _present(batch: dict, stream: str, tensor: torch.Tensor | None, rows: int) -> torch.Tensor:
    if tensor is None:
        return torch.zeros(rows, dtype=torch.bool)
    return batch.get(f"has_{stream}", torch.ones(rows, dtype=torch.bool))  # [B]


def encode_rows(model: SocialMAE, audio: torch.Tensor | None, video: torch.Tensor | None,
                use_audio: torch.Tensor, use_video: torch.Tensor) -> torch.Tensor:
    """Embeddings [B, D] with each row encoded from the streams it has: audiovisual, audio-only
    and video-only rows go through their own passes (as the live pipeline would run them), never
    with a zero stream standing in for a missing one."""
    all_audio, all_video = bool(use_audio.all()), bool(use_video.all())
    if (all_audio or not use_audio.any()) and (all_video or not use_video.any()):  # one kind of row: one pass
        return model.encode(audio if all_audio else None, video if all_video else None)
    groups = ((use_audio & use_video, True, True), (use_audio & ~use_video, True, False),
              (~use_audio & use_video, False, True))
    pieces, order = [], []
    for rows, with_audio, with_video in groups:
        index = rows.nonzero().flatten()  # [n]
        if index.numel():
            pieces.append(model.encode(audio[index] if with_audio else None, video[index] if with_video else None))
            order.append(index)
    return torch.cat(pieces)[torch.argsort(torch.cat(order))]  # [B, D], back in batch order


def has_single_stream_clips(data) -> bool:
    """Whether some training clips lack a stream, so that a batch may skip an encoder branch."""
    entries = getattr(data, "entries", None)
    if entries is None:
        return True  # not a WindowDataset: assume it may
    return any(not (entry.has_audio and entry.has_video) for entry in entries)


class _AllHeads(nn.Module):
    """forward() = every head's logits, so DistributedDataParallel sees the whole graph."""

    def __init__(self, model: SocialMAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio, video, use_audio, use_video) -> dict[str, torch.Tensor]:
        return self.model.apply_heads(encode_rows(self.model, audio, video, use_audio, use_video))


def collect_outputs(model: SocialMAE, loader, tasks: Sequence, modality: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """task -> (targets, outputs) over a whole loader."""
    device = next(model.parameters()).device
    truth: dict[str, list] = {t.name: [] for t in tasks}
    outputs: dict[str, list] = {t.name: [] for t in tasks}
    model.eval()
    with torch.no_grad():
        for batch in loader:
            logits = model.apply_heads(encode_rows(model, **model_inputs(batch, modality, device)))
            for t in tasks:
                truth[t.name].append(batch["targets"][t.name].cpu().numpy())
                outputs[t.name].append(logits[t.name].float().cpu().numpy())
    return {name: (np.concatenate(truth[name]), np.concatenate(outputs[name])) for name in truth}


def evaluate_tasks(model: SocialMAE, loader, tasks: Sequence, modality: str) -> dict[str, Any]:
    """Per-task metric dicts plus flat scalars `<task>/<metric>` and `score` (mean of key metrics)."""
    collected = collect_outputs(model, loader, tasks, modality)
    result: dict[str, Any] = {"tasks": {}}
    keys = []
    for t in tasks:
        metrics = task_metrics(t.kind, *collected[t.name], list(t.labels))
        result["tasks"][t.name] = metrics
        for name, value in metrics.items():
            if isinstance(value, float):
                result[f"{t.name}/{name}"] = value
        keys.append(metrics[KEY_METRIC[t.kind]])
    result["score"] = float(np.mean(keys))
    return result


def _param_groups(model: SocialMAE, config: FinetuneConfig) -> list[dict]:
    heads, backbone = [], []
    for name, parameter in model.named_parameters():
        (heads if name.startswith(HEAD_PREFIXES) else backbone).append(parameter)
    if config.freeze_backbone:
        for parameter in backbone:
            parameter.requires_grad_(False)
        return [{"params": heads, "lr": config.head_lr}]
    return [{"params": backbone, "lr": config.backbone_lr}, {"params": heads, "lr": config.head_lr}]


def finetune(config: FinetuneConfig, tasks: Sequence, train_data, val_data, test_data=None, collate=None) -> dict:
    """Train, keep the best epoch, evaluate it on `test_data`; returns a summary (also in summary.json)."""
    model, preprocess = build_model(config, tasks)
    out_dir = Path(config.train.out_dir)
    best_path = out_dir / "best.safetensors"
    metadata = {"tasks": [{"name": t.name, "kind": t.kind, "labels": list(t.labels)} for t in tasks],
                "modality": config.modality, "init": config.init}

    def save_best(best_model: nn.Module, result: dict) -> None:
        save_checkpoint(best_model.model, best_path, preprocess,
                        metadata={**metadata, "val_score": result["score"]})

    def make_optimizer(wrapped: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(_param_groups(wrapped.model, config), weight_decay=config.weight_decay,
                                betas=config.betas)

    def make_scheduler(optimizer):
        milestones = list(range(config.lr_decay_start_epoch, 1000, config.lr_decay_every))
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_decay)

    def step(wrapped: nn.Module, batch: dict):
        device = next(wrapped.parameters()).device
        logits = wrapped(**model_inputs(batch, config.modality, device))
        losses = {t.name: task_loss(t, logits[t.name], batch["targets"][t.name].to(device)) for t in tasks}
        extra = {f"loss_{name}": float(v.detach()) for name, v in losses.items()} if len(tasks) > 1 else {}
        return sum(losses.values()), extra

    trainer = Trainer(
        _AllHeads(model), make_optimizer, train_data, config.train, step, collate=collate,
        val_data=val_data, evaluate=lambda m, loader: evaluate_tasks(m.model, loader, tasks, config.modality),
        key_metric="score", make_scheduler=make_scheduler, on_best=save_best,
        find_unused_parameters=has_single_stream_clips(train_data),
    )
    summary = trainer.fit()
    summary = {k: v for k, v in summary.items() if k != "last"}
    summary["val_last"] = _scalars(summary.get("last") or {})
    if test_data is not None and trainer.dist.is_main and best_path.exists():
        best = load_checkpoint(best_path).model
        loader = trainer._loader(test_data)
        test = evaluate_tasks(best, loader, tasks, config.modality)
        (out_dir / "test_metrics.json").write_text(json.dumps(test, indent=2))
        summary["test"] = _scalars(test)
        plot_confusions(test, tasks, out_dir / "test_confusion.png")
    if trainer.dist.is_main:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _scalars(result: dict) -> dict[str, float]:
    return {k: v for k, v in result.items() if isinstance(v, float)}


def plot_confusions(result: dict, tasks: Sequence, path: Path) -> Path | None:
    """One confusion matrix per classification task, side by side (rows: truth, columns: predicted)."""
    panels = [(t, np.asarray(result["tasks"][t.name]["confusion"])) for t in tasks if t.kind == "classification"]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (task, matrix) in zip(axes[0], panels):
        rows = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(task.labels)), task.labels, rotation=45, ha="right")
        ax.set_yticks(range(len(task.labels)), task.labels)
        f1 = result["tasks"][task.name]["f1_macro"]
        ax.set(xlabel="predicted", ylabel="true", title=f"{task.name}: macro F1 {f1:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

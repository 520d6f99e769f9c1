"""Distillation: a tiny teacher's outputs taught to a student, saved like any model."""

import csv

import pytest
import torch

from socialmae_rt.model.checkpoint import load_checkpoint, save_checkpoint
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.training.distill import DistillConfig, distill
from socialmae_rt.training.trainer import TrainConfig


def test_student_learns_the_teachers_outputs_and_is_saved_like_any_model(tmp_path):
    torch.manual_seed(0)
    teacher = SocialMAE(SocialMAEConfig.variant("tiny", extra_heads={"laughter": 1, "personality": 5}))
    teacher_path = save_checkpoint(teacher, tmp_path / "teacher.safetensors")
    g = torch.Generator().manual_seed(1)
    clips = [{"audio": torch.randn(1024, 128, generator=g), "video": torch.randn(3, 224, 224, 8, generator=g)}
             for _ in range(2)]
    config = DistillConfig(teacher=str(teacher_path), student="tiny", lr=1e-3,
                           train=TrainConfig(out_dir=str(tmp_path / "run"), epochs=6, batch_size=2, progress=False))
    summary = distill(config, clips)
    rows = [r for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open()) if r["split"] == "train"]
    logit = [float(r["value"]) for r in rows if r["metric"] == "logit_loss"]
    embedding = [float(r["value"]) for r in rows if r["metric"] == "embedding_loss"]
    assert logit[-1] < 0.5 * logit[0] and embedding[-1] < 0.75 * embedding[0]
    student = load_checkpoint(summary["student"]).model
    assert student.config.head_sizes == teacher.config.head_sizes
    assert load_checkpoint(summary["student"]).metadata["distilled_from"] == str(teacher_path)


def test_distillation_settings_are_checked():
    with pytest.raises(ValueError, match="student must be one of"):
        DistillConfig(teacher="t.safetensors", student="huge")
    with pytest.raises(ValueError, match="needs a teacher checkpoint"):
        distill(DistillConfig(), [])

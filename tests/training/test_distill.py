"""Distillation: a tiny teacher's outputs taught to a student, saved like any model."""

import csv
import json

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


def _decisive_teacher(path, official_state, config, seed, scale):
    """A released-format teacher whose head is scaled up: its decisions differ clearly between clips."""
    state = official_state(config, seed=seed)
    state["module.mlp_head.1.weight"] = state["module.mlp_head.1.weight"] * scale
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def unlabelled_cache(make_synthetic, tmp_path_factory):
    """Generated clips (colour and pitch differ per group), prepared without labels, held-out speakers."""
    from socialmae_rt.training.data import PrepareConfig, prepare_data

    data = make_synthetic(num_classes=3, clips_per_class=4, num_speakers=4)
    cache = tmp_path_factory.mktemp("unlabelled")
    prepare_data(data.items, cache, PrepareConfig(crop="full", progress=False, print_report=False))
    return cache


def test_one_student_learns_every_teacher_of_a_bundle(unlabelled_cache, official_state, released_layout, tmp_path):
    """emotion=, laughter= and personality= teachers (imported released-format files) merged into one
    tiny student with three heads; on held-out clips it agrees with each teacher clearly better than
    the same student untrained, and it runs all three tasks in one pass."""
    from socialmae_rt.engines import create_backend
    from socialmae_rt.training.data import WindowDataset, collate
    from socialmae_rt.weights.importer import import_released

    bundle = tmp_path / "bundle"
    for seed, (task, scale) in enumerate((("emotion", 30.0), ("laughter", 30.0), ("personality", 10.0)), start=1):
        source = _decisive_teacher(tmp_path / f"{task}.pth", official_state, released_layout(task), seed, scale)
        import_released(source, task, bundle)
    train = WindowDataset(unlabelled_cache, "train", mode="random", seed=0)
    val = WindowDataset(unlabelled_cache, "val", mode="center")
    torch.manual_seed(0)
    config = DistillConfig(teachers=str(bundle), student="tiny", student_depth=2, lr=1e-3,
                           train=TrainConfig(out_dir=str(tmp_path / "run"), epochs=8, batch_size=3, progress=False))
    summary = distill(config, train, val_data=val, collate=collate)
    before, after = summary["agreement"]["untrained"], summary["agreement"]["trained"]
    assert after["emotion"]["kl"] < 0.5 * before["emotion"]["kl"]
    assert after["emotion"]["top1_agreement"] >= before["emotion"]["top1_agreement"]
    assert after["personality"]["one_minus_mae"] > before["personality"]["one_minus_mae"]
    assert 0 < after["laughter"]["teacher_positive_rate"] < 1  # the teacher decides both ways on these clips
    assert after["laughter"]["f1"] > before["laughter"]["f1"]
    assert json.loads((tmp_path / "run" / "agreement.json").read_text())["trained"] == after
    student = create_backend("torch", summary["student"])
    assert student.model_config.head_sizes == {"emotion": 6, "laughter": 3, "personality": 5}
    assert student.model_config.head_labels["laughter"] == ["neutral", "smile", "laughter"]
    assert set(load_checkpoint(summary["student"]).metadata["distilled_from"]) == {"emotion", "laughter", "personality"}

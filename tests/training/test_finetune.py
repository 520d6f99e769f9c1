"""Fine-tuning a tiny model on generated audio-visual clips (real media files, the same reading,
caching and windowing path as real data) reaches high validation accuracy."""

import json

import pytest
import torch

from socialmae_rt.model.checkpoint import load_checkpoint, save_checkpoint
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.training.data import PrepareConfig, WindowDataset, collate, prepare_data
from socialmae_rt.training.finetune import FinetuneConfig, build_model, finetune
from socialmae_rt.training.trainer import TrainConfig


@pytest.fixture(scope="module")
def prepared(make_synthetic, tmp_path_factory):
    data = make_synthetic(num_classes=3, clips_per_class=8, num_speakers=4)
    cache = tmp_path_factory.mktemp("cache")
    prepare_data(data.items, cache, PrepareConfig(crop="full", progress=False, print_report=False))
    return data, cache


def test_finetuning_a_tiny_model_reaches_90_percent(prepared, tmp_path):
    """4 epochs of 12 training clips; measured 32 s on the 2-core dev machine (README)."""
    data, cache = prepared
    task = data.task
    train = WindowDataset(cache, "train", [task], mode="random", seed=0)
    val = WindowDataset(cache, "val", [task], mode="center")
    test = WindowDataset(cache, "test", [task], mode="center")
    torch.manual_seed(0)
    config = FinetuneConfig(model="tiny", head_lr=1e-2, backbone_lr=1e-4, freeze_backbone=True,
                            train=TrainConfig(out_dir=str(tmp_path), epochs=4, batch_size=6, progress=False))
    summary = finetune(config, [task], train, val, test, collate=collate)
    best = summary["best"]["value"]
    val_accuracy = max(float(r["value"]) for r in _rows(tmp_path) if r["metric"] == "synthetic/accuracy")
    assert val_accuracy >= 0.9 and best >= 0.9, summary
    assert summary["test"]["synthetic/accuracy"] >= 0.9
    checkpoint = load_checkpoint(tmp_path / "best.safetensors")
    assert checkpoint.model.config.primary_head == "synthetic" and checkpoint.model.config.num_classes == 3
    assert json.loads((tmp_path / "test_metrics.json").read_text())["tasks"]["synthetic"]["confusion"]
    assert (tmp_path / "test_confusion.png").stat().st_size > 5000
    assert (tmp_path / "learning_curves.png").exists()


def _rows(out_dir):
    import csv

    return [r for r in csv.DictReader((out_dir / "metrics.csv").open()) if r["split"] == "val"]


def test_finetuning_starts_from_our_checkpoint_encoder_with_fresh_heads(prepared, tmp_path):
    data, _ = prepared
    source = SocialMAE(SocialMAEConfig.variant("tiny"))
    path = save_checkpoint(source, tmp_path / "ours.safetensors")
    model, _ = build_model(FinetuneConfig(init=str(path)), [data.task])
    assert model.config.primary_head == "synthetic" and model.config.num_classes == 3
    assert torch.equal(model.state_dict()["blocks_u.0.attn.qkv.weight"], source.state_dict()["blocks_u.0.attn.qkv.weight"])


def test_rows_missing_a_stream_go_through_single_stream_passes():
    """A batch mixing audiovisual, audio-only and video-only clips (zero rows where a stream is
    missing): each row's embedding is what the model gives for the streams that clip has."""
    from socialmae_rt.training.finetune import encode_rows, model_inputs

    torch.manual_seed(0)
    model = SocialMAE(SocialMAEConfig.variant("tiny")).eval()
    audio, video = torch.randn(3, 1024, 128), torch.randn(3, 3, 224, 224, 8)
    audio[2] = 0  # clip 2 has no audio, clip 1 no video: collate's zero rows
    video[1] = 0
    batch = {"audio": audio, "video": video, "clip_id": ["av", "a", "v"],
             "has_audio": torch.tensor([True, True, False]), "has_video": torch.tensor([True, False, True])}
    with torch.no_grad():
        mixed = encode_rows(model, **model_inputs(batch, "audiovisual", torch.device("cpu")))
        expected = torch.cat([model.encode(audio[:1], video[:1]), model.encode(audio=audio[1:2]),
                              model.encode(video=video[2:3])])
        zero_filled = model.encode(audio, video)
    torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mixed[1], zero_filled[1], atol=1e-3)  # a zero video would have changed it

    with pytest.raises(ValueError, match=r"1 clip\(s\) in the batch have no audio input \(e.g. v\)"):
        model_inputs(batch, "audio", torch.device("cpu"))

"""A pretraining run end to end: loss falls, the checkpoint is in the released layout and
fine-tuning starts from its encoder."""

import csv

import torch

from socialmae_rt.model.checkpoint import load_official_checkpoint
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.training.pretrain import PretrainRunConfig, pretrain
from socialmae_rt.training.pretrain_model import load_pretrain_checkpoint
from socialmae_rt.training.trainer import TrainConfig


def structured_clips(n, seed=0):
    """Smooth signals a masked autoencoder can fill in (not white noise)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, 1024)[:, None]
    f = torch.linspace(0, 1, 128)[None, :]
    clips = []
    for _ in range(n):
        k = torch.rand(2, generator=g) * 6 + 1
        audio = torch.sin(k[0] * 6.28 * t) * torch.cos(k[1] * 3.14 * f)
        colour = torch.rand(3, 1, 1, 1, generator=g)
        ramp = torch.linspace(-1, 1, 224)[None, :, None, None]
        video = colour * ramp + 0.1 * torch.arange(8.0)[None, None, None, :] / 8
        clips.append({"audio": audio.float(), "video": video.expand(3, 224, 224, 8).float().clone()})
    return clips


def test_pretraining_loss_falls_and_the_checkpoint_feeds_finetuning(tmp_path):
    config = PretrainRunConfig(model="tiny", decoder_dim=64, decoder_depth=1, decoder_heads=4,
                               train=TrainConfig(out_dir=str(tmp_path), epochs=12, batch_size=4, progress=False))
    summary = pretrain(config, structured_clips(4))
    rows = [r for r in csv.DictReader((tmp_path / "metrics.csv").open()) if r["split"] == "train" and r["metric"] == "loss"]
    losses = [float(r["value"]) for r in rows]
    assert len(losses) == 12 and losses[-1] < 0.6 * losses[0]
    state = torch.load(summary["checkpoint"], weights_only=True)
    assert any(k.startswith("decoder_blocks.") for k in state) and not any(k.startswith("mlp_head") for k in state)
    reloaded = load_pretrain_checkpoint(summary["checkpoint"], config.model_config())
    assert torch.equal(reloaded.state_dict()["blocks_a.0.attn.qkv.weight"], state["blocks_a.0.attn.qkv.weight"])
    finetune_model = load_official_checkpoint(summary["checkpoint"], SocialMAEConfig.variant("tiny"), encoder_only=True)
    assert torch.equal(finetune_model.state_dict()["pos_embed_v"], state["pos_embed_v"])

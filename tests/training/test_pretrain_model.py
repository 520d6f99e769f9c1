"""The Social-MAE pretraining model: released layout, masking, patch order, losses, learning.

`reference_pretrain_shapes` writes out, independently of our model code, every tensor the
reference pretraining class (HuBohy/SocialMAE `src/models/social_mae.py`, `SocialMAE`) holds,
so the layout tests compare against the reference, not against ourselves.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from socialmae_rt.model import CheckpointError, SocialMAEConfig, load_official_checkpoint
from socialmae_rt.model.social_mae import AudioPatchEmbed, VideoPatchEmbed
from socialmae_rt.training.masking import num_visible_tokens, random_masking, restore_with_mask_tokens
from socialmae_rt.training.pretrain_model import (
    PretrainConfig,
    SocialMAEPretrain,
    info_nce,
    load_pretrain_checkpoint,
    masked_patch_mse,
    patchify_audio,
    patchify_video,
    reference_video_token_order,
    unpatchify_audio,
    unpatchify_video,
)

# ---------------------------------------------------------------------------------------------
# Reference layout and small configs
# ---------------------------------------------------------------------------------------------


def reference_pretrain_shapes(
    layout, d: int, depth: int, joint_depth: int, dd: int, decoder_depth: int, num_audio: int, num_video: int,
    p: int = 16, s: int = 2, mlp_ratio: float = 4.0,
) -> dict[str, tuple[int, ...]]:
    """Every tensor of the reference pretraining model (no head), bare names. `layout` is
    (block_layout, stem_layout) from tests/conftest.py: the encoder parts it shares with the
    fine-tuned layout."""
    block_shapes, stem_shapes = layout
    shapes = stem_shapes(d, num_audio, num_video, p, s)
    shapes.update({
        "decoder_embed.weight": (dd, d),
        "decoder_embed.bias": (dd,),
        "mask_token": (1, 1, dd),
        "decoder_modality_a": (1, 1, dd),
        "decoder_modality_v": (1, 1, dd),
        "decoder_pos_embed_a": (1, num_audio, dd),
        "decoder_pos_embed_v": (1, num_video, dd),
        "decoder_norm.weight": (dd,), "decoder_norm.bias": (dd,),
        "decoder_pred_a.weight": (p * p, dd),
        "decoder_pred_a.bias": (p * p,),
        "decoder_pred_v.weight": (p * p * s * 3, dd),
        "decoder_pred_v.bias": (p * p * s * 3,),
    })
    groups = {
        "blocks_a": (depth, d),
        "blocks_v": (depth, d),
        "blocks_u": (joint_depth, d),
        "decoder_blocks": (decoder_depth, dd),
    }
    for group, (n, width) in groups.items():
        for i in range(n):
            for name, shape in block_shapes(width, mlp_ratio).items():
                shapes[f"{group}.{i}.{name}"] = shape
    return shapes


# Tiny encoder (ViT "tiny" width) on small inputs: 4 x 8 = 32 audio patches, 2 x 2 x 2 = 8 tubelets.
TINY_INPUTS = {"audio_length": 128, "num_mel_bins": 64, "image_size": 32, "num_frames": 4}
TINY_AUDIO_PATCHES, TINY_VIDEO_PATCHES = 32, 8


def tiny_config(**overrides) -> PretrainConfig:
    encoder = SocialMAEConfig.variant("tiny", modality_specific_depth=2, **TINY_INPUTS)
    return PretrainConfig(encoder=encoder, **{"decoder_dim": 64, "decoder_depth": 2, "decoder_heads": 4, **overrides})


def tiny_reference_shapes(layout) -> dict[str, tuple[int, ...]]:
    return reference_pretrain_shapes(layout, 192, 2, 1, 64, 2, TINY_AUDIO_PATCHES, TINY_VIDEO_PATCHES)


def released_format_state(shapes, prefix="module.", seed=0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {prefix + name: torch.randn(shape, generator=generator) * 0.05 for name, shape in shapes.items()}


def random_inputs(config: SocialMAEConfig, batch: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator)
    video = torch.randn(batch, 3, config.image_size, config.image_size, config.num_frames, generator=generator)
    return audio, video


# ---------------------------------------------------------------------------------------------
# Layout and checkpoints
# ---------------------------------------------------------------------------------------------


def test_default_config_is_the_released_pretraining_layout(block_layout, stem_layout):
    """Full size (ViT-B encoder, 512-wide 8-block decoder) on the meta device: no memory used."""
    with torch.device("meta"):
        model = SocialMAEPretrain(PretrainConfig())
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert ours == reference_pretrain_shapes((block_layout, stem_layout), 768, 11, 1, 512, 8, 512, 784)
    assert ours["decoder_pred_v.weight"] == (16 * 16 * 2 * 3, 512) and ours["decoder_pred_a.weight"] == (256, 512)
    assert not any(name.startswith("mlp_head") for name in ours)


def test_released_format_state_dict_loads_strictly(tmp_path, block_layout, stem_layout):
    state = released_format_state(tiny_reference_shapes((block_layout, stem_layout)))
    path = tmp_path / "pretrained.pth"
    torch.save(state, path)
    for source in (path, state):
        model = load_pretrain_checkpoint(source, tiny_config())
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(tensor, state["module." + name], atol=0, rtol=0)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: s.pop("module.decoder_blocks.1.norm2_v.bias"), ["missing keys (1)", "decoder_blocks.1.norm2_v.bias"]),
        (lambda s: s.update({"module.mlp_head.1.weight": torch.zeros(6, 192)}), ["unexpected keys (1)", "mlp_head.1.weight"]),
        (
            lambda s: s.update({"module.decoder_pred_v.weight": torch.zeros(768, 64)}),
            ["shape mismatches (1)", "decoder_pred_v.weight: checkpoint [768, 64] vs model [1536, 64]"],
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_mismatched_checkpoint_names_the_problem(tmp_path, change, expected, block_layout, stem_layout):
    state = released_format_state(tiny_reference_shapes((block_layout, stem_layout)))
    change(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_pretrain_checkpoint(path, tiny_config())
    for text in expected:
        assert text in str(err.value)


def test_wrong_decoder_size_is_described(block_layout, stem_layout):
    shapes = reference_pretrain_shapes((block_layout, stem_layout), 192, 2, 1, 128, 3, TINY_AUDIO_PATCHES,
                                       TINY_VIDEO_PATCHES)
    state = released_format_state(shapes)
    with pytest.raises(CheckpointError, match="decoder_dim=128, decoder_depth=3"):
        load_pretrain_checkpoint(state, tiny_config())


def test_encoder_of_a_pretraining_checkpoint_loads_into_social_mae(tmp_path, block_layout, stem_layout):
    state = released_format_state(tiny_reference_shapes((block_layout, stem_layout)), seed=3)
    path = tmp_path / "pretrained.pth"
    torch.save(state, path)
    encoder_config = tiny_config().encoder.with_heads(laughter=1)
    finetune = load_official_checkpoint(path, encoder_config, encoder_only=True)
    for name, tensor in finetune.state_dict().items():
        if not name.startswith(("mlp_head.", "extra_heads.")):
            torch.testing.assert_close(tensor, state["module." + name], atol=0, rtol=0)


def test_to_finetune_model_copies_the_encoder_and_keeps_fresh_heads():
    pretrain = SocialMAEPretrain(tiny_config())
    finetune = pretrain.to_finetune_model(pretrain.config.encoder.with_heads(personality=5))
    assert finetune.training
    for name, tensor in pretrain.encoder_state_dict().items():
        torch.testing.assert_close(finetune.state_dict()[name], tensor, atol=0, rtol=0)
        assert finetune.state_dict()[name].data_ptr() != tensor.data_ptr()  # a copy, not shared storage
    assert finetune.extra_heads["personality"][1].out_features == 5
    assert not any(k.startswith(("decoder_", "mask_token")) for k in pretrain.encoder_state_dict())
    with pytest.raises(ValueError, match="num_heads"):
        other_heads = SocialMAEConfig.variant("tiny", num_heads=6, modality_specific_depth=2, **TINY_INPUTS)
        pretrain.to_finetune_model(other_heads)  # same shapes, different attention: must be refused


def test_unmasked_encoder_computes_what_the_finetuning_encoder_computes():
    """With nothing hidden, the pretraining encoder's pooled views are SocialMAE.encode's outputs."""
    config = tiny_config(mask_ratio_a=0.0, mask_ratio_v=0.0, mae_weight=0.0)
    pretrain = SocialMAEPretrain(config).eval()
    finetune = pretrain.to_finetune_model().eval()
    audio, video = random_inputs(config.encoder)
    with torch.no_grad():
        encoded = pretrain.forward_encoder(audio, video)
        torch.testing.assert_close(encoded.audio_pooled, finetune.encode(audio=audio), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(encoded.video_pooled, finetune.encode(video=video), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(encoded.joint.mean(dim=1), finetune.encode(audio, video), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def test_config_defaults_are_the_references():
    config = PretrainConfig()
    assert (config.decoder_dim, config.decoder_depth, config.decoder_heads) == (512, 8, 16)
    assert (config.mask_ratio_a, config.mask_ratio_v) == (0.75, 0.75)
    assert (config.mae_weight, config.contrastive_weight, config.contrastive_temperature) == (1.0, 0.01, 0.05)
    assert config.norm_pix_loss is False and config.bidirectional_contrastive is False
    assert PretrainConfig.from_dict(tiny_config().to_dict()) == tiny_config()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"decoder_dim": 66}, "decoder_dim .* divisible by decoder_heads"),
        ({"decoder_dim": 0}, "decoder_dim must be a positive integer"),
        ({"mask_ratio_a": 1.0}, r"mask_ratio_a must be in \[0, 1\)"),
        ({"mask_ratio_v": 0.99}, "leaves no visible token of 8"),
        ({"mask_ratio_a": 0.0}, "hides none of 32 tokens"),
        ({"mae_weight": 0.0, "contrastive_weight": 0.0}, "nothing would be trained"),
        ({"contrastive_weight": -1.0}, "contrastive_weight must be a finite number >= 0"),
        ({"contrastive_temperature": 0.0}, "contrastive_temperature must be > 0"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_config_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="unknown PretrainConfig field"):
        PretrainConfig.from_dict({"decoder_width": 512})


# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_tokens, ratio", [(512, 0.75), (784, 0.75), (32, 0.75), (10, 0.5), (7, 0.6)])
def test_masking_hides_the_same_count_per_sample_and_differs_between_samples(num_tokens, ratio):
    tokens = torch.randn(6, num_tokens, 4)
    masked = random_masking(tokens, ratio, torch.Generator().manual_seed(0))
    num_hidden = num_tokens - int(num_tokens * (1 - ratio))
    if (num_tokens * ratio).is_integer():
        assert num_hidden == round(num_tokens * ratio)
    assert masked.mask.sum(dim=1).tolist() == [num_hidden] * 6
    assert masked.visible.shape == (6, num_tokens - num_hidden, 4)
    assert len({tuple(row.tolist()) for row in masked.mask}) > 1
    # The visible tokens are the unmasked ones, picked from the input.
    for b in range(6):
        kept = masked.mask[b] == 0
        assert sorted(masked.ids_keep[b].tolist()) == torch.nonzero(kept).flatten().tolist()
        torch.testing.assert_close(masked.visible[b], tokens[b, masked.ids_keep[b]], atol=0, rtol=0)


def test_ids_restore_inverts_the_shuffle():
    tokens = torch.randn(4, 20, 3)
    masked = random_masking(tokens, 0.75, torch.Generator().manual_seed(1))
    mask_token = torch.full((1, 1, 3), 99.0)
    restored = restore_with_mask_tokens(masked.visible, mask_token, masked.ids_restore)  # [4, 20, 3]
    hidden = masked.mask.bool()
    torch.testing.assert_close(restored[~hidden], tokens[~hidden], atol=0, rtol=0)
    assert bool((restored[hidden] == 99.0).all())
    # A zero ratio keeps everything: restoring gives the input back in its own order.
    everything = random_masking(tokens, 0.0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        restore_with_mask_tokens(everything.visible, mask_token, everything.ids_restore), tokens, atol=0, rtol=0
    )


def test_masks_follow_the_generator():
    model = SocialMAEPretrain(tiny_config())
    audio, video = random_inputs(model.config.encoder)
    with torch.no_grad():
        first = model(audio, video, generator=torch.Generator().manual_seed(5))
        second = model(audio, video, generator=torch.Generator().manual_seed(5))
        other = model(audio, video, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(first.mask_a, second.mask_a, atol=0, rtol=0)
    torch.testing.assert_close(first.loss, second.loss)
    assert not torch.equal(first.mask_a, other.mask_a)
    assert first.mask_a.shape == (3, TINY_AUDIO_PATCHES) and first.mask_v.shape == (3, TINY_VIDEO_PATCHES)
    assert first.mask_a.sum(dim=1).tolist() == [24.0] * 3 and first.mask_v.sum(dim=1).tolist() == [6.0] * 3


def test_num_visible_tokens_matches_the_released_counts():
    assert num_visible_tokens(512, 0.75) == 128 and num_visible_tokens(784, 0.75) == 196


# ---------------------------------------------------------------------------------------------
# Patch order
# ---------------------------------------------------------------------------------------------


def test_audio_patchify_follows_the_patch_embedding_order():
    """A patch embedding whose output channel j picks patch value j reproduces patchify_audio."""
    config = SocialMAEConfig(embed_dim=256, num_heads=4, **TINY_INPUTS)  # 256 = 16 * 16 values per patch
    embed = AudioPatchEmbed(config)
    with torch.no_grad():
        embed.proj.weight.copy_(torch.eye(256).reshape(256, 1, 16, 16))
        embed.proj.bias.zero_()
        fbank = torch.randn(2, config.audio_length, config.num_mel_bins)
        torch.testing.assert_close(embed(fbank), patchify_audio(fbank, config), atol=1e-6, rtol=0)
    torch.testing.assert_close(unpatchify_audio(patchify_audio(fbank, config), config), fbank, atol=0, rtol=0)
    # Token 1 is the second patch along time in the first mel row: frames 16..31, mel bins 0..15,
    # values mel major (reference `patchify`: 'nchpwq->nhwpqc' on [B, 1, F, T]).
    second_patch = fbank[:, 16:32, 0:16].transpose(1, 2).reshape(2, 256)  # [B, (mel, frame)]
    torch.testing.assert_close(patchify_audio(fbank, config)[:, 1], second_patch)


def test_video_patchify_follows_the_patch_embedding_order():
    """Conv3d weights one-hot in (frame, row, column, channel) order reproduce patchify_video."""
    config = SocialMAEConfig(embed_dim=1536, num_heads=4, **TINY_INPUTS)  # 2 * 16 * 16 * 3 values per tubelet
    embed = VideoPatchEmbed(config)
    with torch.no_grad():
        one_hot = torch.eye(1536).reshape(1536, 2, 16, 16, 3)  # [out, s, p, q, c]
        embed.proj.weight.copy_(one_hot.permute(0, 4, 2, 3, 1))  # Conv3d layout [out, c, p, q, s]
        embed.proj.bias.zero_()
        frames = torch.randn(2, 3, config.image_size, config.image_size, config.num_frames)
        torch.testing.assert_close(embed(frames), patchify_video(frames, config), atol=1e-6, rtol=0)
    torch.testing.assert_close(unpatchify_video(patchify_video(frames, config), config), frames, atol=0, rtol=0)
    # Time runs fastest: token 1 is the top-left tubelet of frames 2..3.
    expected = frames[:, :, 0:16, 0:16, 2:4].permute(0, 4, 2, 3, 1).reshape(2, -1)  # [B, (s, p, q, c)]
    torch.testing.assert_close(patchify_video(frames, config)[:, 1], expected)


def test_reference_patchify_formulas():
    """The reference's own `patchify` (einsum strings) gives our audio targets, and our video
    targets once reordered time-slice major (its token order disagrees with its Conv3d)."""
    config = SocialMAEConfig(**TINY_INPUTS)
    fbank = torch.randn(2, config.audio_length, config.num_mel_bins)
    imgs = fbank.unsqueeze(1).transpose(2, 3)  # [B, 1, F, T]
    h, w = config.num_mel_bins // 16, config.audio_length // 16
    reference_a = torch.einsum("nchpwq->nhwpqc", imgs.reshape(2, 1, h, 16, w, 16)).reshape(2, h * w, 256)
    torch.testing.assert_close(patchify_audio(fbank, config), reference_a, atol=0, rtol=0)

    frames = torch.randn(2, 3, config.image_size, config.image_size, config.num_frames)
    side, t = config.image_size // 16, config.num_frames // 2
    x = frames.reshape(2, 3, side, 16, side, 16, t, 2)
    reference_v = torch.einsum("nchpwqts->nthwspqc", x).reshape(2, side * side * t, 16 * 16 * 2 * 3)
    reordered = reference_video_token_order(patchify_video(frames, config), config)
    torch.testing.assert_close(reordered, reference_v, atol=0, rtol=0)
    assert not torch.equal(patchify_video(frames, config), reference_v)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def test_masked_mse_counts_hidden_patches_only():
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 5, 4, generator=generator), torch.randn(2, 5, 4, generator=generator)
    mask = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.float32)
    hidden = [(0, 0), (0, 2), (1, 3), (1, 4)]
    by_hand = sum(((pred[b, n] - target[b, n]) ** 2).mean() for b, n in hidden) / len(hidden)
    torch.testing.assert_close(masked_patch_mse(pred, target, mask), by_hand)
    # Changing a visible patch's target changes nothing; changing a hidden one does.
    changed_visible, changed_hidden = target.clone(), target.clone()
    changed_visible[0, 1] += 10.0
    changed_hidden[0, 2] += 10.0
    torch.testing.assert_close(masked_patch_mse(pred, changed_visible, mask), by_hand)
    assert masked_patch_mse(pred, changed_hidden, mask) > by_hand + 1.0


def test_norm_pix_loss_normalises_each_target_patch():
    target = torch.randn(1, 3, 8) * 5 + 2
    mask = torch.ones(1, 3)
    normalised = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(masked_patch_mse(normalised, target, mask, norm_pix_loss=True), torch.tensor(0.0))


def test_model_losses_are_the_masked_mse_of_its_predictions():
    model = SocialMAEPretrain(tiny_config())
    audio, video = random_inputs(model.config.encoder)
    with torch.no_grad():
        out = model(audio, video, generator=torch.Generator().manual_seed(3))
    target_a, target_v = patchify_audio(audio, model.config.encoder), patchify_video(video, model.config.encoder)
    streams = [(out.pred_a, target_a, out.mask_a, out.mae_loss_a), (out.pred_v, target_v, out.mask_v, out.mae_loss_v)]
    for pred, target, mask, loss in streams:
        hidden = [(b, n) for b in range(3) for n in range(mask.shape[1]) if mask[b, n] == 1]
        errors = [((pred[b, n] - target[b, n]) ** 2).mean() for b, n in hidden]
        torch.testing.assert_close(loss, sum(errors) / len(errors))
    expected_total = out.mae_loss_a + out.mae_loss_v + 0.01 * out.contrastive_loss
    torch.testing.assert_close(out.loss, expected_total)
    assert out.pred_a.shape == (3, TINY_AUDIO_PATCHES, 256) and out.pred_v.shape == (3, TINY_VIDEO_PATCHES, 1536)


def test_zero_weights_skip_their_terms():
    model = SocialMAEPretrain(tiny_config(mae_weight=0.0))
    audio, video = random_inputs(model.config.encoder)
    out = model(audio, video)
    assert out.pred_a is None and out.mae_loss_a is None
    torch.testing.assert_close(out.loss, 0.01 * out.contrastive_loss)
    out = SocialMAEPretrain(tiny_config(contrastive_weight=0.0))(audio, video)
    assert out.contrastive_loss is None
    torch.testing.assert_close(out.loss, out.mae_loss_a + out.mae_loss_v)


def test_info_nce_by_hand_on_three_pairs():
    audio = torch.tensor([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [0.0, 0.4, 1.0]])
    video = torch.tensor([[0.9, 0.0, 0.3], [0.2, 0.8, 0.0], [0.5, 0.1, 0.7]])
    a = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in audio.tolist()]
    v = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in video.tolist()]
    sim = [[sum(p * q for p, q in zip(a[i], v[j])) / 0.05 for j in range(3)] for i in range(3)]
    # For each video j, a softmax over the audio clips i (the reference's dim=0).
    per_video = [-(sim[j][j] - math.log(sum(math.exp(sim[i][j]) for i in range(3)))) for j in range(3)]
    per_audio = [-(sim[i][i] - math.log(sum(math.exp(sim[i][j]) for j in range(3)))) for i in range(3)]
    loss, accuracy = info_nce(audio, video, 0.05)
    assert loss.item() == pytest.approx(sum(per_video) / 3, rel=1e-5)
    both, _ = info_nce(audio, video, 0.05, bidirectional=True)
    assert both.item() == pytest.approx((sum(per_video) + sum(per_audio)) / 6, rel=1e-5)
    best_audio = [max(range(3), key=lambda i: sim[i][j]) for j in range(3)]
    assert accuracy.item() == pytest.approx(sum(best_audio[j] == j for j in range(3)) / 3)


def test_info_nce_is_near_zero_for_matched_pairs_and_large_for_shuffled_ones():
    reps = torch.eye(4, 16) * 3.0  # four well-separated clips
    matched, accuracy = info_nce(reps, reps.clone(), 0.05)
    assert matched.item() < 1e-6 and accuracy.item() == 1.0
    shuffled, accuracy = info_nce(reps, reps[[1, 2, 3, 0]], 0.05)
    assert shuffled.item() > 15.0 and accuracy.item() == 0.0  # about 1 / 0.05
    assert F.normalize(reps, dim=-1).norm(dim=-1).allclose(torch.ones(4))


def test_inputs_are_checked():
    model = SocialMAEPretrain(tiny_config())
    audio, video = random_inputs(model.config.encoder, batch=2)
    with pytest.raises(ValueError, match=r"audio must have shape \[B, 128, 64\]"):
        model(audio.transpose(1, 2), video)
    with pytest.raises(ValueError, match="same batch size"):
        model(audio, video[:1])


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------


def _structured_batch(config: SocialMAEConfig, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth spectro-temporal and spatio-temporal patterns with a per-clip offset: learnable structure."""
    level = torch.linspace(-0.5, 0.5, batch)[:, None, None]  # [B, 1, 1]
    frame = torch.arange(float(config.audio_length))[None, :, None]
    mel = torch.arange(float(config.num_mel_bins))[None, None, :]
    audio = torch.sin(frame / 9) * torch.cos(mel / 7) + level  # [B, T, F]
    pixel = torch.arange(float(config.image_size))
    time = torch.arange(float(config.num_frames))[None, None, :]
    rows, cols = pixel[:, None, None], pixel[None, :, None]
    pattern = torch.stack([torch.sin(rows / 5 + c) * torch.cos(cols / 4 + time / 2) for c in range(3)])  # [C, H, W, T]
    video = pattern[None] + level[:, :, :, None, None]  # [B, C, H, W, T]
    return audio, video


def test_pretraining_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    encoder = SocialMAEConfig.variant("tiny", modality_specific_depth=1, **TINY_INPUTS)
    model = SocialMAEPretrain(PretrainConfig(encoder=encoder, decoder_dim=64, decoder_depth=1, decoder_heads=4))
    audio, video = _structured_batch(encoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.95, 0.999), weight_decay=5e-7)

    def held_out_loss() -> float:  # the same masks before and after training
        with torch.no_grad():
            return model(audio, video, generator=torch.Generator().manual_seed(123)).loss.item()

    initial = held_out_loss()
    for _ in range(30):
        loss = model(audio, video).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = held_out_loss()
    assert math.isfinite(final) and final < 0.6 * initial, (initial, final)

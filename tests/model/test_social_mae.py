import numpy as np
import pytest
import torch

from socialmae_rt.model import Modality, SocialMAE
from socialmae_rt.model.social_mae import reference_sincos_pos_embed


@pytest.fixture
def model(small_config):
    torch.manual_seed(0)
    return SocialMAE(small_config.with_heads(laughter=1, personality=5)).eval()


@torch.no_grad()
def test_three_modes_and_all_heads(model, inputs):
    audio, video = inputs
    for kwargs, modality in (
        ({"audio": audio, "video": video}, Modality.AUDIOVISUAL),
        ({"audio": audio}, Modality.AUDIO),
        ({"video": video}, Modality.VIDEO),
    ):
        out = model.predict(**kwargs)
        assert out.modality is modality
        assert out.embedding.shape == (2, 64)
        assert {k: tuple(v.shape) for k, v in out.logits.items()} == {
            "emotion": (2, 6), "laughter": (2, 1), "personality": (2, 5)
        }
        torch.testing.assert_close(model(**kwargs), out.logits["emotion"])


@torch.no_grad()
def test_modes_differ(model, inputs):
    audio, video = inputs
    av, a, v = model(audio=audio, video=video), model(audio=audio), model(video=video)
    assert not torch.allclose(av, a) and not torch.allclose(av, v) and not torch.allclose(a, v)


@torch.no_grad()
@pytest.mark.parametrize(
    "norm, changes",
    [
        ("norm1_a", {"audio"}),
        ("norm2_v", {"video"}),
        ("norm1", {"audiovisual"}),
    ],
)
def test_each_mode_uses_its_own_joint_block_norms(model, inputs, norm, changes):
    audio, video = inputs
    runs = {"audiovisual": {"audio": audio, "video": video}, "audio": {"audio": audio}, "video": {"video": video}}
    before = {name: model(**kw) for name, kw in runs.items()}
    getattr(model.blocks_u[0], norm).weight.mul_(3.0)
    after = {name: model(**kw) for name, kw in runs.items()}
    changed = {name for name in runs if not torch.allclose(before[name], after[name])}
    assert changed == changes


@torch.no_grad()
def test_final_norm_per_mode(model, inputs):
    audio, video = inputs
    # A non-uniform change: a constant bias shift would be undone by the head's LayerNorm.
    shift = torch.linspace(-1.0, 1.0, model.config.embed_dim)
    before = model(video=video)
    model.norm_v.bias.add_(shift)
    assert not torch.allclose(before, model(video=video))
    before_audio = model(audio=audio)
    model.norm_v.bias.add_(shift)
    torch.testing.assert_close(before_audio, model(audio=audio))


@torch.no_grad()
def test_batch_items_are_independent(model, inputs):
    audio, video = inputs
    batched = model(audio=audio, video=video)
    single = torch.cat([model(audio=audio[i : i + 1], video=video[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_parameter_names_of_extra_heads(model):
    names = set(model.state_dict())
    assert {"mlp_head.0.weight", "mlp_head.1.weight", "extra_heads.laughter.1.bias", "extra_heads.personality.0.weight"} <= names


def test_fresh_position_embedding_follows_reference_formula(small_config):
    model = SocialMAE(small_config)
    d = small_config.embed_dim
    omega = np.arange(d // 4) / (d // 4) / 1000.0
    # Audio token 70 sits in column 70 mod 64 = 6; video token 30 in column 30 mod 28 = 2.
    for table, token, column in ((model.pos_embed_a, 70, 6), (model.pos_embed_v, 30, 2)):
        row = table[0, token].detach().numpy()
        half = np.concatenate([np.sin(column * omega), np.cos(column * omega)])
        np.testing.assert_allclose(row, np.concatenate([half, half]), atol=1e-6)
    assert reference_sincos_pos_embed(d, 512, 64).shape == (512, d)


def test_gradients_flow(small_config, inputs):
    model = SocialMAE(small_config)
    audio, video = inputs
    model(audio=audio, video=video).sum().backward()
    assert model.patch_embed_v.proj.weight.grad.abs().sum() > 0
    assert model.blocks_a[0].attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, r"needs audio, video or both; got neither"),
        ({"audio": torch.zeros(1, 1000, 128)}, ValueError, r"audio must have shape \[B, 1024, 128\].*got \[1, 1000, 128\]"),
        ({"audio": torch.zeros(1024, 128)}, ValueError, r"audio must have shape \[B, 1024, 128\]"),
        ({"video": torch.zeros(1, 224, 224, 3, 8)}, ValueError, r"video must have shape \[B, 3, 224, 224, 8\].*time last"),
        ({"audio": torch.zeros(1, 1024, 128, dtype=torch.int64)}, TypeError, r"floating-point.*got dtype torch.int64"),
        ({"audio": np.zeros((1, 1024, 128), np.float32)}, TypeError, r"torch.Tensor.*got ndarray"),
        ({"audio": torch.full((1, 1024, 128), float("nan"))}, ValueError, r"audio contains NaN or Inf"),
        ({"video": torch.full((1, 3, 224, 224, 8), float("inf"))}, ValueError, r"video contains NaN or Inf"),
        ({"audio": torch.zeros(0, 1024, 128)}, ValueError, r"batch size 0"),
        ({"audio": torch.zeros(2, 1024, 128), "video": torch.zeros(1, 3, 224, 224, 8)}, ValueError, r"same batch size, got 2 and 1"),
    ],
)
def test_bad_inputs_raise_one_clear_error(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        model.predict(**kwargs)


@torch.no_grad()
def test_patch_embeddings_equal_the_reference_convolutions(model, inputs):
    """patchify + matmul is the kernel = stride convolution of the reference, to float rounding."""
    audio, video = inputs
    conv_audio = model.patch_embed_a.proj(audio.unsqueeze(1).transpose(2, 3))  # [B, D, F/p, T/p]
    conv_video = model.patch_embed_v.proj(video)  # [B, D, H/p, W/p, T/s]
    expected_audio = conv_audio.flatten(2).transpose(1, 2)  # [B, Na, D]
    expected_video = conv_video.flatten(2).transpose(1, 2)  # [B, Nv, D]
    torch.testing.assert_close(model.patch_embed_a(audio), expected_audio, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.patch_embed_v(video), expected_video, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_patch_embeddings_keep_token_order_for_non_square_grids(small_config):
    """Unequal grid sizes (mel rows vs time columns, space vs time) would show a swapped axis."""
    from dataclasses import replace

    config = replace(small_config, audio_length=96, num_mel_bins=32, image_size=48, num_frames=6, temporal_stride=3)
    model = SocialMAE(config).eval()
    audio = torch.randn(3, 96, 32)
    video = torch.randn(3, 3, 48, 48, 6)
    expected_audio = model.patch_embed_a.proj(audio.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
    expected_video = model.patch_embed_v.proj(video).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.patch_embed_a(audio), expected_audio, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.patch_embed_v(video), expected_video, rtol=1e-5, atol=1e-5)

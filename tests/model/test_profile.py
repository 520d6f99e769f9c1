import pytest

from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig
from socialmae_rt.model.profile import count_gflops, count_parameters


def analytic_gflops(c: SocialMAEConfig, modality: Modality) -> float:
    """Matmul FLOPs written out from the architecture (multiply-add = 2)."""
    d, hidden, p = c.embed_dim, int(c.embed_dim * c.mlp_ratio), c.patch_size

    def block(tokens: int) -> float:
        linear = tokens * (d * 3 * d + d * d + 2 * d * hidden)  # qkv, proj, fc1, fc2
        attention = 2 * tokens * tokens * d  # q @ k^T and attn @ v
        return 2 * (linear + attention)

    na, nv = c.num_audio_patches, c.num_video_patches
    flops = 0.0
    if modality in (Modality.AUDIOVISUAL, Modality.AUDIO):
        flops += 2 * na * d * p * p + c.modality_specific_depth * block(na)
    if modality in (Modality.AUDIOVISUAL, Modality.VIDEO):
        flops += 2 * nv * d * p * p * c.temporal_stride * c.in_chans + c.modality_specific_depth * block(nv)
    joint_tokens = {Modality.AUDIOVISUAL: na + nv, Modality.AUDIO: na, Modality.VIDEO: nv}[modality]
    flops += c.joint_depth * block(joint_tokens) + 2 * d * c.num_classes
    return flops / 1e9


@pytest.mark.parametrize("modality", list(Modality))
def test_counted_flops_match_the_architecture(small_config, modality):
    model = SocialMAE(small_config)
    assert count_gflops(model, modality) == pytest.approx(analytic_gflops(small_config, modality), rel=1e-9)


def test_base_window_costs_about_257_gflop():
    # The estimate for ViT-B: 512 + 784 tokens through 11 blocks each, 1296 through the joint block.
    assert analytic_gflops(SocialMAEConfig(), Modality.AUDIOVISUAL) == pytest.approx(257.0, abs=0.5)


def test_parameter_count(small_config):
    model = SocialMAE(small_config)
    assert count_parameters(model) == sum(t.numel() for t in model.state_dict().values())

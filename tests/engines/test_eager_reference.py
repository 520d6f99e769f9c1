"""The reference-code arithmetic (explicit attention, convolution patch embeddings) on our weights."""

import pytest
import torch

from socialmae_rt.engines.eager_reference import ConvVideoPatchEmbed, ExplicitAttention, as_reference_code
from socialmae_rt.model import SocialMAE, SocialMAEConfig
from socialmae_rt.model.social_mae import Attention, VideoPatchEmbed

SMALL = SocialMAEConfig(embed_dim=64, num_heads=4, modality_specific_depth=2, extra_heads={"laughter": 1})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return SocialMAE(SMALL).eval()


@torch.no_grad()
@pytest.mark.parametrize("streams", ["av", "a", "v"])
def test_same_outputs_as_our_model(model, streams):
    reference = as_reference_code(model)
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(2, 1024, 128, generator=generator) if "a" in streams else None
    video = torch.randn(2, 3, 224, 224, 8, generator=generator) if "v" in streams else None
    ours, theirs = model.predict(audio, video), reference.predict(audio, video)
    torch.testing.assert_close(theirs.embedding, ours.embedding, rtol=1e-4, atol=1e-4)
    for name in ours.logits:
        torch.testing.assert_close(theirs.logits[name], ours.logits[name], rtol=1e-4, atol=1e-4)


def test_swaps_modules_shares_parameters_and_leaves_the_model_alone(model):
    reference = as_reference_code(model)
    assert isinstance(reference.blocks_u[0].attn, ExplicitAttention)
    assert isinstance(reference.patch_embed_v, ConvVideoPatchEmbed)
    assert isinstance(model.blocks_u[0].attn, Attention) and isinstance(model.patch_embed_v, VideoPatchEmbed)
    assert reference.blocks_a[1].attn.qkv.weight is model.blocks_a[1].attn.qkv.weight
    assert reference.patch_embed_a.proj.weight is model.patch_embed_a.proj.weight
    assert reference.blocks_v[0].mlp is model.blocks_v[0].mlp

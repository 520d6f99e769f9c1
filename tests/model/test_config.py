import pytest

from socialmae_rt.model import MODEL_VARIANTS, SocialMAEConfig


def test_defaults_are_the_released_model():
    c = SocialMAEConfig()
    assert (c.embed_dim, c.num_heads, c.modality_specific_depth, c.joint_depth) == (768, 12, 11, 1)
    assert (c.mlp_ratio, c.qkv_bias, c.patch_size, c.temporal_stride) == (4.0, True, 16, 2)
    assert (c.audio_length, c.num_mel_bins, c.image_size, c.num_frames) == (1024, 128, 224, 8)
    assert c.num_classes == 6 and c.extra_heads == {}
    assert c.audio_grid == (8, 64) and c.num_audio_patches == 512
    assert c.video_grid == (14, 14, 4) and c.num_video_patches == 784


@pytest.mark.parametrize("name, dim, heads", [("base", 768, 12), ("small", 384, 6), ("tiny", 192, 3)])
def test_variants(name, dim, heads):
    c = SocialMAEConfig.variant(name, num_classes=2)
    assert (c.embed_dim, c.num_heads, c.num_classes) == (dim, heads, 2)
    assert c.modality_specific_depth == 11 and c.joint_depth == 1


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match=r"unknown model variant 'huge'.*\['base', 'small', 'tiny'\]"):
        SocialMAEConfig.variant("huge")
    assert set(MODEL_VARIANTS) == {"base", "small", "tiny"}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"embed_dim": 100, "num_heads": 12}, r"embed_dim \(100\) must be divisible by num_heads \(12\)"),
        ({"embed_dim": 66, "num_heads": 3}, r"multiple of 4"),
        ({"image_size": 230}, r"image_size \(230\) must be a multiple of patch_size \(16\)"),
        ({"num_frames": 7}, r"num_frames \(7\) must be a multiple of temporal_stride \(2\)"),
        ({"num_classes": 0}, r"num_classes must be a positive integer, got 0"),
        ({"modality_specific_depth": 2.5}, r"modality_specific_depth must be a positive integer"),
        ({"mlp_ratio": 0}, r"mlp_ratio must be > 0"),
        ({"extra_heads": {"laughter": 0}}, r"extra_heads\['laughter'\] must be a positive integer"),
        ({"extra_heads": {"not valid": 1}}, r"head names must be identifiers"),
        ({"extra_heads": {"emotion": 6}}, r"'emotion' is already the primary head"),
    ],
)
def test_validation_says_what_to_change(fields, message):
    with pytest.raises(ValueError, match=message):
        SocialMAEConfig(**fields)


def test_from_dict_rejects_unknown_fields_naming_them():
    with pytest.raises(ValueError, match=r"unknown SocialMAEConfig field\(s\) \['depth'\]; valid fields are"):
        SocialMAEConfig.from_dict({"embed_dim": 64, "num_heads": 4, "depth": 3})
    with pytest.raises(TypeError, match="expected a mapping"):
        SocialMAEConfig.from_dict(["embed_dim", 64])


def test_dict_round_trip_and_heads():
    c = SocialMAEConfig(embed_dim=64, num_heads=4).with_heads(laughter=1, personality=5)
    assert SocialMAEConfig.from_dict(c.to_dict()) == c
    assert list(c.head_sizes.items()) == [("emotion", 6), ("laughter", 1), ("personality", 5)]

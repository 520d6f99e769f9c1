"""Preprocessing config: defaults, validation, dict round trip."""

import pytest

from socialmae_rt.features import AudioFeatureConfig, PreprocessConfig, VideoFeatureConfig


def test_defaults_are_the_reference_settings():
    audio = AudioFeatureConfig()
    assert (audio.frame_length, audio.frame_shift) == (400, 160)
    assert (audio.num_mel_bins, audio.target_length) == (128, 1024)
    assert (audio.norm_mean, audio.norm_std) == (-6.2943, 12.26344)
    video = VideoFeatureConfig()
    assert (video.image_size, video.num_frames, video.channel_order) == (224, 8, "BGR")
    assert video.window_seconds == 4.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AudioFeatureConfig(num_mel_bins=0), "num_mel_bins must be > 0"),
        (lambda: AudioFeatureConfig(sample_rate=-1), "sample_rate must be > 0"),
        (lambda: AudioFeatureConfig(norm_std=0.0), "norm_std must be > 0"),
        (lambda: AudioFeatureConfig(preemphasis=1.0), "preemphasis must be in"),
        (lambda: AudioFeatureConfig(low_freq=9000.0), "low_freq < high_freq"),
        (lambda: AudioFeatureConfig(high_freq=9000.0), "Nyquist"),
        (lambda: VideoFeatureConfig(channel_order="XYZ"), "channel_order must be one of"),
        (lambda: VideoFeatureConfig(image_size=0), "image_size must be > 0"),
        (lambda: VideoFeatureConfig(mean=(0.5, 0.5)), "3 values each"),
        (lambda: VideoFeatureConfig(std=(0.2, 0.0, 0.2)), "std must be > 0"),
    ],
)
def test_bad_values_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_round_trip_through_dict():
    config = PreprocessConfig(
        audio=AudioFeatureConfig(num_mel_bins=64, target_length=512),
        video=VideoFeatureConfig(channel_order="RGB", num_frames=4),
    )
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert PreprocessConfig.from_dict(PreprocessConfig().to_dict()) == PreprocessConfig()


def test_from_dict_names_unknown_key():
    with pytest.raises(ValueError, match="unknown PreprocessConfig field.*'colour'"):
        PreprocessConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="unknown AudioFeatureConfig field.*'n_mels'"):
        PreprocessConfig.from_dict({"audio": {"n_mels": 64}})


def test_from_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="expected a mapping"):
        PreprocessConfig.from_dict([("audio", {})])

"""audio_to_model_input and resample_audio: rates, padding, normalisation, and bad input."""

import numpy as np
import pytest

from socialmae_rt.features import AudioFeatureConfig, audio_to_model_input, kaldi_fbank, resample_audio

CONFIG = AudioFeatureConfig()
PADDED_ROW_VALUE = (np.float32(0.0) - np.float32(CONFIG.norm_mean)) / np.float32(CONFIG.norm_std)
# Same tones given at 48/44.1 kHz vs 16 kHz: away from the clip edges (where the resampling filter
# has start/stop transients) only resampler rounding remains, in the quietest bins (measured 1.9e-4).
RESAMPLED_INTERIOR_TOLERANCE = 1e-3
EDGE_FRAMES = 2


def tones(sample_rate: float, seconds: float, freqs=(440.0, 1000.0, 2500.0)) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * CONFIG.sample_rate))


def test_shape_and_dtype():
    out = audio_to_model_input(noise(4.0), 16000)
    assert out.shape == (1024, 128) and out.dtype == np.float32


def test_short_audio_is_zero_padded_before_normalising():
    waveform = noise(2.0)
    num_frames = 1 + (waveform.size - 400) // 160
    out = audio_to_model_input(waveform, 16000)
    assert np.all(out[num_frames:] == PADDED_ROW_VALUE)
    expected = (kaldi_fbank(waveform) - np.float32(CONFIG.norm_mean)) / np.float32(CONFIG.norm_std)
    np.testing.assert_array_equal(out[:num_frames], expected)
    assert not np.any(out[num_frames - 1] == PADDED_ROW_VALUE)


def test_long_audio_is_cut_to_first_frames():
    waveform = noise(11.0)
    fbank = kaldi_fbank(waveform)
    assert fbank.shape[0] > 1024
    expected = (fbank[:1024] - np.float32(CONFIG.norm_mean)) / np.float32(CONFIG.norm_std)
    np.testing.assert_array_equal(audio_to_model_input(waveform, 16000), expected)


def test_target_length_comes_from_config():
    out = audio_to_model_input(noise(1.0), 16000, AudioFeatureConfig(target_length=50, num_mel_bins=64))
    assert out.shape == (50, 64)


@pytest.mark.parametrize("from_rate", [48000, 44100])
def test_resampling_keeps_frequency_and_length_ratio(from_rate):
    tone_hz = 1234.0
    resampled = resample_audio(tones(from_rate, 1.0, (tone_hz,)), from_rate, 16000)
    assert resampled.dtype == np.float32 and resampled.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(resampled))
    peak_hz = spectrum.argmax() * 16000 / resampled.size
    assert abs(peak_hz - tone_hz) <= 1.0  # one FFT bin at 1 s


def test_resample_same_rate_is_identity():
    waveform = noise(0.1).astype(np.float32)
    np.testing.assert_array_equal(resample_audio(waveform, 16000, 16000), waveform)


def test_resample_rejects_bad_rate():
    with pytest.raises(ValueError, match="from_rate must be > 0"):
        resample_audio(noise(0.1), 0, 16000)


@pytest.mark.parametrize("from_rate", [48000, 44100])
def test_model_input_from_higher_rate_matches_16k(from_rate):
    at_16k = audio_to_model_input(tones(16000, 2.0), 16000)
    resampled = audio_to_model_input(tones(from_rate, 2.0), from_rate)
    num_frames = 1 + (32000 - 400) // 160
    interior = slice(EDGE_FRAMES, num_frames - EDGE_FRAMES)
    assert np.abs(resampled[interior] - at_16k[interior]).max() <= RESAMPLED_INTERIOR_TOLERANCE
    np.testing.assert_array_equal(resampled[num_frames:], at_16k[num_frames:])  # same padding


def test_too_short_after_resampling_says_so():
    with pytest.raises(ValueError, match=r"at least 400 samples.*after resampling 1197 samples at 48000 Hz"):
        audio_to_model_input(np.zeros(1197), 48000)


def test_int16_equals_float_over_32768():
    waveform = np.round(noise(1.0) * 20000).astype(np.int16)
    np.testing.assert_array_equal(
        audio_to_model_input(waveform, 16000), audio_to_model_input(waveform / 32768.0, 16000)
    )
    np.testing.assert_array_equal(
        resample_audio(waveform, 48000, 16000), resample_audio(waveform / 32768.0, 48000, 16000)
    )


BAD_WAVEFORMS = {
    "empty": (np.zeros(0), ValueError, "empty"),
    "nan": (np.array([0.0] * 500 + [np.nan]), ValueError, "NaN or Inf"),
    "inf": (np.array([0.0] * 500 + [np.inf]), ValueError, "NaN or Inf"),
    "two_channels": (np.zeros((2, 1000)), ValueError, "mono waveform expected"),
    "three_dims": (np.zeros((1, 1, 1000)), ValueError, "mono waveform expected"),
    "object_dtype": (np.array([0.0] * 500, dtype=object), TypeError, "float16, float32, float64 or int16"),
    "int32": (np.zeros(1000, dtype=np.int32), TypeError, "int16.*got int32"),
    "too_short": (np.zeros(399), ValueError, "at least 400 samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_WAVEFORMS))
@pytest.mark.parametrize("function", ["kaldi_fbank", "audio_to_model_input"])
def test_bad_waveform_is_refused_clearly(case, function):
    waveform, error, message = BAD_WAVEFORMS[case]
    with pytest.raises(error, match=message):
        if function == "kaldi_fbank":
            kaldi_fbank(waveform)
        else:
            audio_to_model_input(waveform, 16000)

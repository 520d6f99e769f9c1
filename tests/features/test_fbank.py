"""kaldi_fbank against Kaldi's definition: a C++ Kaldi port, a slow in-test reference, and physics."""

import math

import kaldi_native_fbank as knf
import numpy as np
import pytest

from socialmae_rt.features import AudioFeatureConfig, kaldi_fbank

SAMPLE_RATE = 16000
# kaldi_native_fbank computes in float32; its log-mel differs from our float64 maths by float32
# rounding, largest in the quietest bins (measured max 1.4e-5 at 23 bins, 4.1e-5 at 40, 7.7e-5 at 80
# on this signal; up to 2.9e-4 at 80 bins on a louder tone).
KNF_LOG_MEL_TOLERANCE = 5e-4
# Our float64 result cast to float32 vs a float64 reference: float32 output rounding only (measured
# 4.7e-7, half a float32 ulp at |log-mel| ~ 10); allow two ulps at |log-mel| ~ 16.
REFERENCE_LOG_MEL_TOLERANCE = 4e-6
LOG_INT16_SCALE_SQUARED = 2 * math.log(32768)


def make_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise plus a tone plus DC, so every mel bin has energy and mean removal matters."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05




def knf_fbank(samples: np.ndarray, num_bins: int) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hanning"
    opts.frame_opts.snip_edges = True
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.preemph_coeff = 0.97
    opts.mel_opts.num_bins = num_bins
    opts.mel_opts.low_freq = 20
    opts.mel_opts.high_freq = 0
    opts.use_energy = False
    opts.htk_compat = True
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(SAMPLE_RATE, samples.tolist())
    fbank.input_finished()
    return np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])  # [num_frames, num_bins]


@pytest.mark.parametrize("num_bins", [23, 40, 80])
def test_matches_kaldi_native_fbank(num_bins):
    waveform = make_signal(2.0)
    expected = knf_fbank(waveform - waveform.mean(), num_bins)  # ours removes the mean itself
    ours = kaldi_fbank(waveform, SAMPLE_RATE, AudioFeatureConfig(num_mel_bins=num_bins))
    assert ours.dtype == np.float32
    assert ours.shape == expected.shape == (1 + (waveform.size - 400) // 160, num_bins)
    assert np.abs(ours - expected).max() <= KNF_LOG_MEL_TOLERANCE


def test_int16_input_matches_kaldi_on_int16_scale_samples():
    """knf takes samples as they come (no 1/32768); ours scales int16, so log-mel shifts by 2 ln 32768."""
    waveform = np.round(make_signal(1.0) * 8000).astype(np.int16)
    raw = waveform.astype(np.float64)
    expected = knf_fbank(raw - raw.mean(), 40)
    ours = kaldi_fbank(waveform, SAMPLE_RATE, AudioFeatureConfig(num_mel_bins=40))
    assert np.abs(ours + LOG_INT16_SCALE_SQUARED - expected).max() <= KNF_LOG_MEL_TOLERANCE


def test_kaldi_native_fbank_refuses_128_bins_which_we_accept():
    """Why the 128-bin check below uses an in-test reference instead of knf."""
    with pytest.raises(ValueError, match="num_mel_bins"):
        knf_fbank(make_signal(0.1), 128)
    ours = kaldi_fbank(make_signal(0.1))
    assert ours.shape[1] == 128
    empty_bins = np.all(ours == np.float32(np.log(np.finfo(np.float32).eps)), axis=0)
    assert empty_bins.any(), "some low 128-bin triangles hold no FFT bin and give log(eps)"


def slow_reference_fbank(waveform: np.ndarray, num_bins: int = 128) -> np.ndarray:
    """Kaldi fbank written straight from the definition: explicit loops, direct DFT, float64."""
    x = waveform.astype(np.float64)
    x = x - x.mean()
    length, shift, fft_size = 400, 160, 512
    num_frames = 1 + (len(x) - length) // shift
    window = [0.5 - 0.5 * math.cos(2 * math.pi * n / (length - 1)) for n in range(length)]
    n = np.arange(length)
    k = np.arange(fft_size // 2 + 1)
    dft = np.exp(-2j * np.pi * np.outer(n, k) / fft_size)  # zero padding to 512 adds nothing to the sum

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    mel_low, mel_high = mel(20.0), mel(SAMPLE_RATE / 2)
    delta = (mel_high - mel_low) / (num_bins + 1)
    weights = np.zeros((num_bins, fft_size // 2 + 1))
    for m in range(num_bins):
        left, center, right = mel_low + m * delta, mel_low + (m + 1) * delta, mel_low + (m + 2) * delta
        for b in range(fft_size // 2):  # the Nyquist bin keeps weight 0
            f_mel = mel(b * SAMPLE_RATE / fft_size)
            if left < f_mel < right:
                weights[m, b] = min((f_mel - left) / (center - left), (right - f_mel) / (right - center))

    out = np.zeros((num_frames, num_bins))
    for i in range(num_frames):
        frame = x[i * shift : i * shift + length].copy()
        frame -= frame.mean()
        emphasised = [frame[j] - 0.97 * frame[j - 1 if j > 0 else 0] for j in range(length)]
        windowed = np.array([emphasised[j] * window[j] for j in range(length)])
        power = np.abs(windowed @ dft) ** 2
        energies = weights @ power
        out[i] = np.log(np.maximum(energies, np.finfo(np.float32).eps))
    return out


def test_matches_slow_reference_at_128_bins():
    waveform = make_signal(0.3, seed=1)
    expected = slow_reference_fbank(waveform)
    ours = kaldi_fbank(waveform)
    assert ours.shape == expected.shape == (28, 128)
    assert np.abs(ours - expected).max() <= REFERENCE_LOG_MEL_TOLERANCE


def mel_to_hz(mel):
    return 700.0 * (math.exp(mel / 1127.0) - 1.0)


@pytest.mark.parametrize("freq_hz", [300, 1000, 3000, 6000])
def test_pure_tone_peaks_in_its_mel_bin(freq_hz):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    fbank = kaldi_fbank(0.5 * np.sin(2 * np.pi * freq_hz * t))
    peak_bin = int(fbank.mean(axis=0).argmax())
    mel_low, mel_high = 1127 * math.log(1 + 20 / 700), 1127 * math.log(1 + 8000 / 700)
    delta = (mel_high - mel_low) / 129
    centre_mel = mel_low + (peak_bin + 1) * delta
    centre_hz = mel_to_hz(centre_mel)
    mel_bin_hz = mel_to_hz(centre_mel + delta) - centre_hz
    # Below ~600 Hz mel bins are narrower than the 31.25 Hz FFT grid, which then limits the resolution.
    tolerance_hz = max(mel_bin_hz, SAMPLE_RATE / 512)
    assert abs(centre_hz - freq_hz) <= tolerance_hz


@pytest.mark.parametrize("num_samples", [400, 401, 559, 560, 16000, 64000])
def test_frame_count(num_samples):
    fbank = kaldi_fbank(make_signal(num_samples / SAMPLE_RATE))
    assert fbank.shape == (1 + (num_samples - 400) // 160, 128)


def test_shorter_than_one_frame_is_refused():
    with pytest.raises(ValueError, match=r"at least 400 samples \(25 ms at 16000 Hz\), got 399"):
        kaldi_fbank(np.zeros(399))


def test_dc_offset_is_removed():
    waveform = make_signal(0.5)
    assert np.abs(kaldi_fbank(waveform + 0.3) - kaldi_fbank(waveform)).max() <= REFERENCE_LOG_MEL_TOLERANCE


def test_int16_equals_float_over_32768():
    waveform = np.round(make_signal(0.5) * 10000).astype(np.int16)
    np.testing.assert_array_equal(kaldi_fbank(waveform), kaldi_fbank(waveform / 32768.0))


def test_mono_2d_shapes_are_squeezed():
    waveform = make_signal(0.1)
    expected = kaldi_fbank(waveform)
    np.testing.assert_array_equal(kaldi_fbank(waveform[None, :]), expected)
    np.testing.assert_array_equal(kaldi_fbank(waveform[:, None]), expected)


def test_wrong_sample_rate_points_to_resampling():
    with pytest.raises(ValueError, match="audio_to_model_input.*resample_audio"):
        kaldi_fbank(make_signal(0.1), sample_rate=48000)


def test_mel_banks_are_cached_and_read_only():
    from socialmae_rt.features.fbank import mel_banks

    first = mel_banks(128, 512, 16000, 20.0, 0.0)
    assert mel_banks(128, 512, 16000, 20.0, 0.0) is first
    assert first.shape == (128, 257) and not first[:, -1].any()
    with pytest.raises(ValueError):
        first[0, 0] = 1.0

"""Kaldi log-mel filterbank in numpy, as torchaudio.compliance.kaldi.fbank computes it.

Settings are those the released Social-MAE weights saw (see AudioFeatureConfig): Hanning
window, snip_edges, DC removal, pre-emphasis, power spectrum, HTK mel scale, natural log,
no dither and no energy column. The maths runs in float64; the result is cast to float32.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from socialmae_rt.features.config import AudioFeatureConfig

# Kaldi floors mel energies at float32 machine epsilon before taking the log.
LOG_FLOOR = float(np.finfo(np.float32).eps)
INT16_SCALE = 32768.0  # int16 samples map to [-1, 1) the way torchaudio.load does
ACCEPTED_DTYPES = "float16, float32, float64 or int16"


def kaldi_fbank(waveform, sample_rate: int = 16000, config: AudioFeatureConfig | None = None) -> np.ndarray:
    """Log-mel filterbank of a mono waveform: float32 [num_frames, num_mel_bins], unpadded, unnormalised.

    `waveform` is 1-D (or [1, N] / [N, 1]). Float input is taken as lying in [-1, 1] (as
    torchaudio.load returns it); int16 input is scaled by 1/32768 first. The waveform mean is
    removed before framing, as the reference loader did. `sample_rate` must equal
    config.sample_rate; use audio_to_model_input or resample_audio for other rates.
    """
    config = config or AudioFeatureConfig()
    if sample_rate != config.sample_rate:
        raise ValueError(
            f"kaldi_fbank needs audio at {config.sample_rate} Hz, got {sample_rate} Hz; "
            "use audio_to_model_input (which resamples) or resample_audio first"
        )
    samples = validate_waveform(waveform)
    require_min_samples(samples.size, config)
    return fbank_of_samples(samples, config)


def fbank_of_samples(samples: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """The filterbank itself, for samples already validated (float64, 1-D, long enough)."""
    samples = samples - samples.mean()
    frames = frame_signal(samples, config.frame_length, config.frame_shift)  # [num_frames, frame_length]
    frames = frames - frames.mean(axis=1, keepdims=True)  # per-frame DC offset removal
    frames = preemphasize(frames, config.preemphasis)
    frames = frames * hanning_window(config.frame_length)
    padded_length = next_power_of_two(config.frame_length)
    power = power_spectrum(frames, padded_length)  # [num_frames, padded_length // 2 + 1]
    banks = mel_banks(config.num_mel_bins, padded_length, config.sample_rate, config.low_freq, config.high_freq)
    mel_energies = power @ banks.T  # [num_frames, num_mel_bins]
    return np.log(np.maximum(mel_energies, LOG_FLOOR)).astype(np.float32)


def validate_waveform(waveform) -> np.ndarray:
    """Check a mono waveform and return it as float64 1-D; int16 is scaled by 1/32768."""
    array = np.asarray(waveform)
    if array.dtype == np.int16:
        scale = 1.0 / INT16_SCALE
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise TypeError(f"waveform dtype must be {ACCEPTED_DTYPES}, got {array.dtype}")
    array = squeeze_mono(array)
    if array.size == 0:
        raise ValueError("waveform is empty (0 samples)")
    samples = array.astype(np.float64) * scale
    if not np.all(np.isfinite(samples)):
        raise ValueError("waveform contains NaN or Inf values")
    return samples


def squeeze_mono(array: np.ndarray) -> np.ndarray:
    """Accept [N], [1, N] or [N, 1]; anything else is not a mono waveform."""
    if array.ndim == 1:
        return array
    if array.ndim == 2 and 1 in array.shape:
        return array.reshape(-1)  # [N]
    raise ValueError(f"mono waveform expected (shape [N], [1, N] or [N, 1]), got shape {array.shape}")


def require_min_samples(num_samples: int, config: AudioFeatureConfig, context: str = "") -> None:
    """snip_edges gives no frame at all below one window: refuse instead of returning nothing."""
    minimum = config.frame_length
    if num_samples < minimum:
        raise ValueError(
            f"waveform too short: need at least {minimum} samples ({config.frame_length_ms:g} ms at "
            f"{config.sample_rate} Hz), got {num_samples} samples{context}"
        )


def frame_signal(samples: np.ndarray, frame_length: int, frame_shift: int) -> np.ndarray:
    """snip_edges framing: frame i covers samples [i*shift, i*shift + length); a read-only view."""
    windows = np.lib.stride_tricks.sliding_window_view(samples, frame_length)  # [N - length + 1, length]
    return windows[::frame_shift]  # [1 + (N - length) // shift, length]


def preemphasize(frames: np.ndarray, coefficient: float) -> np.ndarray:
    """y[j] = x[j] - c*x[j-1]; the first sample uses itself as predecessor (Kaldi's convention)."""
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)  # [num_frames, frame_length]
    return frames - coefficient * previous


@functools.lru_cache(maxsize=8)
def hanning_window(length: int) -> np.ndarray:
    """Symmetric Hann window (Kaldi's 'hanning'): 0.5 - 0.5*cos(2*pi*n/(length-1))."""
    n = np.arange(length, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / (length - 1))
    window.flags.writeable = False  # cached: callers must not modify it
    return window


def next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def power_spectrum(frames: np.ndarray, fft_length: int) -> np.ndarray:
    """|rfft|^2 of each frame zero-padded on the right to fft_length."""
    spectrum = np.fft.rfft(frames, n=fft_length, axis=1)  # [num_frames, fft_length // 2 + 1]
    return spectrum.real**2 + spectrum.imag**2


def mel_scale(freq_hz):
    """HTK mel scale."""
    return 1127.0 * np.log(1.0 + np.asarray(freq_hz, dtype=np.float64) / 700.0)


def resolve_high_freq(high_freq: float, sample_rate: int) -> float:
    """Kaldi convention: high_freq <= 0 is an offset from the Nyquist frequency."""
    return high_freq if high_freq > 0 else sample_rate / 2 + high_freq


def mel_bin_edges(num_bins: int, low_freq: float, high_freq: float, sample_rate: int) -> np.ndarray:
    """Mel-scale left/centre/right of each triangle: [num_bins, 3], equally spaced in mel."""
    mel_low = float(mel_scale(low_freq))
    mel_high = float(mel_scale(resolve_high_freq(high_freq, sample_rate)))
    delta = (mel_high - mel_low) / (num_bins + 1)
    starts = mel_low + delta * np.arange(num_bins, dtype=np.float64)  # [num_bins]
    return starts[:, None] + delta * np.arange(3, dtype=np.float64)  # [num_bins, 3]


@functools.lru_cache(maxsize=8)
def mel_banks(num_bins: int, fft_length: int, sample_rate: int, low_freq: float, high_freq: float) -> np.ndarray:
    """Triangular HTK-mel filters, [num_bins, fft_length // 2 + 1]; the Nyquist column is zero.

    Triangles too narrow to hold an FFT bin centre give all-zero rows (hence log(eps) outputs).
    Kaldi's C++ refuses such settings, but torchaudio, which the released model used, accepts them.
    """
    num_fft_bins = fft_length // 2
    bin_width_hz = sample_rate / fft_length
    fft_mels = mel_scale(bin_width_hz * np.arange(num_fft_bins))  # [num_fft_bins]
    edges = mel_bin_edges(num_bins, low_freq, high_freq, sample_rate)  # [num_bins, 3]
    left, center, right = (edges[:, i : i + 1] for i in range(3))  # each [num_bins, 1]
    rising = (fft_mels - left) / (center - left)  # [num_bins, num_fft_bins]
    falling = (right - fft_mels) / (right - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    banks = np.zeros((num_bins, num_fft_bins + 1), dtype=np.float64)
    banks[:, :num_fft_bins] = weights
    banks.flags.writeable = False  # cached: callers must not modify it
    return banks

"""Audio to model input: resample to the model rate, filterbank, pad/cut, normalise."""

from __future__ import annotations

import numpy as np
import soxr

from socialmae_rt.features.config import AudioFeatureConfig
from socialmae_rt.features.fbank import fbank_of_samples, require_min_samples, validate_waveform

RESAMPLE_QUALITY = "HQ"


def resample_audio(waveform, from_rate: float, to_rate: float) -> np.ndarray:
    """Resample a mono waveform with soxr (HQ); returns float32 [round(N * to_rate / from_rate)].

    int16 input is scaled by 1/32768 first, so the result is always float in [-1, 1] units.
    """
    return resample_samples(validate_waveform(waveform), from_rate, to_rate).astype(np.float32)


def resample_samples(samples: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
    """Resample validated float64 samples, keeping float64 for the filterbank that follows."""
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        if not rate > 0:
            raise ValueError(f"resample_audio: {name} must be > 0 Hz, got {rate!r}")
    if from_rate == to_rate:
        return samples.copy()
    return soxr.resample(samples, from_rate, to_rate, quality=RESAMPLE_QUALITY)


def audio_to_model_input(waveform, sample_rate: float, config: AudioFeatureConfig | None = None) -> np.ndarray:
    """Mono waveform at any rate -> normalised log-mel, float32 [target_length, num_mel_bins].

    Float input is taken as in [-1, 1]; int16 is scaled by 1/32768. Audio not at
    config.sample_rate is resampled with soxr. Short clips are zero-padded at the end and long
    ones cut to their first target_length frames, before normalising (as the reference did).
    """
    config = config or AudioFeatureConfig()
    samples = validate_waveform(waveform)
    context = ""
    if sample_rate != config.sample_rate:
        context = f" (after resampling {samples.size} samples at {sample_rate} Hz)"
        samples = resample_samples(samples, sample_rate, config.sample_rate)
    require_min_samples(samples.size, config, context)
    fbank = fbank_of_samples(samples, config)  # [num_frames, num_mel_bins]
    fbank = pad_or_cut(fbank, config.target_length)  # [target_length, num_mel_bins]
    return normalise(fbank, config)


def pad_or_cut(fbank: np.ndarray, target_length: int) -> np.ndarray:
    """Zero rows appended at the end, or only the first target_length frames kept."""
    num_frames = fbank.shape[0]
    if num_frames >= target_length:
        return fbank[:target_length]
    padding = np.zeros((target_length - num_frames, fbank.shape[1]), dtype=fbank.dtype)
    return np.concatenate([fbank, padding], axis=0)


def normalise(fbank: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """(x - mean) / std with the dataset statistics the released weights were trained with."""
    return ((fbank - np.float32(config.norm_mean)) / np.float32(config.norm_std)).astype(np.float32)

"""Audio and video preprocessing: raw signals to the tensors Social-MAE was trained on.

Names load on first use: the configuration and the audio path stay free of torch, which only the
video resize needs.
"""

from socialmae_rt.util.lazy import lazy_exports

_HOMES = {
    "audio_to_model_input": "audio",
    "resample_audio": "audio",
    "AudioFeatureConfig": "config",
    "PreprocessConfig": "config",
    "VideoFeatureConfig": "config",
    "kaldi_fbank": "fbank",
    "frames_to_model_input": "video",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)

"""Audio and video preprocessing: raw signals to the tensors Social-MAE was trained on."""

from socialmae_rt.features.audio import audio_to_model_input, resample_audio
from socialmae_rt.features.config import AudioFeatureConfig, PreprocessConfig, VideoFeatureConfig
from socialmae_rt.features.fbank import kaldi_fbank
from socialmae_rt.features.video import frames_to_model_input

__all__ = [
    "AudioFeatureConfig",
    "PreprocessConfig",
    "VideoFeatureConfig",
    "audio_to_model_input",
    "frames_to_model_input",
    "kaldi_fbank",
    "resample_audio",
]

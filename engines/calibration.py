"""Real windows for int8 calibration and accuracy checks, cut from clips as the live pipeline cuts them.

A clip is decoded by the training reader (the live file source, frames on the 2 fps grid), faces
found and cropped by the live detector and tracker (MediaPipe; the largest face at each time),
and windows ending on crop times `hop_s` apart are preprocessed exactly as live (fbank
[1024, 128], video [3, 224, 224, 8]).
Only windows with both streams are kept: each graph (audiovisual, audio, video) takes what it
needs from the same windows. Without clips, the bundled sample clip is written to a temporary
folder and used (a face and speech; `socialmae_rt.media.sample`).

The accuracy gate scores other clips (int8_gate.py: the held-out suite), never windows of these.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from socialmae_rt.engines.onnx_export import sha256_file
from socialmae_rt.features import PreprocessConfig, audio_to_model_input, frames_to_model_input
from socialmae_rt.stream.buffer import BufferConfig

log = logging.getLogger(__name__)

SAMPLE_CLIP = "bundled sample clip"
DEFAULT_HOP_S = 0.5
DEFAULT_MAX_WINDOWS = 48


@dataclass
class CalibrationSet:
    """Windows of whole inputs: audio float32 [N, 1024, 128], video float32 [N, 3, 224, 224, 8]."""

    audio: np.ndarray
    video: np.ndarray
    sources: list[str] = field(default_factory=list)  # "name sha256[:16] windows" per clip
    origins: list[str] = field(default_factory=list)  # per window: the clip it was cut from (file stem)

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    def halves(self) -> tuple["CalibrationSet", "CalibrationSet"]:
        """(calibration, held out): even and odd windows."""
        if len(self) < 2:
            raise ValueError(f"need at least 2 windows to calibrate and hold some out, got {len(self)}")
        return (CalibrationSet(self.audio[0::2], self.video[0::2], self.sources, self.origins[0::2]),
                CalibrationSet(self.audio[1::2], self.video[1::2], self.sources, self.origins[1::2]))

    def identity(self) -> str:
        """What the set was made from, for cache keys."""
        return "; ".join(self.sources) + f"; {len(self)} windows"


SILENCE_PEAK = 1e-4  # a sound track whose samples never exceed this (full scale 1) holds no sound
MEDIA_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


class CalibrationClipError(ValueError):
    """A calibration clip that cannot give one window: names the clip and what it lacks."""


def expand_clips(clips: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders as the media files in them (sorted); a missing path or a folder with
    no media file is refused."""
    found: list[Path] = []
    for clip in map(Path, clips):
        if clip.is_dir():
            inside = sorted(p for p in clip.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
            if not inside:
                raise CalibrationClipError(f"calibration folder {clip} holds no media file ({', '.join(MEDIA_SUFFIXES)})")
            found += inside
        elif clip.is_file():
            found.append(clip)
        else:
            raise FileNotFoundError(f"calibration clip not found: {clip}")
    return found


def calibration_windows(
    clips: Sequence[str | Path] | None,
    preprocess: PreprocessConfig,
    *,
    hop_s: float = DEFAULT_HOP_S,
    max_windows: int = DEFAULT_MAX_WINDOWS,
) -> CalibrationSet:
    """Audiovisual windows from `clips` (files or folders of them; None: the bundled sample clip),
    at most `max_windows`. Every clip must give at least one window: one that cannot (no face, no
    sound, shorter than a window) is refused by name with what it lacks."""
    if clips:
        return _windows_of(expand_clips(clips), preprocess, hop_s, max_windows)
    from socialmae_rt.media.sample import build_sample_clip

    with tempfile.TemporaryDirectory(prefix="socialmae_rt_calibration_") as folder:
        path = Path(folder) / "sample.mp4"
        log.info("calibration: writing the bundled sample clip to %s", path)
        build_sample_clip(path)
        found = _windows_of([path], preprocess, hop_s, max_windows)
    found.sources = [source.replace("sample.mp4", SAMPLE_CLIP, 1) for source in found.sources]
    found.origins = [SAMPLE_CLIP] * len(found)
    return found


def _windows_of(paths: list[Path], preprocess: PreprocessConfig, hop_s: float, max_windows: int) -> CalibrationSet:
    audio, video, sources, origins = [], [], [], []
    for path in paths:
        clip_audio, clip_video = _clip_windows(path, preprocess, hop_s)
        audio += clip_audio
        video += clip_video
        origins += [path.stem] * len(clip_audio)
        sources.append(f"{path.name} {sha256_file(path)[:16]} {len(clip_audio)}")
    if len(audio) > max_windows:  # evenly over everything found
        keep = np.linspace(0, len(audio) - 1, max_windows).round().astype(int)
        audio, video, origins = [audio[i] for i in keep], [video[i] for i in keep], [origins[i] for i in keep]
    # [N, 1024, 128], [N, 3, 224, 224, 8]
    return CalibrationSet(np.stack(audio), np.stack(video), sources, origins)


def _clip_windows(path: Path, preprocess: PreprocessConfig, hop_s: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Windows wherever a face was found for long enough, as the live buffer would fill them."""
    from socialmae_rt.faces.detector import FaceDetector
    from socialmae_rt.faces.tracker import TrackerConfig
    from socialmae_rt.training.data.crops import FaceTrackCropper, largest_face_crops
    from socialmae_rt.training.data.decode import decode_clip
    from socialmae_rt.training.data.items import ClipItem
    from socialmae_rt.training.data.windows import (
        ClipSpan, cut_audio, pick_frames, spaced_ends, window_ends, window_start_ns)

    window = BufferConfig()
    with FaceDetector() as detector:
        cropper = FaceTrackCropper(detector, TrackerConfig(detect_every_n_frames=1))
        decoded, _ = decode_clip(ClipItem(clip_id=path.stem, video=path), cropper,
                                 frame_rate=1 / window.frame_spacing_s, sample_rate=preprocess.audio.sample_rate)
    crops = largest_face_crops(cropper)
    if decoded is None:
        raise CalibrationClipError(f"calibration clip {path} has no sound: a window needs audio and a face")
    if not np.abs(decoded.samples).max(initial=0.0) > SILENCE_PEAK:
        raise CalibrationClipError(f"calibration clip {path} is silent throughout: a window needs audio and a face")
    if not crops.times_s.size:
        raise CalibrationClipError(f"calibration clip {path} shows no face (MediaPipe found none): a window "
                                   "needs audio and a face")
    span = ClipSpan.of(crops.times_s, decoded.start_s, decoded.samples.size, decoded.sample_rate)
    windows = window_ends(span, window)
    if not windows.full:
        raise CalibrationClipError(f"calibration clip {path} has no {window.window_s:g} s stretch with a face and "
                                   "sound (shorter than one window, or the face is seen too briefly)")
    audio, video = [], []
    for end_ns in spaced_ends(windows, hop_s):
        start_ns = window_start_ns(windows, int(end_ns), window)
        picked = pick_frames(crops.frames, span.frame_times_ns, int(end_ns), window)
        if picked is None:  # no crop inside this window (a long stretch without a face)
            continue
        samples = cut_audio(decoded.samples, span, start_ns, int(end_ns), decoded.sample_rate)
        audio.append(audio_to_model_input(samples, decoded.sample_rate, preprocess.audio))  # [1024, 128]
        video.append(frames_to_model_input(picked.frames, preprocess.video, input_order="BGR"))  # [3, 224, 224, 8]
    if not audio:
        raise CalibrationClipError(f"calibration clip {path} gives no window: no {window.window_s:g} s with a face "
                                   "in view throughout")
    return audio, video

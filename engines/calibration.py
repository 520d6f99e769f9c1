"""Real windows for int8 calibration and accuracy checks, cut from clips as the live pipeline cuts them.

A clip is decoded by the training reader (the live file source, frames on the 2 fps grid), faces
found and cropped by the live detector and tracker (MediaPipe; the largest face at each time),
and windows ending on crop times `hop_s` apart are preprocessed exactly as live (fbank
[1024, 128], video [3, 224, 224, 8]).
Only windows with both streams are kept: each graph (audiovisual, audio, video) takes what it
needs from the same windows. Without clips, the bundled sample clip is written to a temporary
folder and used (a face and speech; `socialmae_rt.sample_media`).

Windows alternate between the calibration half and the held-out half, so the accuracy gate never
scores a window the quantizer saw.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from socialmae_rt.buffer import BufferConfig
from socialmae_rt.features import PreprocessConfig, audio_to_model_input, frames_to_model_input

from .onnx_export import sha256_file

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

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    def halves(self) -> tuple["CalibrationSet", "CalibrationSet"]:
        """(calibration, held out): even and odd windows."""
        if len(self) < 2:
            raise ValueError(f"need at least 2 windows to calibrate and hold some out, got {len(self)}")
        return (CalibrationSet(self.audio[0::2], self.video[0::2], self.sources),
                CalibrationSet(self.audio[1::2], self.video[1::2], self.sources))

    def identity(self) -> str:
        """What the set was made from, for cache keys."""
        return "; ".join(self.sources) + f"; {len(self)} windows"


def calibration_windows(
    clips: Sequence[str | Path] | None,
    preprocess: PreprocessConfig,
    *,
    hop_s: float = DEFAULT_HOP_S,
    max_windows: int = DEFAULT_MAX_WINDOWS,
) -> CalibrationSet:
    """Audiovisual windows from `clips` (None: the bundled sample clip), at most `max_windows`."""
    if clips:
        missing = [str(c) for c in clips if not Path(c).is_file()]
        if missing:
            raise FileNotFoundError(f"calibration clip(s) not found: {', '.join(missing)}")
        return _windows_of([Path(c) for c in clips], preprocess, hop_s, max_windows)
    from socialmae_rt.sample_media import build_sample_clip

    with tempfile.TemporaryDirectory(prefix="socialmae_rt_calibration_") as folder:
        path = Path(folder) / "sample.mp4"
        log.info("calibration: writing the bundled sample clip to %s", path)
        build_sample_clip(path)
        found = _windows_of([path], preprocess, hop_s, max_windows)
    found.sources = [source.replace("sample.mp4", SAMPLE_CLIP, 1) for source in found.sources]
    return found


def _windows_of(paths: list[Path], preprocess: PreprocessConfig, hop_s: float, max_windows: int) -> CalibrationSet:
    audio, video, sources = [], [], []
    for path in paths:
        clip_audio, clip_video = _clip_windows(path, preprocess, hop_s)
        audio += clip_audio
        video += clip_video
        sources.append(f"{path.name} {sha256_file(path)[:16]} {len(clip_audio)}")
    if not audio:
        raise ValueError(f"no audiovisual window in {', '.join(map(str, paths))}: calibration needs clips "
                         "of at least 4 s with a visible face and sound")
    if len(audio) > max_windows:  # evenly over everything found
        keep = np.linspace(0, len(audio) - 1, max_windows).round().astype(int)
        audio, video = [audio[i] for i in keep], [video[i] for i in keep]
    return CalibrationSet(np.stack(audio), np.stack(video), sources)  # [N, 1024, 128], [N, 3, 224, 224, 8]


def _clip_windows(path: Path, preprocess: PreprocessConfig, hop_s: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Windows wherever a face was found for long enough, as the live buffer would fill them."""
    from socialmae_rt.faces.detector import FaceDetector
    from socialmae_rt.faces.tracker import TrackerConfig
    from socialmae_rt.training.data.crops import FaceTrackCropper, largest_face_crops
    from socialmae_rt.training.data.decode import decode_clip
    from socialmae_rt.training.data.items import ClipItem
    from socialmae_rt.training.data.windows import ClipSpan, cut_audio, pick_frames, spaced_ends, window_ends, window_start_ns

    window = BufferConfig()
    with FaceDetector() as detector:
        cropper = FaceTrackCropper(detector, TrackerConfig(detect_every_n_frames=1))
        decoded, _ = decode_clip(ClipItem(clip_id=path.stem, video=path), cropper,
                                 frame_rate=1 / window.frame_spacing_s, sample_rate=preprocess.audio.sample_rate)
    crops = largest_face_crops(cropper)
    if decoded is None or not crops.times_s.size:
        log.warning("calibration: %s skipped (%s)", path, "no audio" if decoded is None else "no face found")
        return [], []
    span = ClipSpan.of(crops.times_s, decoded.start_s, decoded.samples.size, decoded.sample_rate)
    windows = window_ends(span, window)
    if not windows.full:
        log.warning("calibration: %s has no 4 s with a face; skipped", path)
        return [], []
    audio, video = [], []
    for end_ns in spaced_ends(windows, hop_s):
        start_ns = window_start_ns(windows, int(end_ns), window)
        picked = pick_frames(crops.frames, span.frame_times_ns, int(end_ns), window)
        if picked is None:  # no crop inside this window (a long stretch without a face)
            continue
        samples = cut_audio(decoded.samples, span, start_ns, int(end_ns), decoded.sample_rate)
        audio.append(audio_to_model_input(samples, decoded.sample_rate, preprocess.audio))  # [1024, 128]
        video.append(frames_to_model_input(picked.frames, preprocess.video, input_order="BGR"))  # [3, 224, 224, 8]
    return audio, video

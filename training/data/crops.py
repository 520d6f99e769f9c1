"""Frame sinks that turn a clip's grid frames into model-size crops, as the live pipeline cuts them.

- `FaceTrackCropper` ("face"): the live FaceTracker (MediaPipe detector, IoU tracks, the live
  square crop) runs on every grid frame; of the tracks found, the most persistent one (most
  crops; then the largest mean box; then the first seen) is the clip's face. Frames where that
  face was not detected have no crop, exactly as a live window would miss those slots.
- `FullFrameCropper` ("full"): the whole frame resized to the crop size with bicubic
  interpolation without antialiasing (the kernel of the reference's torchvision resize), as the
  reference fed CREMA-D frames; no face detection.

Crops are uint8 BGR [S, S, 3], like the live FaceCrop.bgr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from socialmae_rt.faces.detector import check_bgr_frame
from socialmae_rt.faces.tracker import DetectsFaces, FaceTracker, TrackerConfig
from socialmae_rt.messages import VideoFrame, seconds_to_ns
from socialmae_rt.training.data.decode import NO_FACE, ClipSkipped

CROP_MODES = ("face", "full")


@dataclass
class Crops:
    frames: np.ndarray  # uint8 [N, S, S, 3] BGR
    times_s: np.ndarray  # float64 [N], increasing
    info: dict[str, Any] = field(default_factory=dict)  # how they were made (track chosen, counts)


class FullFrameCropper:
    def __init__(self, size: int) -> None:
        self.size = size
        self._frames: list[np.ndarray] = []
        self._times: list[float] = []

    def __call__(self, bgr: np.ndarray, time_s: float) -> None:
        check_bgr_frame(bgr)
        self._frames.append(cv2.resize(bgr, (self.size, self.size), interpolation=cv2.INTER_CUBIC))
        self._times.append(time_s)

    def result(self) -> Crops:
        return Crops(_stack(self._frames, self.size), np.asarray(self._times, dtype=np.float64), {"crop": "full"})


class FaceTrackCropper:
    """Tracks faces over the grid frames; `result()` keeps the clip's main face (see module doc)."""

    def __init__(self, detector: DetectsFaces, tracker: TrackerConfig) -> None:
        self.size = tracker.crop_size
        self.tracker = FaceTracker(detector, tracker)
        self._frames_seen = 0
        self._tracks: dict[int, list[tuple[float, np.ndarray, float]]] = {}  # id -> [(time, crop, box area)]

    def __call__(self, bgr: np.ndarray, time_s: float) -> None:
        frame = VideoFrame(bgr=bgr, stamp_ns=seconds_to_ns(time_s), index=self._frames_seen)
        self._frames_seen += 1
        for crop in self.tracker.update(frame):
            area = max(0.0, crop.box.width) * max(0.0, crop.box.height)
            self._tracks.setdefault(crop.face_id, []).append((time_s, crop.bgr, area))

    def result(self) -> Crops:
        if not self._tracks:
            raise ClipSkipped(NO_FACE, f"no face found in {self._frames_seen} frame(s)")
        face_id = max(self._tracks, key=lambda i: (len(self._tracks[i]), np.mean([a for _, _, a in self._tracks[i]]), -i))
        chosen = self._tracks[face_id]
        info = {
            "crop": "face",
            "tracks": len(self._tracks),
            "frames_seen": self._frames_seen,
            "face_frames": len(chosen),
            "mean_box_area_px": float(np.mean([a for _, _, a in chosen])),
        }
        frames = _stack([crop for _, crop, _ in chosen], self.size)
        return Crops(frames, np.asarray([t for t, _, _ in chosen], dtype=np.float64), info)


def largest_face_crops(cropper: FaceTrackCropper) -> Crops:
    """The largest face's crop at every time any face was found, whatever its track.

    At 2 fps a face that moves or leaves and returns breaks into several tracks; calibration
    wants a face in every window, not one identity across the clip (`result()`)."""
    best: dict[float, tuple[np.ndarray, float]] = {}
    for track in cropper._tracks.values():
        for time_s, crop, area in track:
            if time_s not in best or area > best[time_s][1]:
                best[time_s] = (crop, area)
    times = sorted(best)
    return Crops(_stack([best[t][0] for t in times], cropper.size), np.asarray(times, dtype=np.float64),
                 {"crop": "face", "tracks": len(cropper._tracks)})


def _stack(frames: list[np.ndarray], size: int) -> np.ndarray:
    if not frames:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(frames)  # [N, S, S, 3]

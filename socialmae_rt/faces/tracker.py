"""IoU tracking of detected faces, so that each person keeps one id while in view.

Ids are ints counted up from 1 and never reused, not even after `reset()`, so per-face state
downstream can never be handed to a different person by mistake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from socialmae_rt.faces.crop import DEFAULT_CROP_SCALE, DEFAULT_CROP_SIZE, square_crop
from socialmae_rt.faces.detector import face_priority
from socialmae_rt.messages import FaceBox, FaceCrop, VideoFrame, seconds_to_ns


class DetectsFaces(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]: ...


@dataclass(frozen=True)
class TrackerConfig:
    detect_every_n_frames: int = 3  # 30 fps camera -> detection (and crops) at 10 Hz
    iou_threshold: float = 0.3  # a detection continues a track when their IoU is at least this
    # Drop a track unmatched for longer than this; keep it well above the detection period.
    max_lost_s: float = 1.0
    max_tracks: int = 4
    min_hits: int = 1  # matches a track needs before its crops are emitted
    crop_scale: float = DEFAULT_CROP_SCALE  # crop side = scale * longer box side
    crop_size: int = DEFAULT_CROP_SIZE

    def __post_init__(self) -> None:
        _require_int("detect_every_n_frames", self.detect_every_n_frames, minimum=1)
        _require_int("max_tracks", self.max_tracks, minimum=1)
        _require_int("min_hits", self.min_hits, minimum=1)
        _require_int("crop_size", self.crop_size, minimum=1)
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be within (0, 1] (0.3 is typical), got {self.iou_threshold}")
        if not (math.isfinite(self.max_lost_s) and self.max_lost_s > 0):
            raise ValueError(f"max_lost_s must be a positive number of seconds, got {self.max_lost_s}")
        if not (math.isfinite(self.crop_scale) and self.crop_scale > 0):
            raise ValueError(f"crop_scale must be positive (1.6 gives a head-and-shoulders view), got {self.crop_scale}")


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Track:
    """A snapshot of one tracked face."""

    face_id: int
    box: FaceBox  # box of the last matched detection
    last_seen_ns: int  # stamp of the frame it was last matched on
    hits: int  # detection frames it has been matched on, creation included


class FaceTracker:
    """Associates the detector's boxes over time and cuts a crop per tracked face.

    Detection runs on every `detect_every_n_frames`-th frame only. The Social-MAE windows need
    crops at 2 fps, and the pipeline takes the crop nearest each window frame; at 30 fps with n=3
    the detector runs at 10 Hz, so the nearest crop is always within +-50 ms, while the per-frame
    detection cost drops to a third. Between detection frames `update` returns [] and does not
    touch the detector.

    Association is greedy by IoU: the pair with the highest IoU (at least `iou_threshold`) is
    matched first, then the next among the still-free tracks and detections. Unmatched
    detections start new tracks. A track not matched for longer than `max_lost_s` (judged by
    frame stamps, so a paused file or a slow machine does not expire faces) is dropped and its
    id reported by `drain_lost()`. Frame stamps must not go backwards; call `reset()` when a
    source restarts.
    """

    def __init__(self, detector: DetectsFaces, config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.config = config or TrackerConfig()
        self._max_lost_ns = seconds_to_ns(self.config.max_lost_s)
        self._tracks: dict[int, Track] = {}
        self._lost_ids: list[int] = []
        self._next_id = 1
        self._frames_seen = 0

    def close(self) -> None:
        """Release the detector (a MediaPipe graph and its threads), where it can be released."""
        close = getattr(self.detector, "close", None)
        if close is not None:
            close()

    def update(self, frame: VideoFrame) -> list[FaceCrop]:
        """Track faces in `frame`; crops for the tracks matched on this frame, [] between detections."""
        is_detection_frame = self._frames_seen % self.config.detect_every_n_frames == 0
        self._frames_seen += 1
        self._expire_tracks(frame.stamp_ns)
        if not is_detection_frame:
            return []
        detections = self.detector.detect(frame.bgr)
        matched_ids, new_ids = self._associate(detections, frame.stamp_ns)
        return self._crops(frame, matched_ids + new_ids)

    def active_tracks(self) -> list[Track]:
        """Live tracks, oldest id first (includes tracks not yet at `min_hits`)."""
        return [self._tracks[face_id] for face_id in sorted(self._tracks)]

    def drain_lost(self) -> list[int]:
        """Ids dropped since the last call, in the order they were dropped."""
        lost, self._lost_ids = self._lost_ids, []
        return lost

    def reset(self) -> None:
        """Forget all tracks (reported by the next `drain_lost`); ids keep counting up."""
        self._lost_ids.extend(sorted(self._tracks))
        self._tracks.clear()
        self._frames_seen = 0  # so the next frame is a detection frame

    def _expire_tracks(self, stamp_ns: int) -> None:
        expired = [
            face_id
            for face_id, track in sorted(self._tracks.items())
            if stamp_ns - track.last_seen_ns > self._max_lost_ns
        ]
        self._drop(expired)

    def _associate(self, detections: list[FaceBox], stamp_ns: int) -> tuple[list[int], list[int]]:
        """Update matched tracks, admit new ones within `max_tracks`; returns (matched ids, new ids)."""
        pairs = _greedy_iou_pairs(self._tracks, detections, self.config.iou_threshold)
        for face_id, detection_index in pairs.items():
            track = self._tracks[face_id]
            self._tracks[face_id] = replace(
                track, box=detections[detection_index], last_seen_ns=stamp_ns, hits=track.hits + 1
            )
        matched_ids = sorted(pairs)
        used = set(pairs.values())
        unmatched = [box for index, box in enumerate(detections) if index not in used]
        new_ids = self._admit_new_tracks(unmatched, matched_ids, stamp_ns)
        return matched_ids, new_ids

    def _admit_new_tracks(self, unmatched: list[FaceBox], matched_ids: list[int], stamp_ns: int) -> list[int]:
        """Start tracks for unmatched detections while keeping at most `max_tracks`.

        Faces seen on this frame outrank tracks coasting unseen, so an unseen track gives its
        place to a new face. A newcomer does not displace a face that is tracked and seen: when
        more faces are in view than `max_tracks`, that keeps ids (and per-face windows) stable
        instead of churning whenever two similar boxes swap which is larger. Among newcomers the
        largest, then most confident, are admitted first.
        """
        seen = set(matched_ids)
        coasting_ids = [face_id for face_id in self._tracks if face_id not in seen]
        room = self.config.max_tracks - len(matched_ids)
        newcomers = sorted(unmatched, key=face_priority, reverse=True)[: max(0, room)]
        displaced = len(coasting_ids) + len(newcomers) - max(0, room)
        if displaced > 0:
            self._drop(self._least_recently_seen(coasting_ids)[:displaced])
        return [self._start_track(box, stamp_ns) for box in newcomers]

    def _least_recently_seen(self, face_ids: list[int]) -> list[int]:
        return sorted(face_ids, key=lambda face_id: (self._tracks[face_id].last_seen_ns, face_id))

    def _start_track(self, box: FaceBox, stamp_ns: int) -> int:
        face_id = self._next_id
        self._next_id += 1
        self._tracks[face_id] = Track(face_id=face_id, box=box, last_seen_ns=stamp_ns, hits=1)
        return face_id

    def _drop(self, face_ids: list[int]) -> None:
        for face_id in face_ids:
            del self._tracks[face_id]
            self._lost_ids.append(face_id)

    def _crops(self, frame: VideoFrame, face_ids: list[int]) -> list[FaceCrop]:
        crops = []
        for face_id in sorted(face_ids):
            track = self._tracks[face_id]
            if track.hits < self.config.min_hits:
                continue
            pixels = square_crop(frame.bgr, track.box, self.config.crop_scale, self.config.crop_size)
            crops.append(FaceCrop(face_id=face_id, bgr=pixels, box=track.box, stamp_ns=frame.stamp_ns))
        return crops


def _greedy_iou_pairs(tracks: dict[int, Track], detections: list[FaceBox], threshold: float) -> dict[int, int]:
    """Track id -> detection index, matching the highest-IoU pairs first."""
    candidates = []
    for face_id, track in tracks.items():
        for index, detection in enumerate(detections):
            overlap = track.box.iou(detection)
            if overlap >= threshold:
                candidates.append((-overlap, face_id, index))  # ties: older track, earlier detection
    candidates.sort()
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for _, face_id, index in candidates:
        if face_id not in pairs and index not in taken:
            pairs[face_id] = index
            taken.add(index)
    return pairs

"""Tracking of detected faces, so that each person keeps one id while in view and across short
absences.

Ids are ints counted up from 1 and never handed to another face, not even after `reset()`, so
per-face state downstream can never go to a different person by mistake. The same face may get
its own id back after an absence (re-identification by appearance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from socialmae_rt.faces.appearance import appearance_signature, blend, similarity
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
    # Beyond box overlap: a detection whose centre lies within `max_jump` box sides of where the
    # track was heading, of a similar size, that looks alike (appearance similarity at least
    # `match_similarity`) continues the track: fast motion moves a face further than its own
    # width between two detections (the sample clip: 140 px at 10 Hz for a 115 px face).
    max_jump: float = 2.0
    match_similarity: float = 0.6
    # A face that looks like one seen up to `reid_s` ago (similarity at least `reid_similarity`),
    # wherever it reappears, gets that id back; 0 turns re-identification off.
    reid_s: float = 5.0
    reid_similarity: float = 0.8
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
        if not (math.isfinite(self.reid_s) and self.reid_s >= 0):
            raise ValueError(f"reid_s must be >= 0 seconds (0: no re-identification), got {self.reid_s}")
        if not (math.isfinite(self.max_jump) and self.max_jump >= 0):
            raise ValueError(f"max_jump must be >= 0 box sides (0: overlap only), got {self.max_jump}")
        for name in ("match_similarity", "reid_similarity"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [-1, 1] (a cosine), got {getattr(self, name)}")
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
    signature: np.ndarray | None = field(default=None, compare=False, repr=False)  # faces/appearance.py
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre, pixels per second

    def predicted_box(self, stamp_ns: int) -> FaceBox:
        """Where the box would be at `stamp_ns` moving as it last moved (at most 0.5 s ahead)."""
        dt = min(max(0, stamp_ns - self.last_seen_ns), MAX_PREDICT_NS) / 1e9
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        return replace(self.box, x0=self.box.x0 + dx, x1=self.box.x1 + dx, y0=self.box.y0 + dy, y1=self.box.y1 + dy)


MAX_PREDICT_NS = 500_000_000
MAX_SIZE_RATIO = 2.0  # a detection this much larger or smaller than a track is another face


class FaceTracker:
    """Associates the detector's boxes over time and cuts a crop per tracked face.

    Detection runs on every `detect_every_n_frames`-th frame only. The Social-MAE windows need
    crops at 2 fps, and the pipeline takes the crop nearest each window frame; at 30 fps with n=3
    the detector runs at 10 Hz, so the nearest crop is always within +-50 ms, while the per-frame
    detection cost drops to a third. Between detection frames `update` returns [] and does not
    touch the detector.

    Association, greedy in three tiers: (1) overlap: the pair with the highest IoU between a
    detection and where the track was heading (its last box moved by its velocity; at least
    `iou_threshold`) is matched first, then the next among the still-free tracks and detections;
    (2) fast motion: a detection near where the track was heading (`max_jump`), of a similar
    size, that looks alike (`match_similarity`); (3) re-identification: a detection that looks
    like a face not matched now (unseen, or dropped up to `reid_s` ago; `reid_similarity`),
    wherever it is, gets that id back. Other detections start new tracks. A track not matched for
    longer than `max_lost_s` (judged by frame stamps, so a paused file or a slow machine does not
    expire faces) is dropped and its id reported by `drain_lost()`. Frame stamps must not go
    backwards; call `reset()` when a source restarts.
    """

    def __init__(self, detector: DetectsFaces, config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.config = config or TrackerConfig()
        self._max_lost_ns = seconds_to_ns(self.config.max_lost_s)
        self._tracks: dict[int, Track] = {}
        self._gone: dict[int, Track] = {}  # dropped tracks that may still be re-identified
        self._lost_ids: list[int] = []
        self._gone_ids: list[int] = []  # dropped and past re-identification: never coming back
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
        matched_ids, new_ids = self._associate(frame, detections)
        return self._crops(frame, matched_ids + new_ids)

    def active_tracks(self) -> list[Track]:
        """Live tracks, oldest id first (includes tracks not yet at `min_hits`)."""
        return [self._tracks[face_id] for face_id in sorted(self._tracks)]

    def drain_lost(self) -> list[int]:
        """Ids dropped since the last call, in the order they were dropped (re-identification may
        still give one of them back within `reid_s`)."""
        lost, self._lost_ids = self._lost_ids, []
        return lost

    def drain_gone(self) -> list[int]:
        """Ids that can no longer come back (dropped, and past re-identification), since the last call."""
        gone, self._gone_ids = self._gone_ids, []
        return gone

    def reset(self) -> None:
        """Forget all tracks (reported by the next `drain_lost`); ids keep counting up."""
        self._lost_ids.extend(sorted(self._tracks))
        self._gone_ids.extend(sorted({*self._tracks, *self._gone}))
        self._tracks.clear()
        self._gone.clear()  # a restarted source: nobody is re-identified across it
        self._frames_seen = 0  # so the next frame is a detection frame

    def _expire_tracks(self, stamp_ns: int) -> None:
        expired = [
            face_id
            for face_id, track in sorted(self._tracks.items())
            if stamp_ns - track.last_seen_ns > self._max_lost_ns
        ]
        self._drop(expired)
        reid_ns = seconds_to_ns(self.config.reid_s)
        for face_id in [i for i, track in self._gone.items() if stamp_ns - track.last_seen_ns > reid_ns]:
            del self._gone[face_id]
            self._gone_ids.append(face_id)

    def _associate(self, frame: VideoFrame, detections: list[FaceBox]) -> tuple[list[int], list[int]]:
        """Update matched tracks, admit new ones within `max_tracks`; returns (matched ids, new ids)."""
        stamp_ns, config = frame.stamp_ns, self.config
        signatures = [appearance_signature(frame.bgr, box) for box in detections]
        pairs = _greedy_pairs(_overlap_candidates(self._tracks, detections, stamp_ns, config.iou_threshold))
        pairs.update(_greedy_pairs(_motion_candidates(
            {i: t for i, t in self._tracks.items() if i not in pairs}, detections, signatures, stamp_ns, config,
            taken=set(pairs.values()))))
        for face_id, index in pairs.items():
            self._tracks[face_id] = _matched(self._tracks[face_id], detections[index], signatures[index], stamp_ns)
        revived = self._reidentify(detections, signatures, stamp_ns, taken=set(pairs.values()), matched=set(pairs))
        matched_ids = sorted([*pairs, *revived])
        used = set(pairs.values()) | set(revived.values())
        unmatched = [(box, signatures[index]) for index, box in enumerate(detections) if index not in used]
        new_ids = self._admit_new_tracks(unmatched, matched_ids, stamp_ns)
        return matched_ids, new_ids

    def _reidentify(self, detections: list[FaceBox], signatures: list, stamp_ns: int, taken: set[int],
                    matched: set[int]) -> dict[int, int]:
        """Free detections that look like a face unseen now (live but unmatched, or dropped up to
        `reid_s` ago) take that face's id; -> id -> detection index."""
        if self.config.reid_s <= 0:
            return {}
        absent = {i: t for i, t in self._tracks.items() if i not in matched}
        absent.update(self._gone)
        candidates = []
        for face_id, track in absent.items():
            for index, box in enumerate(detections):
                if index in taken or not _similar_size(track.box, box):
                    continue
                alike = similarity(track.signature, signatures[index])
                if alike >= self.config.reid_similarity:
                    candidates.append((-alike, face_id, index))
        revived = _greedy_pairs(candidates)
        for face_id, index in revived.items():
            track = self._tracks.get(face_id) or self._gone.pop(face_id)
            self._tracks[face_id] = replace(_matched(track, detections[index], signatures[index], stamp_ns),
                                            velocity=(0.0, 0.0))
        return revived

    def _admit_new_tracks(self, unmatched: list[tuple[FaceBox, np.ndarray | None]], matched_ids: list[int],
                          stamp_ns: int) -> list[int]:
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
        newcomers = sorted(unmatched, key=lambda item: face_priority(item[0]), reverse=True)[: max(0, room)]
        displaced = len(coasting_ids) + len(newcomers) - max(0, room)
        if displaced > 0:
            self._drop(self._least_recently_seen(coasting_ids)[:displaced])
        return [self._start_track(box, signature, stamp_ns) for box, signature in newcomers]

    def _least_recently_seen(self, face_ids: list[int]) -> list[int]:
        return sorted(face_ids, key=lambda face_id: (self._tracks[face_id].last_seen_ns, face_id))

    def _start_track(self, box: FaceBox, signature: np.ndarray | None, stamp_ns: int) -> int:
        face_id = self._next_id
        self._next_id += 1
        self._tracks[face_id] = Track(face_id=face_id, box=box, last_seen_ns=stamp_ns, hits=1, signature=signature)
        return face_id

    def _drop(self, face_ids: list[int]) -> None:
        for face_id in face_ids:
            self._gone[face_id] = self._tracks.pop(face_id)
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


def _matched(track: Track, box: FaceBox, signature: np.ndarray | None, stamp_ns: int) -> Track:
    """The track after a detection matched it: box, stamp, hits, appearance and velocity updated."""
    dt = (stamp_ns - track.last_seen_ns) / 1e9
    velocity = track.velocity
    if 0 < dt <= 1.0:
        (x_old, y_old), (x_new, y_new) = _centre(track.box), _centre(box)
        measured = ((x_new - x_old) / dt, (y_new - y_old) / dt)
        velocity = measured if track.hits == 1 else tuple(0.5 * a + 0.5 * b for a, b in zip(velocity, measured))
    return replace(track, box=box, last_seen_ns=stamp_ns, hits=track.hits + 1, velocity=velocity,
                   signature=blend(track.signature, signature, keep=0.8))


def _centre(box: FaceBox) -> tuple[float, float]:
    return (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2


def _similar_size(a: FaceBox, b: FaceBox) -> bool:
    side_a, side_b = max(a.width, a.height), max(b.width, b.height)
    return side_a > 0 and side_b > 0 and max(side_a, side_b) / min(side_a, side_b) <= MAX_SIZE_RATIO


def _overlap_candidates(tracks: dict[int, Track], detections: list[FaceBox], stamp_ns: int | None,
                        threshold: float) -> list[tuple[float, int, int]]:
    """(-IoU, id, index) for every pair overlapping at least `threshold`: the detection against the
    track's last box and against where it was heading (`stamp_ns`; None: last box only)."""
    candidates = []
    for face_id, track in tracks.items():
        heading = track.predicted_box(stamp_ns) if stamp_ns is not None else track.box
        for index, detection in enumerate(detections):
            overlap = max(track.box.iou(detection), heading.iou(detection))
            if overlap >= threshold:
                candidates.append((-overlap, face_id, index))  # ties: older track, earlier detection
    return candidates


def _motion_candidates(tracks: dict[int, Track], detections: list[FaceBox], signatures: list, stamp_ns: int,
                       config: TrackerConfig, taken: set[int]) -> list[tuple[float, int, int]]:
    """(-similarity, id, index) for free detections near where a track was heading, alike in size and look."""
    candidates = []
    for face_id, track in tracks.items():
        heading = track.predicted_box(stamp_ns)
        reach = config.max_jump * max(track.box.width, track.box.height)
        (hx, hy) = _centre(heading)
        for index, detection in enumerate(detections):
            if index in taken or not _similar_size(track.box, detection):
                continue
            (dx, dy) = _centre(detection)
            if math.hypot(dx - hx, dy - hy) > reach:
                continue
            alike = similarity(track.signature, signatures[index])
            if alike >= config.match_similarity:
                candidates.append((-alike, face_id, index))
    return candidates


def _greedy_pairs(candidates: list[tuple[float, int, int]]) -> dict[int, int]:
    """Track id -> detection index from (cost, id, index) candidates, lowest cost first."""
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for _, face_id, index in sorted(candidates):
        if face_id not in pairs and index not in taken:
            pairs[face_id] = index
            taken.add(index)
    return pairs

"""Faces found by a detector upstream of us (a ROS4HRI face detector, `faces:=hri`), grouped into
moments the pipeline ingests in place of camera frames.

Such a detector sends, per frame, the list of faces it tracks (string ids, one stamp) and per face
an image (its crop) with the same stamp, on separate topics, so they arrive in any order. A
moment is complete when every listed face that has been sending images has its image; it waits
at most `wait_ns` for a missing one, then goes without it (counted). A newly listed face holds
no moment up until its first image comes (its image topic is still being discovered); one whose
image never comes within `wait_ns` of being listed is counted once. Moments leave in stamp
order; one older than a moment already sent is dropped (counted as late).

The detector's ids map to our integer face ids (`FaceIds`), stable while it tracks the face; a
face it stops listing is gone (its windows and personality estimate end), and should the same id
come back it is a new face to us.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

import numpy as np

from socialmae_rt.faces.crop import DEFAULT_CROP_SIZE, square_crop
from socialmae_rt.messages import DetectedFaces, FaceBox, FaceCrop

# A ROS name token (REP-155 ids become topic names): a letter, then letters, digits, underscores.
ROS_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
NAMES_KEPT = 1000  # ids of faces gone that are still named (a late event for one), oldest forgotten first


def is_valid_face_name(name: str) -> bool:
    return bool(ROS_NAME_TOKEN.match(name))


def own_face_name(face_id: int | None) -> str:
    """Our own detector's REP-155 id for a face ("face3": a ROS name token may not start with a digit)."""
    return "" if face_id is None else f"face{face_id}"


class FaceIds:
    """An upstream detector's string ids <-> our integer face ids."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # tracked now: name -> face id
        self._names: dict[int, str] = {}  # tracked now: face id -> name
        self._released: collections.OrderedDict[int, str] = collections.OrderedDict()  # gone, newest last
        self._next = 1

    def id_of(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name], self._names[self._next] = self._next, name
            self._next += 1
        return self._ids[name]

    def tracks(self, name: str) -> bool:
        return name in self._ids

    def release(self, name: str) -> int | None:
        """The detector stopped tracking `name`: its face id is over (the name stays known a while)."""
        face_id = self._ids.pop(name, None)
        if face_id is not None:
            self._released[face_id] = self._names.pop(face_id)
            while len(self._released) > NAMES_KEPT:
                self._released.popitem(last=False)
        return face_id

    def name(self, face_id: int | None) -> str:
        """The REP-155 id to publish a face under: the detector's, or ours when it never named it."""
        if face_id is None:
            return ""
        return self._names.get(face_id) or self._released.get(face_id) or own_face_name(face_id)


@dataclass
class _Moment:
    stamp_ns: int
    first_heard_ns: int  # monotonic
    names: list[str] | None = None  # None: the tracked list for this stamp has not come (yet)
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def complete(self, delivering: set[str]) -> bool:
        return self.names is not None and all(name in self.images for name in self.names if name in delivering)


@dataclass
class UpstreamCounts:
    moments: int = 0
    missing_images: int = 0  # a tracked face whose image did not come within wait_ns (or never came)
    late: int = 0  # messages older than a moment already sent


class MomentAssembler:
    """Tracked lists and per-face images in, DetectedFaces out (in stamp order)."""

    def __init__(self, ids: FaceIds, wait_ns: int, crop_size: int = DEFAULT_CROP_SIZE) -> None:
        self.ids = ids
        self.wait_ns = wait_ns
        self.crop_size = crop_size
        self.counts = UpstreamCounts()
        self._pending: dict[int, _Moment] = {}
        self._sent_ns: int | None = None  # stamp of the last moment sent
        self._tracked: list[str] = []  # the names of the last moment sent
        self._delivering: set[str] = set()  # tracked faces that have sent an image
        self._listed_ns: dict[str, int] = {}  # tracked faces not sending yet -> when first listed (monotonic)
        # (name, stamp of the moment that went without its image, or None: none ever came); the caller drains it
        self.missing: list[tuple[str, int | None]] = []

    def tracked(self, stamp_ns: int, names: list[str], now_ns: int) -> list[DetectedFaces]:
        """The detector's tracked list at `stamp_ns` (names already checked valid)."""
        moment = self._moment(stamp_ns, now_ns)
        if moment is None:
            return []
        moment.names = list(dict.fromkeys(names))
        for name in moment.names:
            if name not in self._delivering:
                self._listed_ns.setdefault(name, now_ns)
        return self._ready(now_ns)

    def image(self, name: str, stamp_ns: int, bgr: np.ndarray, now_ns: int) -> list[DetectedFaces]:
        """One face's image at `stamp_ns`: any size or aspect, made square (black borders) and sized
        for the model."""
        self._delivering.add(name)  # it sends (even if this one is late): wait for its images from now on
        self._listed_ns.pop(name, None)
        moment = self._moment(stamp_ns, now_ns)
        if moment is None:
            return []
        height, width = bgr.shape[:2]
        moment.images[name] = square_crop(bgr, FaceBox(0.0, 0.0, float(width), float(height)), 1.0, self.crop_size)
        return self._ready(now_ns)

    def due(self, now_ns: int) -> list[DetectedFaces]:
        """Moments that waited long enough go, complete or not; faces listed for `wait_ns` without a
        single image are counted (once each)."""
        for name, listed_ns in list(self._listed_ns.items()):
            if now_ns - listed_ns >= self.wait_ns:
                del self._listed_ns[name]
                self.counts.missing_images += 1
                self.missing.append((name, None))
        return self._ready(now_ns)

    def forget_all(self) -> list[DetectedFaces]:
        """The detector went quiet: every face it tracked is gone (one moment just after the last)."""
        if not self._tracked and not self._pending:
            return []
        self._pending.clear()
        gone_ids = [face_id for face_id in (self.ids.release(name) for name in self._tracked) if face_id is not None]
        self._tracked, self._delivering, self._listed_ns = [], set(), {}
        self._sent_ns = (self._sent_ns or 0) + 1
        return [DetectedFaces(self._sent_ns, [], [], gone_ids, lost=gone_ids)]

    def _moment(self, stamp_ns: int, now_ns: int) -> _Moment | None:
        if self._sent_ns is not None and stamp_ns <= self._sent_ns:
            self.counts.late += 1
            return None
        return self._pending.setdefault(stamp_ns, _Moment(stamp_ns, now_ns))

    def _ready(self, now_ns: int) -> list[DetectedFaces]:
        # The newest moment that may go (complete, or waited out); every older one goes with it.
        ready = [stamp for stamp, moment in self._pending.items()
                 if moment.complete(self._delivering) or now_ns - moment.first_heard_ns >= self.wait_ns]
        if not ready:
            return []
        until = max(ready)
        out = []
        for stamp in sorted(s for s in self._pending if s <= until):
            out.append(self._send(self._pending.pop(stamp)))
        return out

    def _send(self, moment: _Moment) -> DetectedFaces:
        if moment.names is not None:
            names = moment.names
        else:  # images whose tracked list never came: the faces tracked before, and any new one seen
            names = self._tracked + [name for name in moment.images if name not in self._tracked]
        gone = [name for name in self._tracked if name not in names]
        for name in gone:
            self._delivering.discard(name)
            self._listed_ns.pop(name, None)
        gone_ids = [face_id for face_id in (self.ids.release(name) for name in gone) if face_id is not None]
        tracked_ids = [self.ids.id_of(name) for name in names]
        crops = []
        for name, face_id in zip(names, tracked_ids):
            if name in moment.images:
                crops.append(FaceCrop(face_id, moment.images[name],
                                      FaceBox(0.0, 0.0, float(self.crop_size), float(self.crop_size)), moment.stamp_ns))
            elif name in self._delivering:  # it sends images, but this one did not come in time
                self.counts.missing_images += 1
                self.missing.append((name, moment.stamp_ns))
        self._tracked = list(names)
        self._sent_ns = moment.stamp_ns
        self.counts.moments += 1
        return DetectedFaces(moment.stamp_ns, crops, tracked_ids, gone_ids, lost=gone_ids,
                             names={face_id: name for name, face_id in zip(names, tracked_ids)})

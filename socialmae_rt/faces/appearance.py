"""A small appearance signature of a face box, so that a face keeps its id across fast motion
and short absences: colour (hue x saturation histogram) and layout (a grey thumbnail).

Both parts are unit vectors; the similarity of two signatures is the mean of their two cosines,
1 for the same pixels, near 0 for unrelated ones. It costs about 0.1 ms per face (a 32x32 resize
and a 2D histogram) and needs nothing but OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

from socialmae_rt.messages import FaceBox

THUMB_SIDE = 16
HUE_BINS, SATURATION_BINS = 12, 8
INNER = 0.8  # the central part of the box: less background and hair, which change with pose
_HIST_SIZE = HUE_BINS * SATURATION_BINS


def appearance_signature(frame_bgr: np.ndarray, box: FaceBox) -> np.ndarray | None:
    """float32 [HUE_BINS*SATURATION_BINS + THUMB_SIDE**2]: the two unit parts, or None when the box
    holds too few pixels to say anything (under 8x8 inside the frame)."""
    height, width = frame_bgr.shape[:2]
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    half_w, half_h = box.width * INNER / 2, box.height * INNER / 2
    x0, x1 = int(max(0, cx - half_w)), int(min(width, cx + half_w))
    y0, y1 = int(max(0, cy - half_h)), int(min(height, cy + half_h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    patch = cv2.resize(frame_bgr[y0:y1, x0:x1], (32, 32), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256]).ravel()
    grey = cv2.resize(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY), (THUMB_SIDE, THUMB_SIDE),
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey -= grey.mean()  # brightness-independent layout
    return np.concatenate([_unit(hist.astype(np.float32)), _unit(grey)])


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Mean of the colour and layout cosines, in [-1, 1]; 0 when either side is unknown."""
    if a is None or b is None:
        return 0.0
    colour = float(a[:_HIST_SIZE] @ b[:_HIST_SIZE])
    layout = float(a[_HIST_SIZE:] @ b[_HIST_SIZE:])
    return (colour + layout) / 2


def blend(old: np.ndarray | None, new: np.ndarray | None, keep: float) -> np.ndarray | None:
    """A running signature: `keep` of the old, the rest of the new, each part made unit again."""
    if old is None or new is None:
        return new if old is None else old
    mixed = keep * old + (1 - keep) * new
    return np.concatenate([_unit(mixed[:_HIST_SIZE]), _unit(mixed[_HIST_SIZE:])])


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector

"""Square, face-centred crops at the model's input size.

The released Social-MAE checkpoint was trained on CREMA-D, whose frames are head-centred with some
shoulder and background around the face. A tight detector box is a closer crop than that, so the
crop side is `scale` times the box's longer side (1.6 by default) to give a similar head-and-
shoulders view.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from socialmae_rt.faces.detector import check_bgr_frame
from socialmae_rt.messages import FaceBox

DEFAULT_CROP_SCALE = 1.6
DEFAULT_CROP_SIZE = 224  # Social-MAE's per-face input side
MIN_CROP_SIDE_PX = 2  # a degenerate box still yields a (tiny) crop rather than an empty array


def square_crop(
    frame_bgr: np.ndarray,
    box: FaceBox,
    scale: float = DEFAULT_CROP_SCALE,
    size: int = DEFAULT_CROP_SIZE,
) -> np.ndarray:
    """Cut a square centred on `box` with side `scale * max(width, height)`, resized to `size`.

    Parts of the square outside the frame come out black. Boxes partly or wholly outside the
    frame, and tiny or inverted boxes, are fine. Returns uint8 [size, size, 3].
    """
    check_bgr_frame(frame_bgr)
    _check_crop_args(box, scale, size)
    x0, y0, side = _square_around(box, scale)
    return _resample_square(frame_bgr, x0, y0, side, size)


def _check_crop_args(box: FaceBox, scale: float, size: int) -> None:
    coordinates = (box.x0, box.y0, box.x1, box.y1)
    if not all(math.isfinite(value) for value in coordinates):
        raise ValueError(f"square_crop got a box with non-finite coordinates {coordinates}; check the detector output")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"crop scale must be a positive number (1.6 gives a head-and-shoulders view), got {scale}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"crop size must be a positive int (the model takes 224), got {size!r}")


def _square_around(box: FaceBox, scale: float) -> tuple[int, int, int]:
    """Top-left corner and side of the square crop region, in whole frame pixels."""
    longer_side = max(abs(box.width), abs(box.height))
    side = max(MIN_CROP_SIDE_PX, int(round(scale * longer_side)))
    centre_x = (box.x0 + box.x1) / 2.0
    centre_y = (box.y0 + box.y1) / 2.0
    return int(round(centre_x - side / 2.0)), int(round(centre_y - side / 2.0)), side


def _resample_square(frame_bgr: np.ndarray, x0: int, y0: int, side: int, size: int) -> np.ndarray:
    """Resize the in-frame part of the square and place it on a black output canvas.

    Resizing only the in-frame part (instead of padding the whole square first) keeps the cost
    bounded by the frame size even for a huge box that mostly leaves the frame. When the square
    lies inside the frame this is exactly a plain resize of the region.
    """
    out = np.zeros((size, size, 3), dtype=np.uint8)
    frame_h, frame_w = frame_bgr.shape[:2]
    inside_x0, inside_x1 = max(0, x0), min(frame_w, x0 + side)
    inside_y0, inside_y1 = max(0, y0), min(frame_h, y0 + side)
    if inside_x0 >= inside_x1 or inside_y0 >= inside_y1:
        return out  # the square misses the frame entirely: all padding

    factor = size / side
    out_x0, out_x1 = _output_span(inside_x0 - x0, inside_x1 - x0, factor, size)
    out_y0, out_y1 = _output_span(inside_y0 - y0, inside_y1 - y0, factor, size)
    inside = frame_bgr[inside_y0:inside_y1, inside_x0:inside_x1]
    # Bicubic without antialiasing in both directions: the reference resized frames with
    # torchvision's bicubic (antialias off), and OpenCV's INTER_CUBIC is the same kernel
    # (a = -0.75, half-pixel centres). The released weights never saw area-averaged images.
    interpolation = cv2.INTER_CUBIC
    out[out_y0:out_y1, out_x0:out_x1] = cv2.resize(
        inside, (out_x1 - out_x0, out_y1 - out_y0), interpolation=interpolation
    )
    return out


def _output_span(start: int, stop: int, factor: float, size: int) -> tuple[int, int]:
    """Where [start, stop) of the square lands in the output; at least one pixel wide."""
    out_start = min(size - 1, int(round(start * factor)))
    out_stop = max(out_start + 1, min(size, int(round(stop * factor))))
    return out_start, out_stop

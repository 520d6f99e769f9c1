"""Face detection with MediaPipe's BlazeFace models, which ship inside the mediapipe wheel.

mediapipe 0.10.21's legacy `solutions.face_detection` loads its .tflite graphs from the installed
package (mediapipe/modules/face_detection/), so nothing is downloaded at run time.

Default model: full range (model_selection=1). A robot or laptop camera sees people from about
0.5 m to 3 m. The short-range model (0) is meant for faces within ~2 m, and at 640x480 it already
missed faces under ~65 px tall (about 1.5 m from a typical 60-70 degree webcam) that the full-range
model found down to ~45 px (about 2 m). The short-range model also fired on uniform noise frames
(14 of 40 seeds at score >= 0.5), the full-range one on none. The full-range model takes about
3 ms per 640x480 frame on 2 CPU cores against about 1.2 ms for the short-range one; at the
tracker's 10 Hz detection rate that is about 3% of one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from socialmae_rt.messages import FaceBox
from socialmae_rt.util.native_logs import native_stderr_muted

SHORT_RANGE_MODEL = 0  # faces within ~2 m of the camera
FULL_RANGE_MODEL = 1  # faces within ~5 m

_INSTALL_HINT = "pip install mediapipe==0.10.21 (the last release that bundles its face-detection model)"


@dataclass(frozen=True)
class FaceDetectorConfig:
    model_selection: int = FULL_RANGE_MODEL
    min_confidence: float = 0.5  # detections scoring below this are discarded by MediaPipe
    max_faces: int = 4  # keep this many faces per frame, largest first

    def __post_init__(self) -> None:
        # MediaPipe silently treats any value other than 1 as short range; catch typos here.
        if self.model_selection not in (SHORT_RANGE_MODEL, FULL_RANGE_MODEL) or isinstance(self.model_selection, bool):
            raise ValueError(
                f"model_selection must be 0 (short range, faces within ~2 m) or 1 (full range, within ~5 m), "
                f"got {self.model_selection!r}"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within [0, 1] (0.5 is a good start), got {self.min_confidence}")
        if isinstance(self.max_faces, bool) or not isinstance(self.max_faces, int) or self.max_faces < 1:
            raise ValueError(f"max_faces must be an int >= 1, got {self.max_faces!r}")


def face_priority(box: FaceBox) -> tuple[float, float]:
    """Sort key for which faces matter most: larger first (closer to the robot), then more confident."""
    return (max(0.0, box.width) * max(0.0, box.height), box.score)


class FaceDetector:
    """Finds faces in BGR frames; returns pixel boxes clipped to the frame, largest first.

    One instance holds one MediaPipe graph, which is not thread-safe: call `detect` from one
    thread at a time. Call `close()` (or use it as a context manager) to free the graph.
    """

    def __init__(self, config: FaceDetectorConfig | None = None) -> None:
        self.config = config or FaceDetectorConfig()
        face_detection = _import_face_detection()
        with native_stderr_muted():  # the graph's start-up notices; a first run prints the rest
            self._solution = face_detection.FaceDetection(
                model_selection=self.config.model_selection,
                min_detection_confidence=self.config.min_confidence,
            )
            self._solution.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        check_bgr_frame(frame_bgr)
        if self._solution is None:
            raise RuntimeError("FaceDetector.detect called after close(); create a new FaceDetector")
        # MediaPipe expects RGB; cvtColor also gives it the contiguous buffer it needs.
        frame_rgb = cv2.cvtColor(np.ascontiguousarray(frame_bgr), cv2.COLOR_BGR2RGB)
        result = self._solution.process(frame_rgb)
        height, width = frame_bgr.shape[:2]
        boxes = [_to_pixel_box(detection, width, height) for detection in (result.detections or [])]
        boxes = [box for box in boxes if box.width > 0 and box.height > 0]
        boxes.sort(key=face_priority, reverse=True)
        return boxes[: self.config.max_faces]

    def close(self) -> None:
        if self._solution is not None:
            self._solution.close()
            self._solution = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_bgr_frame(frame: object) -> None:
    """Raise ValueError unless `frame` is a non-empty uint8 array of shape [H, W, 3]."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected a uint8 BGR frame of shape [H, W, 3], got {type(frame).__name__}")
    is_bgr = frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    if not is_bgr or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(
            f"expected a uint8 BGR frame of shape [H, W, 3] with H, W > 0, "
            f"got {frame.dtype} array of shape {list(frame.shape)}"
        )


def _import_face_detection():
    # mediapipe pulls in protobuf, the tflite runtime and more: import it only when a detector
    # is actually built, so importing socialmae_rt stays fast.
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(f"FaceDetector needs mediapipe: {_INSTALL_HINT}") from error
    return mediapipe.solutions.face_detection


def _to_pixel_box(detection, frame_width: int, frame_height: int) -> FaceBox:
    """MediaPipe's relative box (may extend past the frame) as a pixel FaceBox clipped to the frame."""
    relative = detection.location_data.relative_bounding_box
    x0 = _clip(relative.xmin * frame_width, frame_width)
    y0 = _clip(relative.ymin * frame_height, frame_height)
    x1 = _clip((relative.xmin + relative.width) * frame_width, frame_width)
    y1 = _clip((relative.ymin + relative.height) * frame_height, frame_height)
    return FaceBox(x0, y0, x1, y1, score=float(detection.score[0]))


def _clip(value: float, upper: int) -> float:
    return float(min(max(value, 0.0), float(upper)))

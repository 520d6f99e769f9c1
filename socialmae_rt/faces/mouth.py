"""How far a face's mouth is open, from MediaPipe's face mesh on the face crop.

The opening is the gap between the inner lips (landmarks 13 and 14) over the mouth width (corners
61 and 291), so it does not depend on the crop size or the distance to the camera: about 0.01
closed, 0.1-0.2 wide open. The face mesh model ships inside the mediapipe wheel (nothing is
downloaded); it runs on the 224x224 crop the tracker already cut, ~6 ms per crop on a 2-core
EPYC, only on detection frames (a third of the frames by default).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from socialmae_rt.util.native_logs import native_stderr_muted

UPPER_INNER_LIP, LOWER_INNER_LIP, LEFT_CORNER, RIGHT_CORNER = 13, 14, 61, 291


class MouthMeter:
    def __init__(self) -> None:
        import mediapipe as mp

        with native_stderr_muted():  # the graph's start-up notices (see native_logs)
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                         refine_landmarks=False, min_detection_confidence=0.3)
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._landmarks_seen = False  # the first face found prints one more notice (landmark projection)

    def opening(self, crop_bgr: np.ndarray) -> float | None:
        """Inner-lip gap / mouth width for the face in the crop; None when no face mesh fits."""
        if self._mesh is None:
            raise RuntimeError("MouthMeter is closed")
        height, width = crop_bgr.shape[:2]
        rgb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
        if self._landmarks_seen:
            found = self._mesh.process(rgb).multi_face_landmarks
        else:
            with native_stderr_muted():
                found = self._mesh.process(rgb).multi_face_landmarks
            self._landmarks_seen = bool(found)
        if not found:
            return None
        points = found[0].landmark

        def distance(a: int, b: int) -> float:
            return math.hypot((points[a].x - points[b].x) * width, (points[a].y - points[b].y) * height)

        mouth_width = distance(LEFT_CORNER, RIGHT_CORNER)
        if mouth_width <= 1.0:
            return None
        return distance(UPPER_INNER_LIP, LOWER_INNER_LIP) / mouth_width

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "MouthMeter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

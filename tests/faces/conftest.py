"""Shared fixtures for the face tests: a real face photo, scenes built from it, one real detector.

The photo is matplotlib's bundled sample image of Grace Hopper (matplotlib is a runtime
dependency, so it is always installed; nothing is downloaded). Scenes paste scaled copies of
her head onto a plain canvas, so every test knows where each face is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from socialmae_rt.faces import FaceDetector
from socialmae_rt.messages import FaceBox

PHOTO_NAME = "grace_hopper.jpg"  # 512 x 600 portrait
# Hand-labelled face (brow to chin, ear to ear) in the photo; the cap is not part of it.
PHOTO_FACE = FaceBox(175, 140, 360, 335)
# Head-and-shoulders region pasted into scenes: the face plus cap and some background.
HEAD_REGION = (110, 30, 420, 400)  # x0, y0, x1, y1 in the photo
CANVAS_GREY = 110


@pytest.fixture(scope="session")
def face_photo() -> np.ndarray:
    path = cbook.get_sample_data(PHOTO_NAME, asfileobj=False)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"could not read matplotlib's sample image {path}"
    return image


@pytest.fixture(scope="session")
def photo_face() -> FaceBox:
    return PHOTO_FACE


@pytest.fixture(scope="session")
def detector():
    with FaceDetector() as shared:
        yield shared


@dataclass(frozen=True)
class Placement:
    """Where to paste a head: top-left corner and pasted height in canvas pixels."""

    left: int
    top: int
    height: int
    other_person: bool = False  # a second look: colours swapped (red <-> blue) and lit differently


def as_other_person(head: np.ndarray) -> np.ndarray:
    """The same head made to look like someone else to an appearance signature (colour and
    light), still a face to the detector."""
    swapped = head[:, :, ::-1].astype(np.float32)
    ramp = np.linspace(0.6, 1.2, head.shape[1], dtype=np.float32)[None, :, None]  # light from one side
    return np.clip(swapped * ramp, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_scene(face_photo):
    """make_scene([Placement, ...], canvas_hw=(480, 640)) -> (frame_bgr, [expected face box per placement])."""
    x0, y0, x1, y1 = HEAD_REGION
    head = face_photo[y0:y1, x0:x1]

    def paste(canvas: np.ndarray, placement: Placement) -> FaceBox:
        factor = placement.height / head.shape[0]
        width = int(round(head.shape[1] * factor))
        scaled = cv2.resize(head, (width, placement.height), interpolation=cv2.INTER_AREA)
        if placement.other_person:
            scaled = as_other_person(scaled)
        canvas[placement.top : placement.top + placement.height, placement.left : placement.left + width] = scaled
        return FaceBox(
            placement.left + (PHOTO_FACE.x0 - x0) * factor,
            placement.top + (PHOTO_FACE.y0 - y0) * factor,
            placement.left + (PHOTO_FACE.x1 - x0) * factor,
            placement.top + (PHOTO_FACE.y1 - y0) * factor,
        )

    def make(placements: list[Placement], canvas_hw: tuple[int, int] = (480, 640)) -> tuple[np.ndarray, list[FaceBox]]:
        canvas = np.full((*canvas_hw, 3), CANVAS_GREY, dtype=np.uint8)
        return canvas, [paste(canvas, placement) for placement in placements]

    return make


@pytest.fixture(scope="session")
def placement():
    return Placement


class CountingDetector:
    """The real detector, plus a record of which calls reached it."""

    def __init__(self, inner: FaceDetector) -> None:
        self.inner = inner
        self.calls = 0

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        self.calls += 1
        return self.inner.detect(frame_bgr)


@pytest.fixture
def counting_detector(detector) -> CountingDetector:
    return CountingDetector(detector)

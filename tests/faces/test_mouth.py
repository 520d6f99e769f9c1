"""MouthMeter: MediaPipe's face mesh on a face crop -> inner-lip gap / mouth width."""

import cv2
import numpy as np
import pytest

from socialmae_rt.faces.mouth import MouthMeter
from socialmae_rt.media.conversation import MOUTHS, heads


@pytest.fixture(scope="module")
def meter():
    with MouthMeter() as shared:
        yield shared


def with_mouth_open(head: np.ndarray, person: str, opening: float) -> np.ndarray:
    """The photo with a dark opening between the lips, `opening` x lip width tall (0: as it is)."""
    image = head.copy()
    (cx, cy), width = MOUTHS[person]
    if opening > 0:
        cv2.ellipse(image, (int(cx), int(cy + opening * width * 0.3)), (int(width * 0.42), int(opening * width * 0.5)),
                    0, 0, 360, (25, 20, 35), -1)
    return cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("person", ["A", "B"])
def test_opening_grows_with_the_mouth(meter, person):
    head = heads()[person]
    measured = [meter.opening(with_mouth_open(head, person, opening)) for opening in (0.0, 0.2, 0.4, 0.6)]
    assert all(value is not None for value in measured)
    assert measured == sorted(measured) and measured[-1] - measured[0] > 0.12
    if person == "B":  # Grace Hopper's lips are closed in the photograph (the astronaut smiles, lips apart)
        assert measured[0] < 0.05


def test_no_face_no_measurement_and_a_closed_meter_says_so(meter):
    assert meter.opening(np.full((224, 224, 3), 110, np.uint8)) is None
    closed = MouthMeter()
    closed.close()
    with pytest.raises(RuntimeError, match="MouthMeter is closed"):
        closed.opening(np.zeros((224, 224, 3), np.uint8))

"""FaceDetector on a real photo with the real, bundled MediaPipe model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialmae_rt.faces import FaceDetector, FaceDetectorConfig


def test_bundled_model_ships_inside_mediapipe():
    # Guards the "no download at run time" promise: both graphs' models come in the wheel.
    import mediapipe

    models = Path(mediapipe.__file__).parent / "modules" / "face_detection"
    assert (models / "face_detection_short_range.tflite").is_file()
    assert (models / "face_detection_full_range_sparse.tflite").is_file()


def test_default_is_full_range_model():
    assert FaceDetectorConfig().model_selection == 1


def test_finds_the_face_in_the_photo(detector, face_photo, photo_face):
    boxes = detector.detect(face_photo)
    assert len(boxes) == 1
    assert boxes[0].iou(photo_face) > 0.6
    assert 0.5 <= boxes[0].score <= 1.0


@pytest.mark.parametrize("model_selection", [0, 1])
def test_both_models_find_a_near_face(face_photo, photo_face, model_selection):
    with FaceDetector(FaceDetectorConfig(model_selection=model_selection)) as own:
        boxes = own.detect(face_photo)
    assert len(boxes) == 1 and boxes[0].iou(photo_face) > 0.6


def test_default_model_finds_a_small_face(detector, make_scene, placement):
    # A ~58 px face in 640x480 (about 1.5 m from a webcam); the short-range model misses it.
    frame, expected = make_scene([placement(300, 200, 110)])
    boxes = detector.detect(frame)
    assert len(boxes) == 1 and boxes[0].iou(expected[0]) > 0.5


def test_no_face_on_blank_frame(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []


def test_no_face_on_noise(detector):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_finds_two_faces_side_by_side(detector, make_scene, placement):
    frame, expected = make_scene([placement(20, 80, 300), placement(340, 80, 300)])
    boxes = detector.detect(frame)
    assert len(boxes) == 2
    for face in expected:
        assert max(box.iou(face) for box in boxes) > 0.5


def test_max_faces_keeps_the_largest(face_photo, make_scene, placement):
    frame, expected = make_scene([placement(20, 150, 200), placement(300, 40, 360)])
    with FaceDetector(FaceDetectorConfig(max_faces=1)) as one_face:
        boxes = one_face.detect(frame)
    assert len(boxes) == 1
    assert boxes[0].iou(expected[1]) > 0.5


def test_boxes_are_clipped_to_the_frame(detector, face_photo):
    # Cut the photo through the face: MediaPipe's box then extends past the left edge.
    cut = np.ascontiguousarray(face_photo[:, 250:])
    boxes = detector.detect(cut)
    assert boxes, "half a face should still be detected"
    height, width = cut.shape[:2]
    for box in boxes:
        assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height


def test_accepts_a_non_contiguous_view(detector, face_photo, photo_face):
    padded = np.zeros((700, 700, 3), np.uint8)
    padded[50:650, 100:612] = face_photo
    view = padded[50:650, 100:612]
    boxes = detector.detect(view)
    assert len(boxes) == 1 and boxes[0].iou(photo_face) > 0.6


@pytest.mark.parametrize(
    "frame, received",
    [
        (np.zeros((48, 64, 3), np.float32), "float32"),
        (np.zeros((48, 64), np.uint8), "[48, 64]"),
        (np.zeros((48, 64, 4), np.uint8), "[48, 64, 4]"),
        (np.zeros((0, 64, 3), np.uint8), "[0, 64, 3]"),
        ([[0, 0, 0]], "list"),
    ],
)
def test_rejects_frames_that_are_not_uint8_hxwx3(detector, frame, received):
    with pytest.raises(ValueError, match=r"uint8 BGR frame of shape \[H, W, 3\]") as error:
        detector.detect(frame)
    assert received in str(error.value)


def test_detect_after_close_says_so():
    closing = FaceDetector()
    closing.close()
    closing.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="after close"):
        closing.detect(np.zeros((48, 64, 3), np.uint8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_selection": 2}, "model_selection"),
        ({"model_selection": True}, "model_selection"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"max_faces": 0}, "max_faces"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceDetectorConfig(**kwargs)

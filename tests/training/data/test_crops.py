"""Croppers: which track is the clip's face, and what a clip without faces gives."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.faces import TrackerConfig
from socialmae_rt.messages import FaceBox
from socialmae_rt.training.data.crops import FaceTrackCropper, FullFrameCropper
from socialmae_rt.training.data.decode import ClipSkipped

SMALL = FaceBox(10, 10, 40, 40, score=0.9)  # seen on every frame
LARGE = FaceBox(80, 20, 150, 100, score=0.9)  # larger, but seen on some frames only


class ScriptedDetector:
    """Returns the boxes listed for each call in turn (the tracker calls detect once per frame)."""

    def __init__(self, script):
        self.script = list(script)

    def detect(self, frame_bgr):
        return self.script.pop(0)


def run(script) -> FaceTrackCropper:
    cropper = FaceTrackCropper(ScriptedDetector(script), TrackerConfig(detect_every_n_frames=1, max_lost_s=10.0))
    for index in range(len(script)):
        frame = np.full((120, 160, 3), index, np.uint8)
        cropper(frame, index * 0.5)
    return cropper


def test_the_most_persistent_face_wins_over_a_larger_one():
    crops = run([[LARGE, SMALL] if i % 3 == 0 else [SMALL] for i in range(6)]).result()
    assert crops.info["tracks"] == 2 and crops.info["face_frames"] == 6
    assert crops.times_s.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert crops.frames.shape == (6, 224, 224, 3)


def test_equally_persistent_faces_go_to_the_larger():
    crops = run([[SMALL, LARGE]] * 4).result()
    assert crops.info["mean_box_area_px"] == pytest.approx(LARGE.width * LARGE.height)


def test_only_frames_with_the_face_have_crops():
    crops = run([[SMALL], [], [SMALL], [SMALL]]).result()
    assert crops.times_s.tolist() == [0.0, 1.0, 1.5]  # a missed detection leaves a gap, as live


def test_no_face_is_a_skip_reason():
    with pytest.raises(ClipSkipped) as skipped:
        run([[], [], []]).result()
    assert skipped.value.reason == "no_face" and "3 frame(s)" in skipped.value.detail


def test_full_frame_crops():
    cropper = FullFrameCropper(224)
    cropper(np.zeros((120, 160, 3), np.uint8), 0.0)
    crops = cropper.result()
    assert crops.frames.shape == (1, 224, 224, 3) and crops.info == {"crop": "full"}
    assert FullFrameCropper(224).result().frames.shape == (0, 224, 224, 3)

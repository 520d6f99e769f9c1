"""FaceTracker over scenes built from a real photo, with the real MediaPipe detector."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.faces import FaceTracker, TrackerConfig
from socialmae_rt.faces.tracker import Track, _greedy_pairs, _overlap_candidates
from socialmae_rt.messages import FaceBox, VideoFrame, seconds_to_ns

TEN_HZ_NS = seconds_to_ns(0.1)
THIRTY_FPS_NS = seconds_to_ns(1 / 30)


def frame_at(bgr: np.ndarray, index: int, period_ns: int = TEN_HZ_NS) -> VideoFrame:
    return VideoFrame(bgr=bgr, stamp_ns=1_000_000_000 + index * period_ns, index=index)


def blank_frame() -> np.ndarray:
    return np.full((480, 640, 3), 110, np.uint8)


def every_frame(**overrides) -> TrackerConfig:
    """Detection on every frame: with 10 Hz stamps each frame stands for one detection frame."""
    return TrackerConfig(detect_every_n_frames=1, **overrides)


def test_face_moving_smoothly_keeps_one_id(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame())
    for index in range(20):
        frame, expected = make_scene([placement(20 + 20 * index, 120, 200)])
        crops = tracker.update(frame_at(frame, index))
        assert [crop.face_id for crop in crops] == [1], f"frame {index}"
        assert crops[0].box.iou(expected[0]) > 0.5
    assert [track.face_id for track in tracker.active_tracks()] == [1]
    assert tracker.active_tracks()[0].hits == 20
    assert tracker.drain_lost() == []


def test_two_faces_keep_distinct_ids_while_swapping_vertical_order(detector, make_scene, placement):
    # Left face moves down, right face moves up: their vertical order swaps, they never overlap.
    tracker = FaceTracker(detector, every_frame())
    ids_by_side: dict[str, int] = {}
    for index in range(20):
        frame, (left, right) = make_scene([placement(40, 40 + 12 * index, 160), placement(380, 268 - 12 * index, 160)])
        crops = tracker.update(frame_at(frame, index))
        assert len(crops) == 2, f"frame {index}"
        for crop in crops:
            side = "left" if crop.box.iou(left) > crop.box.iou(right) else "right"
            assert ids_by_side.setdefault(side, crop.face_id) == crop.face_id, f"{side} face changed id at frame {index}"
    assert sorted(ids_by_side.values()) == [1, 2]
    assert tracker.drain_lost() == []


def test_long_disappearance_drops_the_track_and_only_the_same_face_gets_its_id_back(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(max_lost_s=0.5, reid_s=2.0))
    frame, _ = make_scene([placement(200, 100, 220)])
    elsewhere, _ = make_scene([placement(400, 200, 200)])  # the same person, back at another place
    stranger, _ = make_scene([placement(200, 100, 220, other_person=True)])
    for index in range(5):
        assert [crop.face_id for crop in tracker.update(frame_at(frame, index))] == [1]
    for index in range(5, 9):  # last seen at frame 4: gone 0.4 s by frame 8, still within max_lost_s
        assert tracker.update(frame_at(blank_frame(), index)) == []
    assert tracker.drain_lost() == []
    assert [track.face_id for track in tracker.active_tracks()] == [1]
    for index in range(9, 12):  # 0.5 s, then longer
        tracker.update(frame_at(blank_frame(), index))
    assert tracker.drain_lost() == [1]
    assert tracker.drain_gone() == []  # dropped, but she may still be re-identified
    assert tracker.active_tracks() == []
    assert [crop.face_id for crop in tracker.update(frame_at(stranger, 12))] == [2]  # someone else: a new id
    for index in range(13, 19):  # 0.6 s: the stranger is dropped too
        tracker.update(frame_at(blank_frame(), index))
    assert tracker.drain_lost() == [2]
    # 1.4 s after she was last seen (within reid_s), somewhere else: her own id again
    assert [crop.face_id for crop in tracker.update(frame_at(elsewhere, 19))] == [1]
    for index in range(20, 50):  # past reid_s: forgotten
        tracker.update(frame_at(blank_frame(), index))
    assert tracker.drain_gone() == [2, 1]  # the stranger first (seen last at frame 12), then her
    assert [crop.face_id for crop in tracker.update(frame_at(frame, 50))] == [3]


def test_a_face_moving_further_than_its_width_between_detections_keeps_its_id(detector, make_scene, placement):
    """The sample clip's face crosses the frame at ~140 px per detection with a 115 px face: no
    box overlap from one detection to the next, so overlap alone gave it a new id every time."""
    tracker = FaceTracker(detector, every_frame())
    ids = []
    for index in range(6):
        frame, (box,) = make_scene([placement(20 + 95 * index, 150, 150)])
        crops = tracker.update(frame_at(frame, index))
        assert len(crops) == 1, f"frame {index}"
        ids.append(crops[0].face_id)
    assert ids == [1] * 6
    assert tracker.drain_lost() == []


def test_without_appearance_checks_fast_motion_makes_new_ids(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(max_jump=0.0, reid_s=0.0))
    ids = []
    for index in range(3):
        frame, _ = make_scene([placement(20 + 200 * index, 150, 150)])
        ids += [crop.face_id for crop in tracker.update(frame_at(frame, index))]
    assert ids == [1, 2, 3]


def test_a_stranger_near_a_tracked_face_is_not_taken_for_it(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame())
    frame, _ = make_scene([placement(20, 100, 220)])
    assert [crop.face_id for crop in tracker.update(frame_at(frame, 0))] == [1]
    stranger, _ = make_scene([placement(230, 100, 220, other_person=True)])  # no overlap, close, other look
    assert len(detector.detect(stranger)) == 1
    assert [crop.face_id for crop in tracker.update(frame_at(stranger, 1))] == [2]


def test_short_disappearance_keeps_the_id(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(max_lost_s=0.5))
    frame, _ = make_scene([placement(200, 100, 220)])
    for index in range(3):
        tracker.update(frame_at(frame, index))
    for index in range(3, 6):
        assert tracker.update(frame_at(blank_frame(), index)) == []
    crops = tracker.update(frame_at(frame, 6))
    assert [crop.face_id for crop in crops] == [1]
    assert tracker.active_tracks()[0].hits == 4
    assert tracker.drain_lost() == []


def test_detects_on_every_third_frame_only(counting_detector, make_scene, placement):
    tracker = FaceTracker(counting_detector, TrackerConfig(detect_every_n_frames=3))
    frame, _ = make_scene([placement(200, 100, 220)])
    detected_on, crops_on = [], []
    for index in range(9):
        calls_before = counting_detector.calls
        crops = tracker.update(frame_at(frame, index, THIRTY_FPS_NS))
        if counting_detector.calls > calls_before:
            detected_on.append(index)
        if crops:
            crops_on.append(index)
    assert detected_on == [0, 3, 6]
    assert crops_on == [0, 3, 6]
    assert counting_detector.calls == 3


def test_crops_carry_id_stamp_box_and_model_size(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame())
    frame, expected = make_scene([placement(200, 100, 220)])
    video_frame = frame_at(frame, 0)
    (crop,) = tracker.update(video_frame)
    assert crop.stamp_ns == video_frame.stamp_ns
    assert crop.bgr.shape == (224, 224, 3) and crop.bgr.dtype == np.uint8
    assert crop.box == tracker.active_tracks()[0].box
    assert crop.box.iou(expected[0]) > 0.5


def test_max_tracks_keeps_the_largest_faces(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(max_tracks=2))
    frame, (large, medium, small) = make_scene(
        [placement(10, 60, 260), placement(250, 100, 200), placement(440, 150, 140)]
    )
    assert len(detector.detect(frame)) == 3, "the scene must show three detectable faces"
    for index in range(4):
        crops = tracker.update(frame_at(frame, index))
        assert [crop.face_id for crop in crops] == [1, 2]
    tracked = tracker.active_tracks()
    assert len(tracked) == 2
    assert all(max(track.box.iou(large), track.box.iou(medium)) > 0.5 for track in tracked)
    assert tracker.drain_lost() == []


def test_when_full_a_new_face_replaces_a_face_no_longer_seen(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(max_tracks=1))
    first, _ = make_scene([placement(20, 100, 220)])
    second, _ = make_scene([placement(400, 100, 220, other_person=True)])
    assert [crop.face_id for crop in tracker.update(frame_at(first, 0))] == [1]
    assert [crop.face_id for crop in tracker.update(frame_at(second, 1))] == [2]
    assert tracker.drain_lost() == [1]


def test_min_hits_holds_back_crops_until_confirmed(detector, make_scene, placement):
    tracker = FaceTracker(detector, every_frame(min_hits=2))
    frame, _ = make_scene([placement(200, 100, 220)])
    assert tracker.update(frame_at(frame, 0)) == []
    assert [track.face_id for track in tracker.active_tracks()] == [1]
    assert [crop.face_id for crop in tracker.update(frame_at(frame, 1))] == [1]


def test_reset_forgets_tracks_but_never_reuses_ids(counting_detector, make_scene, placement):
    tracker = FaceTracker(counting_detector, TrackerConfig(detect_every_n_frames=3))
    frame, _ = make_scene([placement(200, 100, 220)])
    assert [crop.face_id for crop in tracker.update(frame_at(frame, 0))] == [1]
    tracker.update(frame_at(frame, 1))
    tracker.reset()
    assert tracker.active_tracks() == []
    assert tracker.drain_lost() == [1]
    # The first frame after a reset is a detection frame, and the face gets a fresh id.
    assert [crop.face_id for crop in tracker.update(frame_at(frame, 2))] == [2]


def test_greedy_association_matches_the_highest_iou_first():
    # Detection 0 overlaps track 1 (IoU 0.54) but track 2 much better (0.82); detection 1 fits
    # only track 1 (0.33). Taking tracks in id order would give detection 0 to track 1 and leave
    # track 2 unmatched; highest IoU first gives every track a partner.
    tracks = {
        1: Track(face_id=1, box=FaceBox(0, 0, 100, 100), last_seen_ns=0, hits=1),
        2: Track(face_id=2, box=FaceBox(40, 0, 140, 100), last_seen_ns=0, hits=1),
    }
    detections = [FaceBox(30, 0, 130, 100), FaceBox(-50, 0, 50, 100)]
    assert _greedy_pairs(_overlap_candidates(tracks, detections, None, threshold=0.3)) == {2: 0, 1: 1}
    assert _greedy_pairs(_overlap_candidates(tracks, detections, None, threshold=0.95)) == {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"detect_every_n_frames": 0}, "detect_every_n_frames"),
        ({"detect_every_n_frames": 1.5}, "detect_every_n_frames"),
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"iou_threshold": 1.2}, "iou_threshold"),
        ({"max_lost_s": 0.0}, "max_lost_s"),
        ({"max_tracks": 0}, "max_tracks"),
        ({"min_hits": 0}, "min_hits"),
        ({"crop_scale": -1.0}, "crop_scale"),
        ({"crop_size": 0}, "crop_size"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


def test_the_sample_clip_shows_one_person_under_one_id(detector, tmp_path):
    """The bundled sample clip: one face that crosses the frame fast, leaves for 4 s (8-12 s) and
    re-enters from the other side. Overlap-only tracking gave it six ids."""
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
    from socialmae_rt.media.sample import build_sample_clip

    clip = build_sample_clip(tmp_path / "sample.mp4")
    tracker = FaceTracker(detector, TrackerConfig())
    seen: dict[int, list[float]] = {}
    source = MediaFileSource(MediaFileConfig(str(clip.path)))
    source.open()
    try:
        for item in source:
            if isinstance(item, VideoFrame):
                for crop in tracker.update(item):
                    seen.setdefault(crop.face_id, []).append(crop.stamp_ns / 1e9)
    finally:
        source.close()
    assert list(seen) == [1]
    assert min(seen[1]) < 1.0 and max(seen[1]) > 19.0  # the whole clip, both sides of the absence
    assert not [t for t in seen[1] if 9.0 < t < 12.0]  # nobody in view then

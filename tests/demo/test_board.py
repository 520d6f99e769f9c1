"""PerceptionBoard: what the overlay is told, from a real tracker (MediaPipe on the sample's photo)
and records as the pipeline would write them."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.demo.board import BOX_HOLD_S, PerceptionBoard, level_dbfs
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
from socialmae_rt.media.sample import build_sample_clip
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, VideoFrame
from socialmae_rt.results import Latency, SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind

MS = NS_PER_SECOND // 1000


@pytest.fixture(scope="module")
def face_frame(tmp_path_factory):
    import av

    clip = build_sample_clip(tmp_path_factory.mktemp("s") / "s.mp4", seconds=2.0, fps=10)
    with av.open(str(clip.path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def record(face_id, end_ms, modality="audiovisual"):
    return SocialPerception(face_id=face_id, window_start_ns=(end_ms - 4000) * MS, window_end_ns=end_ms * MS,
                            modality=modality, emotion={"happy": 1.0}, laughter_probability=0.9, laughing=True,
                            personality=None, window_fill=1.0, latency=Latency(1.0, 2.0, 3.0))


@pytest.fixture
def tracker():
    tracker = FaceTracker(FaceDetector(FaceDetectorConfig()), TrackerConfig(detect_every_n_frames=1))
    yield tracker
    tracker.close()


def test_a_box_is_drawn_only_while_its_face_was_seen_lately(face_frame, tracker):
    board = PerceptionBoard(tracker)
    empty = np.full_like(face_frame, 90)
    tracker.update(VideoFrame(face_frame, 0))
    board.on_frame(VideoFrame(face_frame, 0))
    (face,) = board.snapshot().faces
    assert face.face_id == 1 and face.box is not None and face.box.width > 50
    step_ms = 100
    for stamp_ms in range(step_ms, 600, step_ms):  # the face is gone; the tracker keeps it for 1 s
        frame = VideoFrame(empty, stamp_ms * MS)
        tracker.update(frame)
        board.on_frame(frame)
        boxed = [f.face_id for f in board.snapshot().faces]
        assert [t.face_id for t in tracker.active_tracks()] == [1]
        assert boxed == ([1] if stamp_ms <= BOX_HOLD_S * 1000 else []), stamp_ms


def test_the_audio_only_panel_shows_only_while_the_newest_window_is_audio_only():
    board = PerceptionBoard()
    board.write_result(record(None, 4000, "audio"))
    assert [f.face_id for f in board.snapshot().faces] == [None]
    board.write_result(record(None, 4500, "audio"))
    board.write_result(record(7, 5000))  # a face arrived (untracked here: no tracker, so not shown)
    assert board.snapshot().faces == ()
    assert board.snapshot().last_record.face_id == 7


def test_a_laughter_onset_flashes_for_its_time_on_the_capture_clock():
    board = PerceptionBoard(flash_s=1.0)
    board.on_audio(AudioChunk(np.zeros(1600, np.float32), 10_000 * MS))
    board.write_result(record(None, 10_000, "audio"))
    board.write_event(LaughterEvent(LaughterEventKind.ONSET, None, 9_500 * MS, 10_000 * MS, 0.9))
    assert board.snapshot(now_ns=10_500 * MS).faces[0].flash
    assert not board.snapshot(now_ns=11_200 * MS).faces[0].flash
    board.write_event(LaughterEvent(LaughterEventKind.OFFSET, None, 12_000 * MS, 12_000 * MS, 0.1))
    assert not board.snapshot(now_ns=11_200 * MS).faces[0].flash


def test_audio_goes_to_the_recorder_from_the_pending_seconds_on():
    board = PerceptionBoard()
    chunks = [AudioChunk(np.full(1600, 0.1 * i, np.float32), i * 100 * MS) for i in range(40)]  # 4 s
    for chunk in chunks[:30]:
        board.on_audio(chunk)
    received = []
    board.hand_audio_to(received.append)
    for chunk in chunks[30:]:
        board.on_audio(chunk)
    assert received[0].stamp_ns == 900 * MS and received[-1] is chunks[-1]  # the last 2 s, then everything
    assert [c.stamp_ns for c in received] == [c.stamp_ns for c in chunks[9:]]


def test_level_in_dbfs():
    assert level_dbfs(np.full(100, 0.5, np.float32)) == pytest.approx(-6.02, abs=0.01)
    assert level_dbfs(np.zeros(100, np.float32)) == -120.0


def test_the_board_keeps_the_timeline_of_what_it_was_told():
    board = PerceptionBoard()
    for end_ms in range(4_000, 9_000, 500):
        board.write_result(record(None, end_ms))
    board.write_event(LaughterEvent(LaughterEventKind.ONSET, None, 6_200 * MS, 6_500 * MS, 0.9))
    board.write_event(LaughterEvent(LaughterEventKind.OFFSET, None, 7_000 * MS, 7_000 * MS, 0.1))
    (lane,) = board.snapshot().timeline.lanes
    assert lane.face_id is None and [m.time_ns for m in lane.moments] == [t * MS for t in range(4_000, 9_000, 500)]
    assert all(m.top_emotion == "happy" and m.laughing for m in lane.moments)
    assert lane.onsets_ns == (6_200 * MS,)  # onsets only

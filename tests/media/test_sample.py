"""The sample clip: built for real (espeak-ng, scikit-image, PyAV) and read back with PyAV."""

from __future__ import annotations

import hashlib
import shutil

import av
import cv2
import numpy as np
import pytest

from socialmae_rt.media.sample import SampleClip, Segment, build_sample_clip, main, scaled_timeline

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/install_system_deps.sh installs it)"
)

SECONDS = 5.0  # the timeline scales: 0-2 face+speech, 2-3 no face+speech, 3-4 face+silence, 4-5 face+speech
FPS = 25


@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory) -> SampleClip:
    return build_sample_clip(tmp_path_factory.mktemp("sample") / "sample.mp4", seconds=SECONDS, fps=FPS)


@pytest.fixture(scope="module")
def decoded(sample_clip) -> dict:
    """Everything in the file, decoded by PyAV: frames (BGR), their times, audio at its own rate."""
    with av.open(str(sample_clip.path)) as container:
        info = {
            "video_codec": container.streams.video[0].codec_context.name,
            "audio_rate": container.streams.audio[0].codec_context.sample_rate,
            "duration_s": container.duration / av.time_base,
        }
        frames, times, audio = [], [], []
        for frame in container.decode(video=0, audio=0):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="bgr24"))
                times.append(float(frame.time))
            else:
                audio.append(frame.to_ndarray().reshape(-1))  # mono fltp [1, N] -> [N]
    return info | {"frames": frames, "times": np.array(times), "audio": np.concatenate(audio)}


def frame_at(decoded: dict, t_s: float) -> np.ndarray:
    return decoded["frames"][int(np.argmin(np.abs(decoded["times"] - t_s)))]


def rms(decoded: dict, start_s: float, end_s: float) -> float:
    rate = decoded["audio_rate"]
    part = decoded["audio"][int(start_s * rate) : int(end_s * rate)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))


def segment(clip: SampleClip, has_face: bool, has_audio: bool) -> Segment:
    return next(s for s in clip.segments if (s.has_face, s.has_audio) == (has_face, has_audio))


def test_timeline_scales_with_the_length():
    assert scaled_timeline(20.0) == (
        Segment(0.0, 8.0, True, True),
        Segment(8.0, 12.0, False, True),
        Segment(12.0, 16.0, True, False),
        Segment(16.0, 20.0, True, True),
    )
    assert [s.end_s for s in scaled_timeline(SECONDS)] == [2.0, 3.0, 4.0, 5.0]


def test_rejects_a_clip_too_short_for_its_timeline(tmp_path):
    with pytest.raises(ValueError, match="seconds"):
        build_sample_clip(tmp_path / "x.mp4", seconds=1.0)


def test_file_has_video_and_audio_of_the_expected_length(sample_clip, decoded):
    assert decoded["video_codec"] in ("h264", "mpeg4")
    assert decoded["audio_rate"] == sample_clip.sample_rate == 16000
    assert decoded["duration_s"] == pytest.approx(SECONDS, abs=0.1)
    assert len(decoded["frames"]) == sample_clip.num_frames == SECONDS * FPS
    assert decoded["frames"][0].shape == (480, 640, 3)
    assert decoded["audio"].size / 16000 == pytest.approx(SECONDS, abs=0.1)


def test_silent_stretch_is_silent_and_speech_stretches_are_not(sample_clip, decoded):
    margin = 0.1  # codec frames straddling the edges
    silent = segment(sample_clip, has_face=True, has_audio=False)
    assert rms(decoded, silent.start_s + margin, silent.end_s - margin) < 1e-3
    for speech in [s for s in sample_clip.segments if s.has_audio]:
        assert rms(decoded, speech.start_s + margin, speech.end_s - margin) > 0.03


def test_no_face_stretch_shows_only_the_background(sample_clip, decoded):
    empty = segment(sample_clip, has_face=False, has_audio=True)
    background = np.array(sample_clip.background_bgr, dtype=np.int16)
    for t_s in np.linspace(empty.start_s, empty.end_s - 1 / FPS, 5):
        difference = np.abs(frame_at(decoded, t_s).astype(np.int16) - background)
        assert difference.max() <= 6, f"something besides the background at {t_s:.2f} s"
    face_frame = frame_at(decoded, sample_clip.segments[0].midpoint_s).astype(np.int16)
    assert (np.abs(face_frame - background).max(axis=2) > 30).mean() > 0.2  # the photograph is there


def test_mediapipe_finds_the_face_only_where_the_timeline_says(sample_clip, decoded):
    import mediapipe as mp

    def faces_at(detector, t_s: float) -> int:
        rgb = cv2.cvtColor(frame_at(decoded, t_s), cv2.COLOR_BGR2RGB)
        return len(detector.process(rgb).detections or [])

    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        for stretch in sample_clip.segments:
            assert faces_at(detector, stretch.midpoint_s) == (1 if stretch.has_face else 0), stretch


def test_output_is_deterministic(tmp_path):
    digests = {
        hashlib.sha256(build_sample_clip(tmp_path / name, seconds=2.0).path.read_bytes()).hexdigest()
        for name in ("first.mp4", "second.mp4")
    }
    assert len(digests) == 1


def test_command_line_writes_the_clip_and_prints_the_timeline(tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    assert main([str(out), "--seconds", "2"]) == 0
    printed = capsys.readouterr().out
    assert out.stat().st_size > 0
    assert "no face + speech" in printed and "face    + silence" in printed

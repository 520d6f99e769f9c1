import numpy as np
import pytest

from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, FaceBox, FaceCrop, seconds_to_ns
from socialmae_rt.stream.buffer import AVRingBuffer, BufferConfig

RATE = 16000


def ramp_chunks(seconds: float, chunk: int = 512, start_ns: int = 0, first_sample: int = 0):
    """Chunks whose sample values equal their global sample index (so positions are checkable)."""
    total = int(seconds * RATE)
    for offset in range(0, total, chunk):
        n = min(chunk, total - offset)
        index = first_sample + offset
        samples = np.arange(index, index + n, dtype=np.float32)
        yield AudioChunk(samples, start_ns + offset * NS_PER_SECOND // RATE, RATE)


def crop(face_id: int, t: float, value: int = 0) -> FaceCrop:
    image = np.full((224, 224, 3), value, np.uint8)
    return FaceCrop(face_id, image, FaceBox(0, 0, 10, 10), seconds_to_ns(t))


def test_audio_window_is_the_last_four_seconds():
    buf = AVRingBuffer()
    for c in ramp_chunks(5.0):
        buf.add_audio(c)
    assert buf.audio_until_ns == 5 * NS_PER_SECOND
    window = buf.audio_window(seconds_to_ns(4.5))
    assert window.shape == (64000,) and window.dtype == np.float32
    np.testing.assert_array_equal(window, np.arange(8000, 72000, dtype=np.float32))


def test_a_window_that_starts_before_the_audio_stream_has_no_audio_and_says_why():
    buf = AVRingBuffer()
    for c in ramp_chunks(5.0, start_ns=seconds_to_ns(0.3)):  # the microphone began 0.3 s after the camera
        buf.add_audio(c)
    assert buf.audio_window(seconds_to_ns(4.0)) is None
    assert buf.audio_problem(seconds_to_ns(4.0)) == ("audio began 0.30 s into this window "
                                                     "(its stream started after the first data)")
    assert buf.audio_window(seconds_to_ns(4.5)) is not None and buf.audio_problem(seconds_to_ns(4.5)) is None


def test_nan_samples_count_as_missing_audio_only_in_the_windows_that_hold_them():
    buf = AVRingBuffer()
    for c in ramp_chunks(9.5):  # the ring keeps 6 s: [3.5, 9.5] at the end
        if 5 * RATE <= c.samples[0] < 5.1 * RATE:  # chunks starting in 5.0-5.1 s arrive as NaN
            c = AudioChunk(np.full_like(c.samples, np.nan), c.stamp_ns, c.sample_rate)
        buf.add_audio(c)
        if buf.audio_until_ns == seconds_to_ns(5.504):  # before anything older is forgotten
            assert buf.audio_window(seconds_to_ns(5.0)) is not None and buf.audio_problem(seconds_to_ns(5.0)) is None
    assert buf.audio.nonfinite == 1536  # the three chunks of 512 that start in 5.0-5.1 s
    for end in (8.0, 9.0):  # [end - 4, end] holds the stretch
        assert buf.audio_window(seconds_to_ns(end)) is None
        assert buf.audio_problem(seconds_to_ns(end)) == "audio held 1536 NaN/Inf samples (0.10 s) in this window"
    window = buf.audio_window(seconds_to_ns(9.25))  # past it: whole again, the true values
    np.testing.assert_array_equal(window, np.arange(84000, 148000, dtype=np.float32))


def test_audio_window_not_complete_or_forgotten_is_none():
    buf = AVRingBuffer(BufferConfig(history_s=5.0))
    assert buf.audio_window(seconds_to_ns(4)) is None  # nothing yet
    for c in ramp_chunks(3.0):
        buf.add_audio(c)
    assert buf.audio_window(seconds_to_ns(3.0)) is None  # less than 4 s held
    for c in ramp_chunks(9.0, start_ns=seconds_to_ns(3.0), first_sample=48000):
        buf.add_audio(c)
    assert buf.audio_window(seconds_to_ns(12.5)) is None  # beyond what arrived
    assert buf.audio_window(seconds_to_ns(10.9)) is None  # starts before the 5 s ring (7..12 s)
    assert buf.audio_window(seconds_to_ns(11.0)) is not None
    np.testing.assert_array_equal(buf.audio_window(seconds_to_ns(12.0))[:3], [128000, 128001, 128002])


def test_audio_memory_does_not_grow_with_input():
    buf = AVRingBuffer(BufferConfig(history_s=6.0))
    before = buf.audio._ring.nbytes
    for c in ramp_chunks(60.0, chunk=1600):
        buf.add_audio(c)
    assert buf.audio._ring.nbytes == before == 6 * RATE * 4
    assert buf.audio.written == 60 * RATE


def test_audio_gap_keeps_the_timeline_with_silence():
    buf = AVRingBuffer()
    chunks = list(ramp_chunks(5.0))
    for c in chunks[:50] + chunks[60:]:  # 10 chunks (0.32 s) lost
        buf.add_audio(c)
    assert buf.audio.gaps == 1
    window = buf.audio_window(seconds_to_ns(5.0))
    lost = slice(50 * 512 - 16000, 60 * 512 - 16000)
    assert not window[lost].any()
    np.testing.assert_array_equal(window[-100:], np.arange(79900, 80000, dtype=np.float32))


def test_audio_rejects_wrong_rate():
    with pytest.raises(ValueError, match="audio chunk at 48000 Hz; the buffer holds 16000 Hz"):
        AVRingBuffer().add_audio(AudioChunk(np.zeros(10, np.float32), 0, 48000))


def test_face_window_takes_crops_nearest_to_each_slot():
    buf = AVRingBuffer()
    for i in range(60):  # 10 Hz crops over 6 s, pixel value = crop index
        buf.add_crop(crop(1, i * 0.1, value=i))
    window = buf.face_window(1, seconds_to_ns(5.0))
    assert window.fill == 1.0
    # Slots 1.5, 2.0, ..., 5.0 s -> crops 15, 20, ..., 50 (crops 0..59 at 0.0..5.9 s).
    assert [int(f[0, 0, 0]) for f in window.frames] == [15, 20, 25, 30, 35, 40, 45, 50]


def test_short_track_reports_partial_fill():
    buf = AVRingBuffer()
    for i in range(15):  # a face seen from 3.8 s on: slot 3.5 s is 0.3 s away, too far
        buf.add_crop(crop(2, 3.8 + i * 0.1, value=i))
    window = buf.face_window(2, seconds_to_ns(5.0))
    assert window.fill == 3 / 8  # slots 4.0, 4.5, 5.0
    assert len(window.frames) == 3
    assert buf.face_windows(seconds_to_ns(5.0), min_fill=0.5) == []
    assert [w.face_id for w in buf.face_windows(seconds_to_ns(5.0), min_fill=0.25)] == [2]


def test_crops_after_the_window_end_are_not_used():
    buf = AVRingBuffer()
    for t in (4.1, 4.6, 5.1):  # nothing at 5.0 itself; 5.1 lies after the window
        buf.add_crop(crop(1, t, value=int(t * 10)))
    window = buf.face_window(1, seconds_to_ns(5.0))
    assert [int(f[0, 0, 0]) for f in window.frames] == [41, 46]


def test_faces_are_bounded_and_age_out():
    buf = AVRingBuffer(BufferConfig(max_faces=2, max_crops_per_face=10, history_s=4.0))
    for face in (1, 2, 3):
        buf.add_crop(crop(face, 0.0))
    assert buf.face_ids() == [1, 2] and buf.dropped_faces == 1
    for i in range(100):
        buf.add_crop(crop(1, 0.1 * i))
    assert buf.held_crops() == 10  # face 1 capped; face 2 aged out (older than 4 s)
    assert buf.face_ids() == [1]
    buf.drop_face(1)
    assert buf.face_ids() == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"history_s": 3.0}, r"history_s \(3.0\) must be at least window_s \(4.0\)"),
        ({"frame_tolerance_s": 0.6}, r"frame_tolerance_s must be in \(0, 0.5\]"),
        ({"max_faces": 0}, r"max_faces must be > 0"),
    ],
)
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        BufferConfig(**fields)

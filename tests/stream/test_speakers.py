"""Who speaks: mouth opening against audio loudness over a window (synthetic series with a known answer)."""

import numpy as np
import pytest

from socialmae_rt.messages import seconds_to_ns
from socialmae_rt.stream.speakers import SpeakerAttribution, SpeakerConfig

RATE = 16000
END_NS = seconds_to_ns(10.0)


def syllables(seed: int, seconds: float = 4.0, rate: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(times s within the window, a loudness pattern 0..1 at those times): random on/off syllables."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.05, seconds, 1 / rate)
    pattern = (rng.random(times.size) > 0.5).astype(float) * rng.uniform(0.5, 1.0, times.size)
    return times, pattern


def audio_for(times: np.ndarray, pattern: np.ndarray, seconds: float = 4.0) -> np.ndarray:
    """A 200 Hz voice whose loudness follows `pattern` (piecewise constant around each time)."""
    t = np.arange(int(seconds * RATE)) / RATE
    index = np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 1)
    envelope = 0.02 + 0.5 * pattern[index]
    return (envelope * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def attribution_with(mouths: dict[int, np.ndarray], times: np.ndarray, **config) -> SpeakerAttribution:
    judge = SpeakerAttribution(SpeakerConfig(enabled=True, **config), window_s=4.0, sample_rate=RATE)
    start_ns = END_NS - seconds_to_ns(4.0)
    for face_id, openings in mouths.items():
        for t, opening in zip(times, openings):
            judge.add(face_id, start_ns + seconds_to_ns(t), float(opening))
    return judge


def test_the_face_whose_mouth_follows_the_loudness_is_the_speaker():
    times, voice = syllables(seed=1)
    _, other = syllables(seed=2)  # another person's mouth moving to another rhythm
    judge = attribution_with({1: 0.02 + 0.15 * other, 2: 0.02 + 0.15 * voice}, times)
    verdict = judge.judge(END_NS, audio_for(times, voice), [1, 2])
    assert verdict[2].is_speaker and verdict[2].probability > 0.9
    assert not verdict[1].is_speaker and verdict[1].probability < 0.5


def test_still_mouths_silence_or_no_audio_mean_nobody_speaks():
    times, voice = syllables(seed=3)
    still = attribution_with({1: np.full(times.size, 0.05)}, times)
    assert still.judge(END_NS, audio_for(times, voice), [1])[1].probability == 0.0
    moving = attribution_with({1: 0.02 + 0.15 * voice}, times)
    assert moving.judge(END_NS, np.zeros(4 * RATE, np.float32), [1])[1].probability == 0.0  # silence
    assert moving.judge(END_NS, None, [1])[1].probability == 0.0  # no audio in this window
    unseen = moving.judge(END_NS, audio_for(times, voice), [7])[7]  # a face without mouth measurements
    assert unseen.probability == 0.0 and not unseen.is_speaker


def test_too_few_measurements_are_not_judged_and_old_ones_fall_out_of_the_window():
    times, voice = syllables(seed=4)
    few = attribution_with({1: 0.02 + 0.15 * voice}, times[:4])
    assert few.judge(END_NS, audio_for(times, voice), [1])[1].probability == 0.0
    judge = attribution_with({1: 0.02 + 0.15 * voice}, times)
    later = END_NS + seconds_to_ns(4.5)  # a window after all of them
    assert judge.judge(later, audio_for(times, voice), [1])[1].probability == 0.0
    judge.forget(1)
    assert judge.openings(1, END_NS)[1].size == 0


def test_bad_settings_are_refused_with_what_is_expected():
    with pytest.raises(ValueError, match="audio_to must be one of all, speakers"):
        SpeakerConfig(audio_to="loudest")
    with pytest.raises(ValueError, match="audio_to='speakers' needs enabled=True"):
        SpeakerConfig(audio_to="speakers")
    with pytest.raises(ValueError, match="min_samples must be >= 3"):
        SpeakerConfig(min_samples=1)

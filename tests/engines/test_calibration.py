"""Calibration windows: cut from real clips by the live reader, tracker and preprocessing."""

import numpy as np
import pytest

from socialmae_rt.engines.calibration import CalibrationClipError, calibration_windows
from socialmae_rt.features import PreprocessConfig
from socialmae_rt.media.heldout import HeldOutClip, build_clip
from socialmae_rt.media.sample import build_sample_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return build_sample_clip(tmp_path_factory.mktemp("clip") / "talk.mp4").path


def test_windows_from_a_clip_with_a_face_and_speech(clip):
    found = calibration_windows([clip], PreprocessConfig(), max_windows=100)
    # the 20 s sample: a face in 0-8 s and 12-20 s (two tracks), windows 0.5 s apart ending on
    # crops at least 4 s into each track: about 9 per track
    assert 12 <= len(found) <= 22
    assert found.audio.shape[1:] == (1024, 128) and found.video.shape[1:] == (3, 224, 224, 8)
    assert found.audio.dtype == found.video.dtype == np.float32
    assert np.isfinite(found.audio).all() and np.isfinite(found.video).all()
    assert len({found.video[i].tobytes() for i in range(len(found))}) == len(found)  # distinct windows
    assert found.sources[0].startswith("talk.mp4 ") and found.sources[0].endswith(f" {len(found)}")
    assert found.origins == ["talk"] * len(found)  # every window knows its clip (the gate reports per clip)


def test_at_most_max_windows_spread_over_the_clip(clip):
    everything = calibration_windows([clip], PreprocessConfig(), max_windows=100)
    few = calibration_windows([clip], PreprocessConfig(), max_windows=3)
    assert len(few) == 3
    np.testing.assert_array_equal(few.video[0], everything.video[0])
    np.testing.assert_array_equal(few.video[-1], everything.video[-1])


def test_a_clip_without_a_face_is_refused_by_name(write_clip):
    clip = write_clip("noface.mp4", seconds=5.0)
    with pytest.raises(CalibrationClipError, match=r"calibration clip .*noface.mp4 shows no face"):
        calibration_windows([clip.path], PreprocessConfig())


def test_a_silent_clip_and_a_clip_shorter_than_a_window_are_refused_by_name(tmp_path):
    silent = build_clip(HeldOutClip("quiet", ("hopper",), ("silence",), seconds=5.0), tmp_path / "quiet.mp4")
    with pytest.raises(CalibrationClipError, match=r"quiet.mp4 is silent throughout"):
        calibration_windows([silent], PreprocessConfig())
    short = build_sample_clip(tmp_path / "short.mp4", seconds=3.0).path
    with pytest.raises(CalibrationClipError, match=r"short.mp4 has no 4 s stretch with a face and sound"):
        calibration_windows([short], PreprocessConfig())


def test_a_folder_of_clips_is_read_and_a_bad_one_in_it_named(clip, tmp_path, write_clip):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    (folder / "notes.txt").write_text("not a clip")
    found = calibration_windows([folder], PreprocessConfig(), max_windows=100)
    assert found.sources[0].startswith("a.mp4 ") and len(found.sources) == 1
    write_clip("clips/b.mp4", seconds=5.0)  # no face
    with pytest.raises(CalibrationClipError, match=r"clips/b.mp4 shows no face"):
        calibration_windows([folder], PreprocessConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationClipError, match=r"calibration folder .*empty holds no media file"):
        calibration_windows([tmp_path / "empty"], PreprocessConfig())


def test_missing_clip_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        calibration_windows([tmp_path / "nowhere.mp4"], PreprocessConfig())

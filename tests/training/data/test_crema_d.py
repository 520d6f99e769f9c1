"""CREMA-D reader on a tiny tree of real .flv (Sorenson + MP3, like the dataset) and .wav files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from socialmae_rt.training.data.crema_d import parse_crema_d_name, read_crema_d
from socialmae_rt.training.data.items import LabelMismatchError
from socialmae_rt.training.data.prepare import PrepareConfig, prepare_data
from socialmae_rt.training.data.cache import load_clip, read_index
from socialmae_rt.training.data.splits import SplitConfig, split_speakers
from socialmae_rt.training.data.synthetic import write_synthetic_clip

SPEAKERS = ("1001", "1002", "1003", "1004")
CODES = {"ANG": 0, "HAP": 1}  # emotion code -> synthetic class (colour/pitch) of its clip


@pytest.fixture(scope="module")
def crema_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crema_d")
    for n, speaker in enumerate(SPEAKERS):
        for code, k in CODES.items():
            stem = f"{speaker}_DFA_{code}_XX"
            write_synthetic_clip(root / "VideoFlash" / f"{stem}.flv", [(0.0, k)], 1.5, wav_path=root / "AudioWAV" / f"{stem}.wav",
                                 rng=np.random.default_rng(n))
    return root


def copy_tree(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "crema"
    shutil.copytree(root, copy)
    return copy


def test_reads_labels_speakers_and_pairs_files(crema_root):
    items = read_crema_d(crema_root)
    assert len(items) == 8 and items.skipped == {}
    first = items[0]
    assert first.clip_id == "1001_DFA_ANG_XX"
    assert first.video == crema_root / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    assert first.audio == crema_root / "AudioWAV" / "1001_DFA_ANG_XX.wav"
    assert first.labels == {"emotion": "anger"} and first.speaker == "1001"
    assert first.meta == {"sentence": "DFA", "level": "XX"}
    assert {item.labels["emotion"] for item in items} == {"anger", "happy"}
    assert parse_crema_d_name("1091_IEO_SAD_HI") == {"speaker": "1091", "sentence": "IEO", "emotion": "SAD", "level": "HI"}
    assert parse_crema_d_name("1091_IEO_SAD") is None


def test_video_audio_only_from_the_flv(crema_root):
    items = read_crema_d(crema_root, audio_dir=None)
    assert len(items) == 8 and all(item.audio is None for item in items)


def test_speaker_independent_split(crema_root):
    items = read_crema_d(crema_root, split=SplitConfig({"train": 0.5, "val": 0.25, "test": 0.25}, seed=3))
    speakers = split_speakers(items)
    assert {split: len(s) for split, s in speakers.items()} == {"train": 2, "val": 1, "test": 1}
    assert sum(len(s) for s in speakers.values()) == len(set().union(*speakers.values()))  # nobody in two splits
    again = read_crema_d(crema_root, split=SplitConfig({"train": 0.5, "val": 0.25, "test": 0.25}, seed=3))
    assert [i.split for i in again] == [i.split for i in items]


def test_mismatches_are_one_error_with_counts_and_examples(crema_root, tmp_path):
    root = copy_tree(crema_root, tmp_path)
    (root / "AudioWAV" / "1001_DFA_ANG_XX.wav").unlink()  # video without audio
    (root / "VideoFlash" / "1002_DFA_HAP_XX.flv").unlink()  # audio without video
    (root / "VideoFlash" / "1003_DFA_HAP_XX.flv").unlink()
    for stem in ("1005_DFA_XYZ_XX", "1005_bad"):  # unknown emotion code, unparseable name
        shutil.copy(crema_root / "VideoFlash" / "1004_DFA_ANG_XX.flv", root / "VideoFlash" / f"{stem}.flv")
        shutil.copy(crema_root / "AudioWAV" / "1004_DFA_ANG_XX.wav", root / "AudioWAV" / f"{stem}.wav")
    with pytest.raises(LabelMismatchError) as error:
        read_crema_d(root)
    message = str(error.value)
    assert "5 problem(s)" in message
    assert "video without a .wav file in AudioWAV/: 1 (e.g. 1001_DFA_ANG_XX)" in message
    assert ".wav file without a video in VideoFlash/: 2 (e.g. 1002_DFA_HAP_XX, 1003_DFA_HAP_XX)" in message
    assert "unknown emotion code" in message and "1005_DFA_XYZ_XX" in message
    assert "1005_bad" in message and "on_mismatch='skip'" in message

    items = read_crema_d(root, on_mismatch="skip")
    assert len(items) == 5
    assert sum(len(names) for names in items.skipped.values()) == 5


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="VideoFlash"):
        read_crema_d(tmp_path)


def test_prepare_reads_flv_video_and_wav_audio(crema_root, tmp_path):
    items = read_crema_d(crema_root, split=SplitConfig({"train": 0.5, "val": 0.25, "test": 0.25}))
    report = prepare_data(items[:2], tmp_path / "cache", PrepareConfig(crop="full", progress=False, print_report=False))
    assert report.prepared == 2 and report.skipped == {}
    entry = read_index(tmp_path / "cache")[0]
    assert entry.labels == {"emotion": "anger"} and entry.speaker == "1001" and entry.split == items[0].split
    clip = load_clip(tmp_path / "cache" / entry.file)
    # 15 frames at 10 fps on a 2 fps grid from the first frame: the last grid time takes the last frame
    # (1.4 s in). The FLV muxer starts the video 50 ms after the MP3 track (encoder delay); stamps keep that.
    assert clip.frame_times_s - clip.frame_times_s[0] == pytest.approx([0.0, 0.5, 1.0, 1.4])
    assert 0.0 <= clip.frame_times_s[0] < 0.1
    assert clip.frames.shape == (4, 224, 224, 3) and clip.frames.dtype == np.uint8
    assert entry.num_samples == pytest.approx(1.5 * 16000, abs=2)  # from the 16 kHz WAV, not the MP3 track

"""VoxCeleb2 reader: root/<id>/<video>/<clip>.mp4, audio in the mp4 or in a parallel tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from socialmae_rt.training.data.items import LabelMismatchError
from socialmae_rt.training.data.synthetic import write_synthetic_clip
from socialmae_rt.training.data.voxceleb import read_voxceleb2

CLIPS = ("id00012/21Uxsk56VDQ/00001", "id00012/21Uxsk56VDQ/00002", "id00015/0fijmz4vTVU/00001")


@pytest.fixture(scope="module")
def vox_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vox")
    for n, clip in enumerate(CLIPS):
        write_synthetic_clip(root / "mp4" / f"{clip}.mp4", [(0.0, n)], 1.0, audio_in_video=False,
                             wav_path=root / "wav" / f"{clip}.wav", rng=np.random.default_rng(n))
    return root


def test_layout_ids_and_speakers(vox_root):
    items = read_voxceleb2(vox_root / "mp4", split="train")
    assert [item.clip_id for item in items] == list(CLIPS)
    assert [item.speaker for item in items] == ["id00012", "id00012", "id00015"]
    assert all(item.labels == {} and item.audio is None and item.split == "train" for item in items)


def test_parallel_audio_tree(vox_root):
    items = read_voxceleb2(vox_root / "mp4", vox_root / "wav")
    assert items[2].audio == vox_root / "wav" / "id00015" / "0fijmz4vTVU" / "00001.wav"


def test_audio_tree_mismatch(vox_root, tmp_path):
    audio = tmp_path / "wav"
    shutil.copytree(vox_root / "wav", audio)
    (audio / "id00015" / "0fijmz4vTVU" / "00001.wav").unlink()
    shutil.copy(audio / "id00012" / "21Uxsk56VDQ" / "00001.wav", audio / "id00012" / "21Uxsk56VDQ" / "00009.wav")
    with pytest.raises(LabelMismatchError, match=r"video without an audio file .*: 1 \(e.g. id00015/0fijmz4vTVU/00001\)"):
        read_voxceleb2(vox_root / "mp4", audio)
    items = read_voxceleb2(vox_root / "mp4", audio, on_mismatch="skip")
    assert len(items) == 2 and items.skipped["audio file without a video"] == ["id00012/21Uxsk56VDQ/00009"]


def test_empty_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="no <id>/<video>/<clip>.mp4 files"):
        read_voxceleb2(tmp_path)

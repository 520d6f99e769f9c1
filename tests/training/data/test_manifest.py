"""Generic manifests (CSV, JSONL): columns, label columns, relative paths, row problems; NDC-ME."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from socialmae_rt.training.data.items import ClipItem, LabelMismatchError, check_items
from socialmae_rt.training.data.manifest import read_manifest, read_ndc_me
from socialmae_rt.training.data.synthetic import write_synthetic_clip
from socialmae_rt.training.data.tasks import EMOTION, PERSONALITY


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """a folder with clips/a.mp4 (video + audio) and clips/b.mp4 + clips/b.wav"""
    root = tmp_path_factory.mktemp("manifest_media")
    write_synthetic_clip(root / "clips" / "a.mp4", [(0.0, 0)], 1.0, rng=np.random.default_rng(0))
    write_synthetic_clip(root / "clips" / "b.mp4", [(0.0, 1)], 1.0, audio_in_video=False, wav_path=root / "clips" / "b.wav")
    return root


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_label_columns_and_relative_paths(media):
    manifest = write(media / "m.csv",
                     "video,audio,start,end,speaker,split,emotion,personality.openness,personality.conscientiousness,"
                     "personality.extraversion,personality.agreeableness,personality.neuroticism\n"
                     "clips/a.mp4,,,,s1,train,happy,0.1,0.2,0.3,0.4,0.5\n"
                     "clips/b.mp4,clips/b.wav,0.2,0.9,s2,test,sad,,,,,\n")
    a, b = read_manifest(manifest, ["emotion", "personality"])
    assert a.clip_id == "clips/a" and a.video == media / "clips" / "a.mp4" and a.audio is None
    assert a.labels == {"emotion": "happy", "personality": dict(zip(PERSONALITY.labels, [0.1, 0.2, 0.3, 0.4, 0.5]))}
    assert (a.speaker, a.split) == ("s1", "train")
    assert b.clip_id == "clips/b@0.200-0.900" and (b.start_s, b.end_s) == (0.2, 0.9)
    assert b.audio == media / "clips" / "b.wav" and b.labels == {"emotion": "sad"}  # empty cells: no label


def test_csv_labels_as_json_and_jsonl(media):
    csv_manifest = write(media / "j.csv", 'clip_id,video,labels\nx,clips/a.mp4,"{""emotion"": ""fear"", ""laughter"": 1}"\n')
    (item,) = read_manifest(csv_manifest, ["emotion", "laughter"])
    assert item.clip_id == "x" and item.labels == {"emotion": "fear", "laughter": 1.0}
    lines = [{"clip_id": "y", "video": "clips/a.mp4", "labels": {"emotion": "neutral"}, "speaker": 7},
             {"audio": str(media / "clips" / "b.wav"), "labels": {"emotion": "anger"}}]
    jsonl = write(media / "m.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    audio_only, y = read_manifest(jsonl, [EMOTION])  # sorted by clip id: "clips/b", "y"
    assert y.speaker == "7" and y.labels == {"emotion": "neutral"}
    assert audio_only.video is None and audio_only.audio == media / "clips" / "b.wav"


def test_row_problems_are_gathered(media):
    manifest = write(media / "bad.csv",
                     "video,emotion,start\n"
                     "clips/a.mp4,happy,\n"
                     "clips/nope.mp4,happy,\n"      # file not found
                     "clips/b.mp4,surprise,\n"      # unknown class
                     "clips/b.mp4,sad,soon\n"       # not a number
                     "clips/a.mp4,sad,\n")          # duplicate default clip id
    with pytest.raises(LabelMismatchError) as error:
        read_manifest(manifest, ["emotion"])
    message = str(error.value)
    assert "4 problem(s)" in message
    assert "file not found: 1 (e.g. row 3:" in message and "nope.mp4" in message
    assert "bad emotion label: 1 (e.g. row 4: clips/b: task 'emotion': unknown class 'surprise'" in message
    assert "start 'soon' is not a number" in message and "duplicate clip id: 1 (e.g. row 6: clips/a)" in message
    items = read_manifest(manifest, ["emotion"], on_mismatch="skip")
    assert [i.clip_id for i in items] == ["clips/a"] and sum(map(len, items.skipped.values())) == 4


def test_unknown_columns_and_untracked_tasks_are_refused(media):
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['emotoin'\]"):
        read_manifest(write(media / "typo.csv", "video,emotoin\nclips/a.mp4,happy\n"), ["emotion"])
    with pytest.raises(LabelMismatchError, match=r"label for a task not listed \(emotion\)"):
        read_manifest(write(media / "untracked.jsonl", '{"video": "clips/a.mp4", "labels": {"emotion": "sad"}}\n'))
    with pytest.raises(ValueError, match="unknown key"):
        read_manifest(write(media / "key.jsonl", '{"video": "clips/a.mp4", "emotion": "sad"}\n'), ["emotion"])


def test_ndc_me_laughter_and_smile(media):
    manifest = write(media / "ndc.csv",
                     "video,start,end,speaker,laughter,smile_laughter.smile,smile_laughter.laughter\n"
                     "clips/a.mp4,0,0.5,p1,1,1,1\n"
                     "clips/a.mp4,0.5,1.0,p1,0,true,false\n")
    first, second = read_ndc_me(manifest)
    assert first.labels == {"laughter": 1.0, "smile_laughter": {"smile": 1.0, "laughter": 1.0}}
    assert second.labels == {"laughter": 0.0, "smile_laughter": {"smile": 1.0, "laughter": 0.0}}


def test_check_items():
    good = ClipItem("a", video=Path("a.mp4"), labels={"emotion": "happy"})
    check_items([good], ["emotion"])
    with pytest.raises(LabelMismatchError, match="duplicate clip id: 1"):
        check_items([good, good], ["emotion"])
    with pytest.raises(LabelMismatchError, match=r"label for a task not listed \(emotion\): 1"):
        check_items([good], [])
    with pytest.raises(ValueError, match="needs a video file, an audio file, or both"):
        ClipItem("x", video=None)
    with pytest.raises(ValueError, match="end_s .* must be after start_s"):
        ClipItem("x", video=Path("a.mp4"), start_s=2.0, end_s=1.0)

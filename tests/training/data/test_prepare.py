"""prepare_data on generated real media: crops, audio, the report's skip counts, the cache, re-runs."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from socialmae_rt.capture.media_file import MediaFileSource
from socialmae_rt.faces import FaceDetector, FaceTracker, TrackerConfig
from socialmae_rt.messages import VideoFrame
from socialmae_rt.training.data.cache import load_clip, read_index
from socialmae_rt.training.data.items import ClipItem, ItemList
from socialmae_rt.training.data.prepare import PrepareConfig, prepare_data
from socialmae_rt.training.data.synthetic import CLASS_COLOURS_BGR

QUIET = dict(progress=False, print_report=False)


def broken_file(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("meeting notes, not a video\n" * 40)
    return path


def corner_class(crop: np.ndarray) -> int:
    """Class whose colour the crop's top-left corner (background) has."""
    mean = crop[:20, :20].reshape(-1, 3).mean(axis=0)
    colours = np.asarray(CLASS_COLOURS_BGR, np.float32)
    similarity = colours @ mean / (np.linalg.norm(colours, axis=1) * np.linalg.norm(mean))
    return int(np.argmax(similarity))


def test_full_crops_and_report_counts_every_skip(synthetic_dataset, write_av_clip, tmp_path, capsys):
    silent = write_av_clip("silent.mp4", seconds=4.5, audio_in_video=False)
    extra = [ClipItem("broken", video=broken_file(tmp_path)), ClipItem("silent", video=silent)]
    items = ItemList(list(synthetic_dataset.items) + extra, skipped={"video without annotation": ["x.mp4"]})
    cache = tmp_path / "cache"
    report = prepare_data(items, cache, PrepareConfig(crop="full", progress=False))

    assert (report.total, report.prepared, report.cached) == (14, 12, 0)
    assert report.skipped == {"unreadable": 1, "no_audio": 1}
    assert "cannot read it as media" in report.examples["unreadable"][0]
    assert report.examples["no_audio"] == ["silent: silent.mp4 has no audio track"]
    assert report.read_skipped == {"video without annotation": 1}
    printed = capsys.readouterr().out
    assert "12 prepared, 0 already cached, 2 skipped (no_audio 1, unreadable 1)" in printed
    assert "left out by the readers: video without annotation: 1" in printed
    saved = json.loads((cache / "report.json").read_text())
    assert saved["skipped"] == report.skipped and saved["kept"] == 12

    entries = {entry.clip_id: entry for entry in read_index(cache)}
    assert set(entries) == {item.clip_id for item in synthetic_dataset.items}
    for item in synthetic_dataset.items:
        entry = entries[item.clip_id]
        assert (entry.labels, entry.speaker, entry.split) == (item.labels, item.speaker, item.split)
        clip = load_clip(cache / entry.file)
        assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (224, 224, 3)
        steps = np.diff(clip.frame_times_s)  # a 2 fps grid; the last grid time may take a frame up to 0.25 s early
        assert np.allclose(steps[:-1], 0.5) and 0.25 <= steps[-1] <= 0.5
        assert clip.audio.dtype == np.float32 and abs(clip.audio.size / 16000 - entry.duration_s) < 0.05
        assert entry.duration_s == pytest.approx(item_duration(item), abs=0.1)
        k = int(item.labels["synthetic"].removeprefix("class"))
        assert all(corner_class(frame) == k for frame in clip.frames)


def item_duration(item: ClipItem) -> float:
    source = MediaFileSource(item.video)
    source.open()
    duration = source.duration_s
    source.close()
    return duration


def test_full_crop_is_the_whole_frame_resized(write_av_clip, tmp_path):
    path = write_av_clip("one.mp4", seconds=1.0)
    prepare_data([ClipItem("one", video=path)], tmp_path / "cache", PrepareConfig(crop="full", **QUIET))
    clip = load_clip(tmp_path / "cache" / read_index(tmp_path / "cache")[0].file)
    first = next(item for item in MediaFileSource(path) if isinstance(item, VideoFrame))
    assert np.array_equal(clip.frames[0], cv2.resize(first.bgr, (224, 224), interpolation=cv2.INTER_CUBIC))


def test_face_crops_are_the_live_crops_and_faceless_clips_are_skipped(face_dataset, write_av_clip, tmp_path):
    faceless = write_av_clip("faceless.mp4", seconds=4.0, picture="none")
    items = list(face_dataset.items) + [ClipItem("faceless", video=faceless)]
    cache = tmp_path / "cache"
    report = prepare_data(items, cache, PrepareConfig(crop="face", **QUIET))
    assert (report.prepared, report.skipped) == (len(face_dataset.items), {"no_face": 1})
    assert report.examples["no_face"][0].startswith("faceless: no face found in 9 frame(s)")

    entry = read_index(cache)[0]
    clip = load_clip(cache / entry.file)
    assert clip.meta["crops"]["tracks"] == 1 and clip.meta["crops"]["face_frames"] == entry.num_frames
    assert entry.num_frames == clip.meta["frames_decoded"] // 5 + 1  # every 2 fps grid frame had the face
    # The live path: the file source's first frame through the live detector, tracker and crop.
    first = next(item for item in MediaFileSource(face_dataset.root / entry.video) if isinstance(item, VideoFrame))
    with FaceDetector() as detector:
        (live,) = FaceTracker(detector, TrackerConfig(detect_every_n_frames=1)).update(first)
    assert np.array_equal(clip.frames[0], live.bgr)


def test_single_stream_clips_are_kept_only_when_asked(write_av_clip, tmp_path):
    silent = ClipItem("silent", video=write_av_clip("silent.mp4", seconds=4.0, picture="face", audio_in_video=False))
    faceless = ClipItem("faceless", video=write_av_clip("faceless.mp4", seconds=4.0, picture="none"))
    nothing = ClipItem("nothing", video=write_av_clip("nothing.mp4", seconds=4.0, picture="none", audio_in_video=False))
    items, cache = [silent, faceless, nothing], tmp_path / "cache"
    config = PrepareConfig(crop="face", keep_video_only=True, keep_audio_only=True, **QUIET)
    report = prepare_data(items, cache, config)
    assert (report.prepared, report.skipped) == (2, {"no_face": 1})  # neither stream: nothing to keep
    entries = {e.clip_id: e for e in read_index(cache)}
    assert entries["silent"].num_samples == 0 and entries["silent"].num_frames == 9
    assert entries["faceless"].num_frames == 0 and entries["faceless"].num_samples == pytest.approx(64000, abs=1024)  # AAC pads its last frame

    # Without the keep flags the cached single-stream clips are skipped again, each with its reason.
    report = prepare_data(items, cache, replace(config, keep_video_only=False))
    assert (report.cached, report.skipped) == (1, {"no_audio": 1, "no_face": 1})
    assert [e.clip_id for e in read_index(cache)] == ["faceless"]
    report = prepare_data(items, cache, replace(config, keep_audio_only=False))
    assert (report.cached, report.skipped) == (1, {"no_face": 2})
    assert [e.clip_id for e in read_index(cache)] == ["silent"]


def test_segments_keep_their_part_with_times_from_its_start(write_av_clip, tmp_path):
    path = write_av_clip("long.mp4", timeline=[(0.0, 0), (2.0, 1)], seconds=5.0)
    item = ClipItem("part", video=path, start_s=1.0, end_s=3.5)
    prepare_data([item], tmp_path / "cache", PrepareConfig(crop="full", **QUIET))
    entry = read_index(tmp_path / "cache")[0]
    clip = load_clip(tmp_path / "cache" / entry.file)
    assert clip.frame_times_s == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.4])
    assert [corner_class(f) for f in clip.frames] == [0, 0, 1, 1, 1, 1]  # the class changes 1 s into the segment
    assert clip.audio.size == pytest.approx(2.5 * 16000, abs=2) and abs(clip.audio_start_s) < 1e-3
    assert (entry.start_s, entry.end_s) == (1.0, 3.5)


def test_rerun_reuses_the_cache_and_notices_changes(synthetic_dataset, tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    items = []
    for item in list(synthetic_dataset.items)[:3]:
        shutil.copy(item.video, sources / item.video.name)
        items.append(replace(item, video=sources / item.video.name))
    cache = tmp_path / "cache"
    config = PrepareConfig(crop="full", **QUIET)
    assert prepare_data(items, cache, config).prepared == 3
    files = sorted((cache / "clips").iterdir())
    stamps = [f.stat().st_mtime_ns for f in files]

    again = prepare_data(items, cache, config)
    assert (again.prepared, again.cached, again.skipped) == (0, 3, {})
    assert [f.stat().st_mtime_ns for f in files] == stamps

    os.utime(items[0].video, ns=(1_000_000_000, 1_000_000_000))  # the source changed (new mtime)
    relabelled = [replace(items[1], labels={"synthetic": "class2"}, split="test")] + [items[0], items[2]]
    third = prepare_data(relabelled, cache, config)
    assert (third.prepared, third.cached) == (1, 2)
    entry = {e.clip_id: e for e in read_index(cache)}[items[1].clip_id]
    assert (entry.labels, entry.split) == ({"synthetic": "class2"}, "test")  # labels update without decoding

    with pytest.raises(ValueError, match=r"prepared with other settings \(crop, detector, tracker differ"):
        prepare_data(items, cache, PrepareConfig(crop="face", **QUIET))


def test_workers_give_the_same_cache(face_dataset, tmp_path):
    items = list(face_dataset.items)  # face crops: each spawned worker builds its own MediaPipe detector
    one = prepare_data(items, tmp_path / "one", PrepareConfig(crop="face", **QUIET))
    two = prepare_data(items, tmp_path / "two", PrepareConfig(crop="face", workers=2, **QUIET))
    assert one.prepared == two.prepared == len(items) == 4
    for a, b in zip(read_index(tmp_path / "one"), read_index(tmp_path / "two")):
        clip_a, clip_b = load_clip(tmp_path / "one" / a.file), load_clip(tmp_path / "two" / b.file)
        assert np.array_equal(clip_a.frames, clip_b.frames) and np.array_equal(clip_a.audio, clip_b.audio)


def test_config_validation():
    with pytest.raises(ValueError, match="crop must be one of"):
        PrepareConfig(crop="head")
    with pytest.raises(ValueError, match="detect_every_n_frames must be 1"):
        PrepareConfig(tracker=TrackerConfig(detect_every_n_frames=3))
    with pytest.raises(ValueError, match="duplicate clip id"):
        prepare_data([ClipItem("a", video=Path("a.mp4"))] * 2, "/nonexistent", PrepareConfig(**QUIET))
    assert PrepareConfig(detector={"min_confidence": 0.6}).detector.min_confidence == 0.6

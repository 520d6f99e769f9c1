"""WindowDataset over prepared generated clips: shapes, same-interval audio and video, seeding, edge clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from socialmae_rt.features import audio_to_model_input
from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.training.data.cache import load_clip, read_index
from socialmae_rt.training.data.dataset import WindowDataset, collate
from socialmae_rt.training.data.items import ClipItem
from socialmae_rt.training.data.prepare import PrepareConfig, prepare_data
from socialmae_rt.training.data.synthetic import CLASS_COLOURS_BGR, CLASS_PITCHES_HZ, class_at, write_synthetic_clip

QUIET = dict(progress=False, print_report=False)
PRE = PreprocessConfig()
PAD_VALUE = (0.0 - PRE.audio.norm_mean) / PRE.audio.norm_std  # a zero-padded filterbank row after normalising
SWITCHES = [(0.0, 0), (1.3, 1), (2.9, 2), (4.6, 0), (6.1, 1), (7.4, 2)]  # class changes off the 0.5 s grid


@pytest.fixture(scope="module")
def prepared(synthetic_dataset, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("prepared") / "cache"
    prepare_data(synthetic_dataset.items, cache, PrepareConfig(crop="full", **QUIET))
    return cache


def frame_classes(video: torch.Tensor) -> list[int]:
    """Class of each of the 8 frames of a model input [3, 224, 224, 8], from its background colour."""
    mean = torch.tensor(PRE.video.mean).view(3, 1, 1, 1)
    std = torch.tensor(PRE.video.std).view(3, 1, 1, 1)
    pixels = ((video * std + mean) * 255)[:, :20, :20].mean(dim=(1, 2)).T.numpy()  # [8, 3] BGR corner colours
    colours = np.asarray(CLASS_COLOURS_BGR, np.float32)
    similarity = (pixels @ colours.T) / np.linalg.norm(pixels, axis=1, keepdims=True) / np.linalg.norm(colours, axis=1)
    return similarity.argmax(axis=1).tolist()


@pytest.fixture(scope="module")
def pitch_bins() -> np.ndarray:
    """The mel bin where each class's tone peaks."""
    t = np.arange(16000) / 16000
    return np.array([audio_to_model_input(np.sin(2 * np.pi * f * t), 16000)[50].argmax() for f in CLASS_PITCHES_HZ])


def audio_class(fbank: torch.Tensor | np.ndarray, row: int, pitch_bins: np.ndarray) -> int:
    return int(np.argmin(np.abs(pitch_bins - int(np.asarray(fbank)[row].argmax()))))


def test_items_shapes_dtypes_targets(prepared, synthetic_dataset, pitch_bins):
    data = WindowDataset(prepared, "train", [synthetic_dataset.task])
    assert len(data) == 6
    for index in range(len(data)):
        item = data[index]
        assert item["audio"].dtype == torch.float32 and item["audio"].shape == (1024, 128)
        assert item["video"].dtype == torch.float32 and item["video"].shape == (3, 224, 224, 8)
        label = item["targets"]["synthetic"]
        assert label.dtype == torch.int64 and label.shape == ()
        assert item["clip_id"] == data.entries[index].clip_id and item["video_fill"] == 1.0
        start, end = item["window"].tolist()
        assert end - start == pytest.approx(4.0)
        assert set(frame_classes(item["video"])) == {int(label)}  # what is seen and heard is the label
        assert audio_class(item["audio"], 200, pitch_bins) == int(label)
    batch = collate([data[0], data[1], data[2]])
    assert batch["audio"].shape == (3, 1024, 128) and batch["video"].shape == (3, 3, 224, 224, 8)
    assert batch["has_audio"].all() and batch["has_video"].all()
    assert batch["targets"]["synthetic"].tolist() == [int(data[i]["targets"]["synthetic"]) for i in range(3)]
    assert batch["window"].shape == (3, 2) and batch["clip_id"] == [e.clip_id for e in data.entries[:3]]


def test_audio_and_frames_come_from_the_same_interval(write_av_clip, tmp_path, pitch_bins):
    path = write_av_clip("switching.mp4", timeline=SWITCHES, seconds=9.0)
    cache = tmp_path / "cache"
    prepare_data([ClipItem("switching", video=path)], cache, PrepareConfig(crop="full", **QUIET))
    data = WindowDataset(cache, mode="all", hop_s=0.5)
    assert len(data) == 10  # ends 4.0, 4.5, ..., 8.5

    switches = np.array([start for start, _ in SWITCHES[1:]])
    raw = load_clip(cache / read_index(cache)[0].file)
    checked = mismatched_when_shifted = 0
    for index in range(len(data)):
        item = data[index]
        start, end = item["window"].tolist()
        seen = frame_classes(item["video"])
        shifted = audio_to_model_input(raw.audio[int((start + 0.75) * 16000) : int((end + 0.75) * 16000)], 16000)
        for slot in range(8):
            t = end - 3.5 + 0.5 * slot  # the slot's time in the clip
            if np.min(np.abs(switches - t)) < 0.2:
                continue  # too close to a change to tell
            row = min(397, int((t - start - 0.0125) / 0.01) - 5)  # a filterbank frame 50-60 ms before the slot
            truth = class_at(SWITCHES, t)
            assert seen[slot] == truth, f"window ending {end} s, slot at {t} s: frame shows class {seen[slot]}"
            assert audio_class(item["audio"], row, pitch_bins) == truth, f"window ending {end} s, slot at {t} s: audio"
            mismatched_when_shifted += audio_class(shifted, row, pitch_bins) != truth
            checked += 1
    assert checked >= 50
    assert mismatched_when_shifted >= 10, mismatched_when_shifted  # the check does catch audio taken 0.75 s off the frames' interval


def test_random_windows_are_seeded_by_epoch(prepared):
    def windows(dataset):
        return [tuple(dataset[i]["window"].tolist()) for i in range(len(dataset))]

    data = WindowDataset(prepared, ["train", "val", "test"], seed=1)
    first = windows(data)
    assert windows(WindowDataset(prepared, None, seed=1)) == first  # same seed, same epoch: same windows
    assert torch.equal(data[3]["video"], data[3]["video"]) and torch.equal(data[3]["audio"], data[3]["audio"])
    data.set_epoch(1)
    second = windows(data)
    assert second != first and len(set(first + second)) > 3  # new windows each epoch
    data.set_epoch(0)
    assert windows(data) == first
    assert windows(WindowDataset(prepared, None, seed=2)) != first

    # spawned, not forked: this process may hold other libraries' thread pools (the whole suite
    # runs in one process), and forking it crashed the suite at this line on a Zen 3 EPYC
    loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate, multiprocessing_context="spawn")
    data.set_epoch(1)
    assert [tuple(w) for batch in loader for w in batch["window"].tolist()] == second  # the same in workers


def test_center_and_all_modes(prepared):
    centre = WindowDataset(prepared, "test", mode="center")
    for index, entry in enumerate(centre.entries):
        start, end = centre[index]["window"].tolist()
        possible = np.arange(4.0, entry.duration_s + 1e-6, 0.5)
        assert end == pytest.approx(possible[int(np.argmin(np.abs(possible - (possible[0] + possible[-1]) / 2)))], abs=0.25)
    every = WindowDataset(prepared, "test", mode="all", hop_s=0.5)
    assert len(every) > len(centre) and set(every.clip_ids()) == {e.clip_id for e in centre.entries}


@pytest.fixture(scope="module")
def odd_cache(tmp_path_factory) -> Path:
    """A short clip (2.6 s), a video-only clip and an audio-only (WAV) clip."""
    root = tmp_path_factory.mktemp("odd")
    write_synthetic_clip(root / "short.mp4", [(0.0, 1)], 2.6)
    write_synthetic_clip(root / "silent.mp4", [(0.0, 2)], 4.5, audio_in_video=False)
    write_synthetic_clip(None, [(0.0, 0)], 5.0, wav_path=root / "voice.wav")
    items = [ClipItem("short", video=root / "short.mp4"), ClipItem("silent", video=root / "silent.mp4"),
             ClipItem("voice", video=None, audio=root / "voice.wav")]
    report = prepare_data(items, root / "cache", PrepareConfig(crop="full", keep_video_only=True, **QUIET))
    assert report.prepared == 3
    return root / "cache"


def test_short_clip_repeats_frames_and_pads_audio(odd_cache):
    data = WindowDataset(odd_cache, mode="center")
    item = data[data.clip_ids().index("short")]
    assert item["window"].tolist() == pytest.approx([0.0, 2.5])  # the whole clip up to its last crop
    assert item["video_fill"] == 6 / 8  # crops at 0 ... 2.5 s fill 6 of the 8 slots
    video = item["video"]
    assert torch.equal(video[..., 6], video[..., 0]) and torch.equal(video[..., 7], video[..., 1])
    assert not torch.equal(video[..., 1], video[..., 0])  # distinct frames (noise), so the repeat is real
    audio = item["audio"]
    frames = 1 + (int(2.5 * 16000) - 400) // 160  # filterbank frames of 2.5 s of audio
    assert torch.allclose(audio[frames:], torch.full_like(audio[frames:], PAD_VALUE))
    assert audio[: frames - 1].std() > 0.1


def test_missing_streams_are_none_and_masked_in_batches(odd_cache):
    data = WindowDataset(odd_cache, mode="center")
    items = {data.clip_ids()[i]: data[i] for i in range(len(data))}
    assert items["silent"]["audio"] is None and items["silent"]["video"].shape == (3, 224, 224, 8)
    assert items["voice"]["video"] is None and items["voice"]["video_fill"] == 0.0
    assert items["voice"]["window"].tolist() == pytest.approx([0.5, 4.5])  # audio-only windows on a 0.5 s grid
    batch = collate([items["short"], items["silent"], items["voice"]])
    assert batch["has_audio"].tolist() == [True, False, True] and batch["has_video"].tolist() == [True, True, False]
    assert torch.count_nonzero(batch["audio"][1]) == 0 and torch.count_nonzero(batch["video"][2]) == 0
    assert collate([items["silent"]])["audio"] is None


def test_errors_name_what_is_missing(odd_cache, prepared):
    with pytest.raises(ValueError, match=r"3 of 3 clips have no 'emotion' label \(e.g. short, silent, voice\)"):
        WindowDataset(odd_cache, tasks=["emotion"])
    with pytest.raises(ValueError, match=r"no prepared clips in split 'dev'; splits there: \['test', 'train', 'val'\]"):
        WindowDataset(prepared, "dev")
    with pytest.raises(FileNotFoundError, match="prepare the data first"):
        WindowDataset(odd_cache.parent / "nowhere")
    with pytest.raises(ValueError, match="mode must be one of"):
        WindowDataset(prepared, mode="middle")

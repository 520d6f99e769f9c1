"""Speaker-independent splits: deterministic, fractions respected, nobody in two splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialmae_rt.training.data.items import ClipItem
from socialmae_rt.training.data.splits import SplitConfig, assign_speaker_splits, speaker_counts, speaker_split, split_speakers


def items(num_speakers: int, per_speaker: int = 3) -> list[ClipItem]:
    return [ClipItem(f"{s:04d}_{c}", video=Path(f"{s}_{c}.flv"), speaker=f"{1001 + s}")
            for s in range(num_speakers) for c in range(per_speaker)]


def test_no_speaker_in_two_splits_and_counts_follow_fractions():
    split = speaker_split(items(91), SplitConfig({"train": 0.7, "val": 0.15, "test": 0.15}, seed=1))
    speakers = split_speakers(split)
    assert {name: len(s) for name, s in speakers.items()} == {"train": 64, "val": 13, "test": 14}
    all_speakers = [s for group in speakers.values() for s in group]
    assert len(all_speakers) == len(set(all_speakers)) == 91
    for item in split:
        assert item.speaker in speakers[item.split]


def test_deterministic_and_seeded():
    config = SplitConfig(seed=5)
    first = assign_speaker_splits([f"s{i}" for i in range(20)], config)
    assert first == assign_speaker_splits([f"s{i}" for i in reversed(range(20))], config)  # order does not matter
    assert first != assign_speaker_splits([f"s{i}" for i in range(20)], SplitConfig(seed=6))


def test_small_speaker_sets_still_fill_every_split():
    assert speaker_counts(3, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 1, "val": 1, "test": 1}
    assert sum(speaker_counts(2, {"train": 0.8, "val": 0.1, "test": 0.1}).values()) == 2


def test_errors():
    with pytest.raises(ValueError, match="must sum to 1"):
        SplitConfig({"train": 0.8, "val": 0.1})
    with pytest.raises(ValueError, match=r"needs a speaker for every clip; 1 have none \(e.g. x\)"):
        speaker_split([ClipItem("x", video=Path("x.mp4"))])

"""Speaker-independent splits: every speaker's clips land in exactly one split.

The split depends only on the set of speakers, the fractions and the seed (speakers are sorted,
then shuffled with a seeded generator), so the same dataset always splits the same way, and
nobody is seen in training and then tested on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from socialmae_rt.training.data.items import ClipItem, ItemList, describe_examples

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SplitConfig:
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    seed: int = 0

    def __post_init__(self) -> None:
        fractions = dict(self.fractions)
        if not fractions:
            raise ValueError("SplitConfig.fractions needs at least one split, e.g. {'train': 0.8, 'val': 0.1, 'test': 0.1}")
        for name, value in fractions.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"SplitConfig.fractions: split names must be non-empty strings, got {name!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"SplitConfig.fractions[{name!r}] must be a number >= 0, got {value!r}")
        total = sum(fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"SplitConfig.fractions must sum to 1, got {fractions} (sum {total:g})")
        object.__setattr__(self, "fractions", fractions)


def speaker_counts(num_speakers: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Speakers per split: rounded cumulative fractions, at least one for every split with a
    positive fraction when there are enough speakers."""
    names = list(fractions)
    bounds = np.round(np.cumsum([fractions[name] for name in names]) * num_speakers).astype(int)  # [num_splits]
    counts = dict(zip(names, np.diff(np.concatenate([[0], bounds])).tolist()))
    wanted = [name for name in names if fractions[name] > 0]
    if num_speakers >= len(wanted):
        for name in wanted:
            if counts[name] == 0:  # take one from the largest split
                donor = max(counts, key=counts.get)
                counts[donor] -= 1
                counts[name] += 1
    return counts


def assign_speaker_splits(speakers: Sequence[str], config: SplitConfig | None = None) -> dict[str, str]:
    """speaker -> split name, deterministic for the same speaker set, fractions and seed."""
    config = config or SplitConfig()
    unique = sorted(set(speakers))
    order = np.random.default_rng(config.seed).permutation(len(unique))  # [num_speakers]
    shuffled = [unique[i] for i in order]
    assignment: dict[str, str] = {}
    start = 0
    for name, count in speaker_counts(len(unique), config.fractions).items():
        for speaker in shuffled[start : start + count]:
            assignment[speaker] = name
        start += count
    return assignment


def speaker_split(items: Sequence[ClipItem], config: SplitConfig | None = None) -> ItemList:
    """The items with `split` set by speaker (existing splits are replaced); every item needs a speaker."""
    without = [item.clip_id for item in items if item.speaker is None]
    if without:
        raise ValueError(
            f"speaker_split needs a speaker for every clip; {len(without)} have none ({describe_examples(without)})"
        )
    assignment = assign_speaker_splits([item.speaker for item in items], config)
    return ItemList([item.with_split(assignment[item.speaker]) for item in items], getattr(items, "skipped", None))


def split_speakers(items: Sequence[ClipItem]) -> dict[str, set[str]]:
    """split -> the speakers in it (items without a split or speaker are left out)."""
    result: dict[str, set[str]] = {}
    for item in items:
        if item.split is not None and item.speaker is not None:
            result.setdefault(item.split, set()).add(item.speaker)
    return result

"""Shared fixtures for the training tests.

Test modules cannot import each other (pytest --import-mode=importlib), so what they share lives
here. Other training tests may append fixtures below; keep each block self-contained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

# ---------------------------------------------------------------------------------------------
# Generated audio-visual datasets (training/data/synthetic.py): real media files through PyAV
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_synthetic(tmp_path_factory) -> Callable[..., "SyntheticDataset"]:  # noqa: F821
    """Factory: make_synthetic(**SyntheticConfig fields) -> SyntheticDataset, written once per session
    for the same arguments (treat the files as read-only; copy them to change them)."""
    from socialmae_rt.training.data.synthetic import SyntheticConfig, make_synthetic_dataset

    made = {}

    def make(**fields):
        key = repr(sorted(fields.items()))
        if key not in made:
            root = tmp_path_factory.mktemp("synthetic")
            made[key] = make_synthetic_dataset(root, SyntheticConfig(**fields))
        return made[key]

    return make


@pytest.fixture(scope="session")
def synthetic_dataset(make_synthetic):
    """3 classes x 4 clips (4-6 s, 160x120 @ 10 fps, drawn head, tone in the mp4), 4 speakers, splits."""
    return make_synthetic()


@pytest.fixture(scope="session")
def face_dataset(make_synthetic):
    """2 classes x 2 clips showing Grace Hopper's photograph (MediaPipe detects it) on a tinted background."""
    return make_synthetic(picture="face", num_classes=2, clips_per_class=2, num_speakers=2,
                          split_fractions={"train": 1.0})


@pytest.fixture
def write_av_clip(tmp_path) -> Callable[..., Path]:
    """Factory: write_av_clip(name, timeline=[(0, k), ...], seconds=5, **write_synthetic_clip options)
    -> path of a clip whose colour and pitch follow the timeline (see synthetic.write_synthetic_clip)."""
    from socialmae_rt.training.data.synthetic import write_synthetic_clip

    def write(name: str = "clip.mp4", timeline=((0.0, 0),), seconds: float = 5.0, seed: int = 0, **options) -> Path:
        path = tmp_path / name
        write_synthetic_clip(path, list(timeline), seconds, rng=np.random.default_rng(seed), **options)
        return path

    return write

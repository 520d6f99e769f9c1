"""ChaLearn First Impressions reader: real mp4s and the official annotation pickle's structure."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from socialmae_rt.tasks import PERSONALITY_TRAITS
from socialmae_rt.training.data.first_impressions import load_annotations, read_first_impressions, speaker_of
from socialmae_rt.training.data.items import LabelMismatchError
from socialmae_rt.training.data.synthetic import write_synthetic_clip

VIDEOS = ("J4GQm9j0JZ0.003.mp4", "J4GQm9j0JZ0.004.mp4", "-a_b-c9d8e7f.001.mp4")
# The official files' key order: extraversion, neuroticism, agreeableness, conscientiousness, interview, openness.
PICKLE_KEYS = ("extraversion", "neuroticism", "agreeableness", "conscientiousness", "interview", "openness")


def scores(index: int) -> dict[str, float]:
    return {trait: round(0.1 + 0.1 * index + 0.05 * t, 4) for t, trait in enumerate(PICKLE_KEYS)}


@pytest.fixture(scope="module")
def fi_videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first_impressions")
    for index, name in enumerate(VIDEOS):
        write_synthetic_clip(root / "train-1" / "training80_01" / name, [(0.0, index % 3)], 1.0,
                             rng=np.random.default_rng(index))
    return root / "train-1"


def write_pickle(path: Path, names=VIDEOS, value=float) -> Path:
    """The official structure: {trait: {video name: score}} (Python 2 wrote it with protocol 2)."""
    data = {trait: {name: value(scores(i)[trait]) for i, name in enumerate(names)} for trait in PICKLE_KEYS}
    path.write_bytes(pickle.dumps(data, protocol=2))
    return path


def test_reads_the_official_pickle(fi_videos, tmp_path):
    annotation = write_pickle(tmp_path / "annotation_training.pkl")
    items = read_first_impressions(fi_videos, annotation)
    assert [item.clip_id for item in items] == sorted(name.removesuffix(".mp4") for name in VIDEOS)
    item = next(i for i in items if i.clip_id == "J4GQm9j0JZ0.004")
    assert item.video == fi_videos / "training80_01" / "J4GQm9j0JZ0.004.mp4" and item.audio is None
    assert list(item.labels["personality"]) == list(PERSONALITY_TRAITS)  # O, C, E, A, N order
    assert item.labels["personality"]["openness"] == scores(1)["openness"]
    assert item.meta == {"interview": scores(1)["interview"]}
    assert item.speaker == "J4GQm9j0JZ0" and item.split == "train"
    assert speaker_of("-a_b-c9d8e7f.001.mp4") == "-a_b-c9d8e7f"


def test_numpy_scores_and_split_names(fi_videos, tmp_path):
    annotation = write_pickle(tmp_path / "annotation_validation.pkl", value=np.float64)
    items = read_first_impressions(fi_videos, annotation)
    assert {item.split for item in items} == {"val"}
    assert read_first_impressions(fi_videos, annotation, split="test")[0].split == "test"


def test_csv_annotations(fi_videos, tmp_path):
    path = tmp_path / "big5.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video", *PERSONALITY_TRAITS])
        writer.writeheader()
        for index, name in enumerate(VIDEOS):
            writer.writerow({"video": name, **{t: scores(index)[t] for t in PERSONALITY_TRAITS}})
    items = read_first_impressions(fi_videos, path)
    assert len(items) == 3 and items[0].split is None and items[0].meta == {}
    assert load_annotations(path)["J4GQm9j0JZ0.003.mp4"]["neuroticism"] == scores(0)["neuroticism"]


def test_mismatches(fi_videos, tmp_path):
    names = ("J4GQm9j0JZ0.003.mp4", "missing.001.mp4", "gone.002.mp4")  # 2 annotated videos are absent,
    annotation = write_pickle(tmp_path / "annotation_training.pkl", names=names)  # 2 videos are not annotated
    with pytest.raises(LabelMismatchError) as error:
        read_first_impressions(fi_videos, annotation)
    message = str(error.value)
    assert "annotation without video: 2 (e.g. gone.002.mp4, missing.001.mp4)" in message
    assert "video without annotation: 2 (e.g. -a_b-c9d8e7f.001.mp4, J4GQm9j0JZ0.004.mp4)" in message
    items = read_first_impressions(fi_videos, annotation, on_mismatch="skip")
    assert [i.clip_id for i in items] == ["J4GQm9j0JZ0.003"]
    assert {reason: len(n) for reason, n in items.skipped.items()} == {"annotation without video": 2, "video without annotation": 2}


def test_value_outside_unit_range(fi_videos, tmp_path):
    annotation = tmp_path / "annotation_training.pkl"
    data = {trait: {name: 0.5 for name in VIDEOS} for trait in PICKLE_KEYS}
    data["openness"][VIDEOS[0]] = 1.7
    annotation.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(LabelMismatchError, match=r"outside \[0, 1\]: 1 \(e.g. J4GQm9j0JZ0.003.mp4\)"):
        read_first_impressions(fi_videos, annotation)


def test_missing_trait_and_foreign_pickles_are_refused(fi_videos, tmp_path):
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps({"openness": {VIDEOS[0]: 0.5}}, protocol=2))
    with pytest.raises(ValueError, match="no .*'conscientiousness'.* annotations"):
        load_annotations(partial)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    hostile = tmp_path / "annotation_training.pkl"
    hostile.write_bytes(pickle.dumps({"openness": Exploit()}))
    with pytest.raises(ValueError, match="refers to .*system.*not loaded"):
        load_annotations(hostile)

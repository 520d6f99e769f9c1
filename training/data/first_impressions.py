"""ChaLearn First Impressions (V2) reader: mp4 clips + Big Five annotations.

The official annotation files (annotation_training.pkl, annotation_validation.pkl,
annotation_test.pkl) are Python 2 pickles of one dict:

    {"extraversion": {"<video>.mp4": 0.43, ...}, "neuroticism": {...}, "agreeableness": {...},
     "conscientiousness": {...}, "interview": {...}, "openness": {...}}

Values lie in [0, 1]. They are read with a restricted unpickler (only dicts, strings and numbers;
a pickle naming any other class is refused) and latin-1 strings, as Python 2 wrote them. A CSV with
a `video` column and one column per trait (and optionally `interview`) is accepted too.

Video names are <YouTube id>.<segment>.mp4; the YouTube id is the speaker (the person in the
channel), which keeps a person's segments together when splitting further.
"""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path
from typing import Any

from socialmae_rt.training.data.items import ClipItem, ItemList, Mismatches, check_on_mismatch
from socialmae_rt.training.data.tasks import PERSONALITY

INTERVIEW = "interview"  # the annotation's sixth score ("invite to an interview"), kept in meta
SPLIT_OF_ANNOTATION = {"training": "train", "validation": "val", "test": "test"}  # annotation_<name>.pkl
VIDEO_COLUMNS = ("video", "video_name", "videoname", "VideoName")
_NUMPY_SCALAR_GLOBALS = {  # what a pickle of numpy floats refers to; nothing else is allowed
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store the scalars' bytes
}


class _AnnotationUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_SCALAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"the annotation pickle refers to {module}.{name}; a First Impressions annotation holds only "
            "dicts of numbers, so it is not loaded"
        )


def load_annotations(path: str | Path) -> dict[str, dict[str, float]]:
    """video name -> {trait: value} (the five traits, plus 'interview' when the file has it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"First Impressions annotation file {path} does not exist")
    by_trait = _load_csv(path) if path.suffix.lower() == ".csv" else _load_pickle(path)
    traits = list(PERSONALITY.labels)
    missing = [trait for trait in traits if trait not in by_trait]
    if missing:
        raise ValueError(
            f"{path}: no {missing} annotations; expected the traits {traits} (and optionally {INTERVIEW!r}), "
            f"found {sorted(by_trait)}"
        )
    names = set().union(*(by_trait[trait] for trait in traits))
    by_video: dict[str, dict[str, float]] = {}
    for name in sorted(names):
        by_video[name] = {trait: by_trait[trait].get(name, math.nan) for trait in [*traits, INTERVIEW] if trait in by_trait}
    return by_video


def _load_pickle(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as f:
        try:
            data = _AnnotationUnpickler(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise ValueError(f"{path}: not a First Impressions annotation pickle ({error})") from error
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a dict trait -> {{video name: value}}, got {type(data).__name__}")
    return {str(trait): {str(name): value for name, value in values.items()} for trait, values in data.items()}


def _load_csv(path: Path) -> dict[str, dict[str, Any]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        video_column = next((c for c in columns if c in VIDEO_COLUMNS), None)
        if video_column is None:
            raise ValueError(f"{path}: needs a video-name column (one of {VIDEO_COLUMNS}), found {columns}")
        by_trait: dict[str, dict[str, Any]] = {c: {} for c in columns if c != video_column}
        for row in reader:
            for column, values in by_trait.items():
                if row[column] not in (None, ""):
                    values[row[video_column]] = _float(row[column])
    return by_trait


def _float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # refused later, with the clip's name, by the task's check


def read_first_impressions(
    video_dir: str | Path,
    annotation: str | Path,
    *,
    split: str | None = None,
    on_mismatch: str = "error",
) -> ItemList:
    """One ClipItem per annotated video found under `video_dir` (searched recursively).

    `split` defaults to the annotation file's own split (annotation_training -> "train",
    annotation_validation -> "val", annotation_test -> "test"). Problems (a video without
    annotation, an annotation without video, a value outside [0, 1], a video name found twice):
    see items.py (`on_mismatch`).
    """
    check_on_mismatch(on_mismatch)
    video_dir, annotation = Path(video_dir), Path(annotation)
    if not video_dir.is_dir():
        raise FileNotFoundError(f"First Impressions video folder {video_dir} does not exist")
    annotations = load_annotations(annotation)
    split = split if split is not None else _split_of(annotation)
    problems = Mismatches(f"First Impressions ({video_dir}, {annotation.name})")
    videos: dict[str, Path] = {}
    for path in sorted(video_dir.rglob("*.mp4")):
        if path.name in videos:
            problems.add("video name found twice", str(path.relative_to(video_dir)))
            continue
        videos[path.name] = path
    for name in sorted(set(videos) - set(annotations)):
        problems.add("video without annotation", name)
    for name in sorted(set(annotations) - set(videos)):
        problems.add("annotation without video", name)
    items = []
    for name in sorted(set(videos) & set(annotations)):
        scores = annotations[name]
        traits = {trait: scores[trait] for trait in PERSONALITY.labels}
        try:
            traits = PERSONALITY.check(traits, where=name)
        except ValueError:
            problems.add("trait value missing, not a number or outside [0, 1]", name)
            continue
        meta = {INTERVIEW: scores[INTERVIEW]} if INTERVIEW in scores and math.isfinite(scores[INTERVIEW]) else {}
        items.append(
            ClipItem(
                clip_id=name.removesuffix(".mp4"),
                video=videos[name],
                labels={PERSONALITY.name: traits},
                speaker=speaker_of(name),
                split=split,
                meta=meta,
            )
        )
    return problems.resolve(items, on_mismatch)


def speaker_of(video_name: str) -> str:
    """'J4GQm9j0JZ0.003.mp4' -> 'J4GQm9j0JZ0' (the YouTube video the segment was cut from)."""
    parts = video_name.removesuffix(".mp4").rsplit(".", 1)
    return parts[0] if len(parts) == 2 and parts[1].isdigit() else video_name.removesuffix(".mp4")


def _split_of(annotation: Path) -> str | None:
    stem = annotation.stem.lower()
    for name, split in SPLIT_OF_ANNOTATION.items():
        if name in stem:
            return split
    return None

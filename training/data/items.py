"""ClipItem: one clip of a dataset as readers list it, before anything is decoded.

Readers (CREMA-D, First Impressions, VoxCeleb2, generic manifests) return an `ItemList` of
ClipItems. Files and labels that do not match (a video without its label, a label without its
video, an unknown class) are gathered by `Mismatches` into one error that lists counts and
examples, or, with `on_mismatch="skip"`, left out and counted in `ItemList.skipped`, which
`prepare_data` copies into its report. Nothing is dropped silently.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from socialmae_rt.training.data.tasks import TaskSpec, resolve_tasks

ON_MISMATCH = ("error", "skip")
MAX_EXAMPLES = 5  # examples per problem kind in error messages and reports


class LabelMismatchError(ValueError):
    """Files and labels of a dataset do not match; the message lists what, how many and examples."""


@dataclass(frozen=True)
class ClipItem:
    """One clip to prepare: where its picture and sound are, which part, its labels, its speaker."""

    clip_id: str  # unique within a dataset; names the cache entry
    video: Path | None  # None: an audio-only clip
    audio: Path | None = None  # None: the video file's own audio track
    start_s: float | None = None  # segment of the file to use (None: from the start / to the end)
    end_s: float | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)  # task name -> value (see tasks.py)
    speaker: str | None = None  # who is seen and heard, for speaker-independent splits
    split: str | None = None  # "train" / "val" / "test" (or any name), None: not assigned
    meta: Mapping[str, Any] = field(default_factory=dict)  # dataset extras kept in the index (JSON-able)

    def __post_init__(self) -> None:
        if not isinstance(self.clip_id, str) or not self.clip_id.strip():
            raise ValueError(f"ClipItem.clip_id must be a non-empty string, got {self.clip_id!r}")
        for name in ("video", "audio"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (str, os.PathLike)) or not str(value):
                    raise ValueError(f"ClipItem {self.clip_id!r}: {name} must be a path or None, got {value!r}")
                object.__setattr__(self, name, Path(value))
        if self.video is None and self.audio is None:
            raise ValueError(f"ClipItem {self.clip_id!r}: needs a video file, an audio file, or both")
        for name in ("start_s", "end_s"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                    raise ValueError(f"ClipItem {self.clip_id!r}: {name} must be a time >= 0 in seconds or None, got {value!r}")
                object.__setattr__(self, name, float(value))
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"ClipItem {self.clip_id!r}: end_s ({self.end_s}) must be after start_s ({self.start_s})")
        for name in ("speaker", "split"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"ClipItem {self.clip_id!r}: {name} must be a non-empty string or None, got {value!r}")
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "meta", dict(self.meta))

    def with_split(self, split: str | None) -> "ClipItem":
        return replace(self, split=split)

    @property
    def sources(self) -> list[Path]:
        """The files this clip reads (video first)."""
        return [path for path in (self.video, self.audio) if path is not None]


class ItemList(list):
    """A list of ClipItems that also says what its reader left out: reason -> clip names."""

    def __init__(self, items: Iterable[ClipItem] = (), skipped: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(items)
        self.skipped: dict[str, list[str]] = {reason: list(names) for reason, names in (skipped or {}).items()}

    def __add__(self, other):  # concatenating two readers' lists keeps both skip records
        skipped = {reason: list(names) for reason, names in self.skipped.items()}
        for reason, names in getattr(other, "skipped", {}).items():
            skipped.setdefault(reason, []).extend(names)
        return ItemList(list(self) + list(other), skipped)


def check_on_mismatch(on_mismatch: str) -> None:
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}")


class Mismatches:
    """Collects problems by kind while a reader walks a dataset, then raises or skips once."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.problems: dict[str, list[str]] = {}

    def add(self, reason: str, name: str) -> None:
        self.problems.setdefault(reason, []).append(str(name))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def resolve(self, items: Sequence[ClipItem], on_mismatch: str) -> ItemList:
        """The items (sorted by clip id), or LabelMismatchError when there were problems and on_mismatch='error'."""
        check_on_mismatch(on_mismatch)
        items = sorted(items, key=lambda item: item.clip_id)
        if self.problems and on_mismatch == "error":
            raise LabelMismatchError(
                f"{self.dataset}: {self.describe()}. Fix the files or labels, or pass on_mismatch='skip' "
                "to leave these clips out (they are then counted in the prepare report)."
            )
        return ItemList(items, skipped=self.problems)

    def describe(self) -> str:
        total = sum(len(names) for names in self.problems.values())
        parts = [f"{reason}: {len(names)} ({describe_examples(names)})" for reason, names in sorted(self.problems.items())]
        return f"{total} problem(s) - " + "; ".join(parts)


def describe_examples(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:MAX_EXAMPLES])
    more = len(names) - MAX_EXAMPLES
    return f"e.g. {shown}" + (f" and {more} more" if more > 0 else "")


def check_items(items: Sequence[ClipItem], tasks: Sequence[str | TaskSpec] = ()) -> None:
    """One ValueError for duplicate clip ids, labels of tasks not listed, and labels a task refuses."""
    specs = {spec.name: spec for spec in resolve_tasks(tasks)}
    problems = Mismatches("clip list")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, ClipItem):
            raise TypeError(f"expected ClipItem objects, got {type(item).__name__}")
        if item.clip_id in seen:
            problems.add("duplicate clip id", item.clip_id)
        seen.add(item.clip_id)
        for task, value in item.labels.items():
            if task not in specs:
                problems.add(f"label for a task not listed ({task})", item.clip_id)
                continue
            try:
                specs[task].check(value)
            except ValueError as error:
                problems.add(f"bad {task} label ({_short(error)})", item.clip_id)
    if problems:
        raise LabelMismatchError(f"{problems.dataset}: {problems.describe()}; tasks given: {sorted(specs)}")


def _short(error: ValueError) -> str:
    text = str(error)
    return text if len(text) <= 120 else text[:117] + "..."

"""What a label means: task specifications and the known tasks of the paper.

A `TaskSpec` says how a clip's label for one task looks and how it becomes a training target:

| kind           | label value in a ClipItem             | target tensor            |
|----------------|---------------------------------------|--------------------------|
| classification | class name (str), one of `labels`     | int64 scalar (class index) |
| binary         | 0/1 (or a soft value in [0, 1])       | float32 scalar           |
| multilabel     | {label: 0/1 (or soft)} for every label | float32 [len(labels)]    |
| regression     | {label: float} for every label        | float32 [len(labels)]    |

Label values are checked once, when a reader or a manifest produces them (`TaskSpec.check`),
with messages that name the clip, the task and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS

TASK_KINDS = ("classification", "binary", "multilabel", "regression")


@dataclass(frozen=True)
class TaskSpec:
    """One supervised task: its name (= the model head's name), kind and label names."""

    name: str
    kind: str
    labels: tuple[str, ...]  # classes (classification) or output names (binary: exactly one)
    value_range: tuple[float, float] | None = None  # allowed target values (binary/multilabel: [0, 1])
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "." in self.name:
            raise ValueError(f"TaskSpec.name must be a non-empty string without '.', got {self.name!r}")
        if self.kind not in TASK_KINDS:
            raise ValueError(f"TaskSpec {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        labels = tuple(self.labels) if not isinstance(self.labels, str) else (self.labels,)
        object.__setattr__(self, "labels", labels)
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise ValueError(f"TaskSpec {self.name!r}: labels must be non-empty strings, got {list(labels)}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"TaskSpec {self.name!r}: labels must be unique, got {list(labels)}")
        if self.kind == "classification" and len(labels) < 2:
            raise ValueError(f"TaskSpec {self.name!r}: a classification needs at least 2 classes, got {list(labels)}")
        if self.kind == "binary" and len(labels) != 1:
            raise ValueError(
                f"TaskSpec {self.name!r}: a binary task has exactly one label name (what 1 means), got {list(labels)}; "
                "use kind='multilabel' for several independent yes/no labels"
            )
        value_range = self.value_range
        if value_range is None and self.kind in ("binary", "multilabel"):
            value_range = (0.0, 1.0)
        if value_range is not None:
            low, high = (float(v) for v in value_range)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"TaskSpec {self.name!r}: value_range must be (low, high) with low < high, got {value_range}")
            value_range = (low, high)
        object.__setattr__(self, "value_range", value_range)

    @property
    def num_outputs(self) -> int:
        """Width of the model head for this task."""
        return 1 if self.kind == "binary" else len(self.labels)

    def check(self, value: Any, where: str = "") -> Any:
        """The label in canonical form (see the module table); ValueError saying what was expected."""
        prefix = f"{where}: " if where else ""
        if self.kind == "classification":
            if not isinstance(value, str) or value not in self.labels:
                raise ValueError(f"{prefix}task {self.name!r}: unknown class {value!r}; expected one of {list(self.labels)}")
            return value
        if self.kind == "binary":
            return self._number(value, prefix, self.labels[0])
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{prefix}task {self.name!r} ({self.kind}): expected a mapping {{label: value}} over "
                f"{list(self.labels)}, got {type(value).__name__}"
            )
        missing = [label for label in self.labels if label not in value]
        unknown = sorted(set(value) - set(self.labels))
        if missing or unknown:
            raise ValueError(
                f"{prefix}task {self.name!r}: labels must be exactly {list(self.labels)}; "
                f"missing {missing}, unknown {unknown}"
            )
        return {label: self._number(value[label], prefix, label) for label in self.labels}

    def encode(self, value: Any) -> np.ndarray:
        """A checked label -> the target array (int64 scalar, float32 scalar or float32 [len(labels)])."""
        value = self.check(value)
        if self.kind == "classification":
            return np.asarray(self.labels.index(value), dtype=np.int64)
        if self.kind == "binary":
            return np.asarray(value, dtype=np.float32)
        return np.asarray([value[label] for label in self.labels], dtype=np.float32)  # [len(labels)]

    def _number(self, value: Any, prefix: str, label: str) -> float:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(float(value)):
            raise ValueError(f"{prefix}task {self.name!r}, label {label!r}: expected a finite number, got {value!r}")
        value = float(value)
        if self.value_range is not None and not self.value_range[0] <= value <= self.value_range[1]:
            raise ValueError(
                f"{prefix}task {self.name!r}, label {label!r}: {value} is outside {list(self.value_range)}"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "labels": list(self.labels),
            "value_range": None if self.value_range is None else list(self.value_range),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TaskSpec":
        value_range = data.get("value_range")
        return cls(
            name=data["name"],
            kind=data["kind"],
            labels=tuple(data["labels"]),
            value_range=None if value_range is None else tuple(value_range),
            description=data.get("description", ""),
        )


EMOTION = TaskSpec(
    "emotion", "classification", EMOTION_LABELS,
    description="CREMA-D's six emotions, alphabetical as the live pipeline reads the head",
)
LAUGHTER = TaskSpec("laughter", "binary", ("laughter",), description="laughing or not (NDC-ME)")
SMILE_LAUGHTER = TaskSpec(
    "smile_laughter", "multilabel", ("smile", "laughter"), description="smiling and laughing, independently (NDC-ME)"
)
PERSONALITY = TaskSpec(
    "personality", "regression", PERSONALITY_TRAITS, value_range=(0.0, 1.0),
    description="apparent Big Five (ChaLearn First Impressions), each in [0, 1]",
)

KNOWN_TASKS: dict[str, TaskSpec] = {task.name: task for task in (EMOTION, LAUGHTER, SMILE_LAUGHTER, PERSONALITY)}


def get_task(task: str | TaskSpec) -> TaskSpec:
    """A TaskSpec as given, or a known task by name."""
    if isinstance(task, TaskSpec):
        return task
    if task not in KNOWN_TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks are {sorted(KNOWN_TASKS)} (or pass a TaskSpec)")
    return KNOWN_TASKS[task]


def resolve_tasks(tasks: Sequence[str | TaskSpec]) -> list[TaskSpec]:
    """TaskSpecs for names or specs, refusing duplicates."""
    specs = [get_task(task) for task in tasks]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tasks listed twice: {duplicates}")
    return specs

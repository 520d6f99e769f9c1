"""Task bundles: which checkpoint serves which task.

`--weights` (CLI, demo, ROS parameter, launch YAML, bench) takes one of:
- nothing: random weights (warned);
- one checkpoint: a released `.pth`, one of our `.safetensors`, or an ONNX export directory;
- `task=checkpoint` entries, one per task, separated by spaces, e.g.
  `emotion=cremad.safetensors laughter=ndcme.safetensors personality=fi.safetensors`;
- a bundle directory made by `weights import` (its `bundle.json` lists task -> file).

Pure Python: reading a spec imports no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from socialmae_rt.tasks import PERCEPTION_TASKS
from socialmae_rt.util.documents import read_versioned_json
from socialmae_rt.weights.released import ENCODER_TASK

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = "socialmae_rt.bundle"
BUNDLE_VERSION = 1


@dataclass(frozen=True)
class BundleEntry:
    task: str
    path: str  # our .safetensors or an ONNX export directory


@dataclass(frozen=True)
class WeightsSpec:
    """What `--weights` asked for: one checkpoint (`single`), a bundle (`entries`), or neither (random)."""

    single: str | None = None
    entries: tuple[BundleEntry, ...] = ()
    encoder: str | None = None  # the bundle's pretrained encoder, when it has one (distillation starts there)

    @property
    def is_bundle(self) -> bool:
        return bool(self.entries)

    @property
    def tasks(self) -> dict[str, str]:
        return {entry.task: entry.path for entry in self.entries}

    def describe(self) -> str:
        if self.is_bundle:
            return " ".join(f"{e.task}={e.path}" for e in self.entries)
        return self.single or "random"


def split_weights(value: str | Sequence[str] | None) -> list[str]:
    """`--weights` as its items: a list as given, or a string split on whitespace (unless the whole
    string is an existing path: single paths may hold spaces, bundle entries may not)."""
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        return [value] if "=" not in value and os.path.exists(value) else value.split()
    return [item for item in value if item]


def parse_weights(value: str | Sequence[str] | None) -> WeightsSpec:
    """Read a `--weights` value; errors name the entry and what was expected."""
    items = split_weights(value)
    if not items:
        return WeightsSpec()
    pairs = [item for item in items if "=" in item]
    if not pairs:
        if len(items) > 1:
            raise ValueError(f"--weights: {len(items)} checkpoints given without tasks ({' '.join(items)}); "
                             "name each one's task: emotion=A laughter=B personality=C")
        if Path(items[0], BUNDLE_FILE).is_file():
            return read_bundle(items[0])
        return WeightsSpec(single=items[0])
    if len(pairs) != len(items):
        plain = [item for item in items if "=" not in item]
        raise ValueError(f"--weights: mix of task=checkpoint entries and plain paths ({' '.join(plain)}); "
                         "give every checkpoint as task=path")
    entries, seen = [], {}
    for item in items:
        task, _, path = item.partition("=")
        if task not in PERCEPTION_TASKS:
            raise ValueError(f"--weights {item}: unknown task {task!r}; expected one of {', '.join(PERCEPTION_TASKS)}")
        if not path:
            raise ValueError(f"--weights {item}: no checkpoint after '{task}='")
        if task in seen:
            raise ValueError(f"--weights: two checkpoints for {task} ({seen[task]} and {path}); give one per task")
        seen[task] = path
        entries.append(BundleEntry(task, path))
    return WeightsSpec(entries=_in_task_order(entries))


def _in_task_order(entries: list[BundleEntry]) -> tuple[BundleEntry, ...]:
    return tuple(sorted(entries, key=lambda e: PERCEPTION_TASKS.index(e.task)))


def read_bundle(directory: str | Path) -> WeightsSpec:
    """A bundle directory's tasks (paths resolved against the directory)."""
    directory = Path(directory)
    manifest = directory / BUNDLE_FILE
    document = read_versioned_json(manifest, BUNDLE_FORMAT, BUNDLE_VERSION)
    tasks = document.get("tasks") or {}
    unknown = sorted(set(tasks) - set(PERCEPTION_TASKS) - {ENCODER_TASK})
    if unknown:
        raise ValueError(f"{manifest}: unknown task(s) {unknown}; expected {', '.join(PERCEPTION_TASKS)}")
    entries = [BundleEntry(task, str(directory / name)) for task, name in tasks.items() if task != ENCODER_TASK]
    if not entries:
        raise ValueError(f"{manifest} lists no perception task yet (only {sorted(tasks) or 'nothing'}); "
                         "import a fine-tuned checkpoint into it: socialmae-rt weights import FILE --task emotion")
    encoder = str(directory / tasks[ENCODER_TASK]) if ENCODER_TASK in tasks else None
    return WeightsSpec(entries=_in_task_order(entries), encoder=encoder)


def write_bundle_entry(directory: str | Path, task: str, file_name: str) -> Path:
    """Add or replace `task` in `<directory>/bundle.json` (written atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / BUNDLE_FILE
    tasks = {}
    if manifest.is_file():
        tasks = dict(json.loads(manifest.read_text()).get("tasks") or {})
    tasks[task] = file_name
    order = [*PERCEPTION_TASKS, ENCODER_TASK]
    document = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
                "tasks": {t: tasks[t] for t in sorted(tasks, key=order.index)}}
    tmp = manifest.with_name(f".{BUNDLE_FILE}.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, manifest)
    return manifest

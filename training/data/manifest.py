"""Generic manifests: any dataset as a CSV or JSONL list of clips (NDC-ME goes through here too).

Columns (CSV header / JSONL keys), all optional except a `video` or an `audio` per row:

    clip_id   unique name; default: the video (else audio) path without suffix, plus @start-end
    video     video file (relative paths are relative to the manifest's folder)
    audio     separate audio file; empty: the video file's own audio track
    start,end segment of the file in seconds; empty: the whole file
    labels    a JSON object {task: value}, e.g. {"emotion": "happy", "laughter": 1}
    speaker   who is in the clip (speaker-independent splits)
    split     train / val / test (or any name)

Labels can also be columns: `<task>` for classification and binary tasks (a class name, or
0/1), `<task>.<label>` for multilabel and regression tasks (e.g. `personality.openness`,
`smile_laughter.smile`). An empty cell means the clip has no label for that task. Any other
column is refused, so a misspelt label column cannot be dropped unnoticed.

Rows that do not work (missing file, unknown class, bad number) are gathered into one error,
or skipped and counted with `on_mismatch="skip"` (see items.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from socialmae_rt.training.data.items import ClipItem, ItemList, Mismatches, check_on_mismatch
from socialmae_rt.training.data.tasks import LAUGHTER, SMILE_LAUGHTER, TaskSpec, resolve_tasks

MANIFEST_COLUMNS = ("clip_id", "video", "audio", "start", "end", "labels", "speaker", "split")
MANIFEST_SUFFIXES = (".csv", ".jsonl")


class _RowError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def read_manifest(
    path: str | Path,
    tasks: Sequence[str | TaskSpec] = (),
    *,
    on_mismatch: str = "error",
    check_files: bool = True,
) -> ItemList:
    """ClipItems from a CSV or JSONL manifest, labels checked against `tasks`."""
    check_on_mismatch(on_mismatch)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise ValueError(f"manifest {path}: expected a {' or '.join(MANIFEST_SUFFIXES)} file")
    specs = {spec.name: spec for spec in resolve_tasks(tasks)}
    rows = _csv_rows(path, specs) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    problems = Mismatches(f"manifest {path}")
    items: dict[str, ClipItem] = {}
    for number, row in rows:
        try:
            item = _item(row, path.parent, specs, check_files)
        except _RowError as error:
            problems.add(error.reason, f"row {number}: {error.detail}")
            continue
        if item.clip_id in items:
            problems.add("duplicate clip id", f"row {number}: {item.clip_id}")
            continue
        items[item.clip_id] = item
    if not items and not problems:
        raise ValueError(f"manifest {path} lists no clips")
    return problems.resolve(list(items.values()), on_mismatch)


def read_ndc_me(path: str | Path, tasks: Sequence[str | TaskSpec] = (LAUGHTER, SMILE_LAUGHTER), **kwargs) -> ItemList:
    """NDC-ME (laughter and smiles) from a generic manifest, e.g. columns video, start, end,
    speaker, laughter, smile_laughter.smile, smile_laughter.laughter."""
    return read_manifest(path, tasks, **kwargs)


# ----- rows -------------------------------------------------------------------------------------


def _csv_rows(path: Path, specs: Mapping[str, TaskSpec]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        _check_columns(path, columns, specs)
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            if None in row:
                raise ValueError(f"manifest {path}, row {number}: more cells than header columns")
            yield number, {column: value for column, value in row.items() if value not in ("", None)}


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"manifest {path}, line {number}: not JSON ({error})") from error
            if not isinstance(row, dict):
                raise ValueError(f"manifest {path}, line {number}: expected a JSON object, got {type(row).__name__}")
            unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
            if unknown:
                raise ValueError(
                    f"manifest {path}, line {number}: unknown key(s) {unknown}; expected {list(MANIFEST_COLUMNS)} "
                    "(labels go in the 'labels' object)"
                )
            yield number, {key: value for key, value in row.items() if value not in ("", None)}


def _check_columns(path: Path, columns: Sequence[str], specs: Mapping[str, TaskSpec]) -> None:
    label_columns = set(_label_columns(specs))
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS and c not in label_columns]
    if unknown:
        raise ValueError(
            f"manifest {path}: unknown column(s) {unknown}; expected {list(MANIFEST_COLUMNS)} or label columns "
            f"{sorted(label_columns) or '(no tasks given)'}"
        )
    if "video" not in columns and "audio" not in columns:
        raise ValueError(f"manifest {path}: needs a 'video' or an 'audio' column, found {list(columns)}")


def _label_columns(specs: Mapping[str, TaskSpec]) -> dict[str, tuple[str, str | None]]:
    """column name -> (task, label or None for single-column tasks)."""
    columns: dict[str, tuple[str, str | None]] = {}
    for spec in specs.values():
        if spec.kind in ("classification", "binary"):
            columns[spec.name] = (spec.name, None)
        else:
            columns.update({f"{spec.name}.{label}": (spec.name, label) for label in spec.labels})
    return columns


# ----- one item -----------------------------------------------------------------------------------


def _item(row: Mapping[str, Any], folder: Path, specs: Mapping[str, TaskSpec], check_files: bool) -> ClipItem:
    video = _path(row.get("video"), folder, check_files)
    audio = _path(row.get("audio"), folder, check_files)
    if video is None and audio is None:
        raise _RowError("no video or audio", "both are empty")
    start, end = _seconds(row, "start"), _seconds(row, "end")
    clip_id = str(row["clip_id"]) if "clip_id" in row else _default_clip_id(video or audio, folder, start, end)
    labels = _labels(row, specs, clip_id)
    try:
        return ClipItem(
            clip_id=clip_id,
            video=video,
            audio=audio,
            start_s=start,
            end_s=end,
            labels=labels,
            speaker=None if "speaker" not in row else str(row["speaker"]),
            split=None if "split" not in row else str(row["split"]),
        )
    except ValueError as error:
        raise _RowError("bad row", str(error)) from error


def _path(value: Any, folder: Path, check_files: bool) -> Path | None:
    if value is None:
        return None
    path = Path(str(value))
    path = path if path.is_absolute() else folder / path
    if check_files and not path.is_file():
        raise _RowError("file not found", str(path))
    return path


def _seconds(row: Mapping[str, Any], key: str) -> float | None:
    if key not in row:
        return None
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise _RowError("bad row", f"{key} {row[key]!r} is not a number of seconds") from None


def _default_clip_id(path: Path, folder: Path, start: float | None, end: float | None) -> str:
    try:
        name = path.relative_to(folder).with_suffix("").as_posix()
    except ValueError:
        name = path.with_suffix("").as_posix()
    if start is not None or end is not None:
        name += f"@{'' if start is None else f'{start:.3f}'}-{'' if end is None else f'{end:.3f}'}"
    return name


def _labels(row: Mapping[str, Any], specs: Mapping[str, TaskSpec], clip_id: str) -> dict[str, Any]:
    labels: dict[str, Any] = {}
    if "labels" in row:
        given = row["labels"]
        if isinstance(given, str):
            try:
                given = json.loads(given)
            except json.JSONDecodeError:
                raise _RowError("bad row", f"{clip_id}: labels {given!r} is not a JSON object") from None
        if not isinstance(given, dict):
            raise _RowError("bad row", f"{clip_id}: labels must be an object {{task: value}}, got {given!r}")
        labels.update(given)
    columns: dict[str, dict[str, Any]] = {}
    for column, (task, label) in _label_columns(specs).items():
        if column not in row:
            continue
        if task in labels:
            raise _RowError("bad row", f"{clip_id}: task {task!r} given both in 'labels' and as a column")
        if label is None:
            labels[task] = _cell(row[column], specs[task])
        else:
            columns.setdefault(task, {})[label] = _cell(row[column], specs[task])
    labels.update(columns)
    checked = {}
    for task, value in labels.items():
        if task not in specs:
            raise _RowError(f"label for a task not listed ({task})", clip_id)
        try:
            checked[task] = specs[task].check(value)
        except ValueError as error:
            raise _RowError(f"bad {task} label", f"{clip_id}: {error}") from None
    return checked


def _cell(value: Any, spec: TaskSpec) -> Any:
    """A CSV cell (text) as the task's value type; JSON values pass through."""
    if not isinstance(value, str) or spec.kind == "classification":
        return value
    text = value.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return value  # refused by the task's check, with the clip's name

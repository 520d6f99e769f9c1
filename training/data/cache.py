"""The prepared-data cache on disk: one .npz per clip, a JSONL index, the config it was made with.

    cache_dir/
      prepare_config.json   what shapes the cached content (crop mode, rates, detector, tracker)
      index.jsonl           one IndexEntry per prepared clip (sorted by clip id)
      report.json           the last prepare run's report
      clips/<name>.npz      per clip:
          frames        uint8   [N, S, S, 3]  BGR crops (as the live FaceCrop.bgr), N may be 0
          frame_times_s float64 [N]           crop times, seconds from the clip (segment) start
          audio         float32 [A]           mono at `sample_rate`, A may be 0
          meta          str (JSON)            clip id, source signature, config key, audio_start_s,
                                              sample_rate, duration_s, crop info, decode errors

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written clip that looks prepared. A clip is reused when its meta names the same sources
(path, size, mtime), the same segment and the same config key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

CACHE_FORMAT = "socialmae_rt.prepared/1"
CONFIG_FILE = "prepare_config.json"
INDEX_FILE = "index.jsonl"
REPORT_FILE = "report.json"
CLIPS_DIR = "clips"
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # what np.load raises on a bad file


@dataclass
class IndexEntry:
    """One prepared clip, as the index lists it (labels and split travel here, not in the .npz)."""

    clip_id: str
    file: str  # relative to the cache dir
    duration_s: float  # span covered by crops and audio
    num_frames: int
    num_samples: int
    audio_start_s: float
    sample_rate: int
    labels: dict[str, Any] = field(default_factory=dict)
    speaker: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # dataset extras from the reader
    video: str | None = None  # source files, for people reading the index
    audio: str | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def has_video(self) -> bool:
        return self.num_frames > 0

    @property
    def has_audio(self) -> bool:
        return self.num_samples > 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "has_video": self.has_video, "has_audio": self.has_audio}, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> "IndexEntry":
        data = json.loads(line)
        data.pop("has_video", None)
        data.pop("has_audio", None)
        return cls(**data)


@dataclass
class CachedClip:
    frames: np.ndarray  # uint8 [N, S, S, 3]
    frame_times_s: np.ndarray  # float64 [N]
    audio: np.ndarray  # float32 [A]
    meta: dict[str, Any]

    @property
    def audio_start_s(self) -> float:
        return float(self.meta["audio_start_s"])

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])


def clip_file_name(clip_id: str) -> str:
    """A file name for a clip id: readable part plus a hash (ids may hold '/' or clash when cleaned)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    digest = hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:10]
    return f"{CLIPS_DIR}/{readable}-{digest}.npz"


def source_signature(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """What identifies a source file's content cheaply: resolved path, size, modification time."""
    signature = []
    for path in paths:
        stat = path.stat()
        signature.append({"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return signature


def config_key(content: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def write_clip(path: Path, frames: np.ndarray, frame_times_s: np.ndarray, audio: np.ndarray,
               meta: Mapping[str, Any], compress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "frames": np.ascontiguousarray(frames, dtype=np.uint8),
        "frame_times_s": np.asarray(frame_times_s, dtype=np.float64),
        "audio": np.asarray(audio, dtype=np.float32),
        "meta": np.array(json.dumps(dict(meta), sort_keys=True)),
    }
    save = np.savez_compressed if compress else np.savez
    with _atomic(path, "wb") as f:
        save(f, **arrays)


def read_clip_meta(path: Path) -> dict[str, Any] | None:
    """The meta of a cached clip, or None when the file is missing or not a readable clip."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except _UNREADABLE:  # a foreign or damaged file is simply not a cache hit
        return None


def load_clip(path: Path) -> CachedClip:
    try:
        with np.load(path, allow_pickle=False) as data:
            return CachedClip(
                frames=data["frames"],
                frame_times_s=data["frame_times_s"],
                audio=data["audio"],
                meta=json.loads(str(data["meta"])),
            )
    except _UNREADABLE as error:
        raise OSError(f"prepared clip {path} cannot be read ({error}); run prepare_data again") from error


def load_clip_times(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(frame_times_s, meta) of a cached clip without decompressing its frames or audio."""
    try:
        with np.load(path, allow_pickle=False) as data:  # npz members load one by one, on access
            return data["frame_times_s"], json.loads(str(data["meta"]))
    except _UNREADABLE as error:
        raise OSError(f"prepared clip {path} cannot be read ({error}); run prepare_data again") from error


def read_index(cache_dir: Path) -> list[IndexEntry]:
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: prepare the data first (prepare_data(items, {cache_dir}, ...))")
    with path.open() as f:
        return [IndexEntry.from_json(line) for line in f if line.strip()]


def write_index(cache_dir: Path, entries: Iterable[IndexEntry]) -> None:
    lines = [entry.to_json() + "\n" for entry in sorted(entries, key=lambda e: e.clip_id)]
    with _atomic(Path(cache_dir) / INDEX_FILE, "w") as f:
        f.writelines(lines)


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with _atomic(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


class _atomic:
    """Open a temporary file beside `path`; on success rename it over `path`, on failure remove it."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path, self.mode = Path(path), mode

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self.file = os.fdopen(fd, self.mode)
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)

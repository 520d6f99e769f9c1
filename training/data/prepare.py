"""Decode once into an on-disk cache: face (or full-frame) crops at 2 fps and 16 kHz mono audio.

    report = prepare_data(items, "cache/crema_d", PrepareConfig(crop="full"))

Per clip: frames nearest a 2 fps grid are cropped exactly as live (decode.py, crops.py) and the
audio is decoded by the live file source; both are stored with their times (cache.py). Clips
that cannot be read, have no video, no face (crop="face") or no audio are skipped and counted
by reason, with examples, in the report, which is printed and written to cache_dir/report.json.
A clip without audio can be kept as video-only (`keep_video_only`), one without a face or video
as audio-only (`keep_audio_only`); the default skips both, so nothing is silently filled in.

Re-running is cheap: a clip whose cache file names the same sources (path, size, mtime), the
same segment and the same content config is not decoded again. Single-stream clips are cached
too (the keep flags decide, on every run, whether they enter the index); clips that could not be
read or had neither stream are tried again.
The index keeps entries of clips prepared by earlier runs that this run did not list, so
splits can be prepared one call at a time into one cache.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from socialmae_rt.faces.crop import DEFAULT_CROP_SIZE
from socialmae_rt.faces.detector import FaceDetector, FaceDetectorConfig
from socialmae_rt.faces.tracker import TrackerConfig
from socialmae_rt.features.config import AudioFeatureConfig, dataclass_from_dict
from socialmae_rt.training.data.cache import (
    CACHE_FORMAT, CONFIG_FILE, REPORT_FILE, IndexEntry, clip_file_name, config_key, read_clip_meta, read_index,
    read_json, source_signature, write_clip, write_index, write_json)
from socialmae_rt.training.data.crops import CROP_MODES, Crops, FaceTrackCropper, FullFrameCropper
from socialmae_rt.training.data.decode import NO_AUDIO, NO_VIDEO, UNREADABLE, ClipSkipped, decode_clip
from socialmae_rt.training.data.items import ClipItem, describe_examples

MIN_AUDIO_SAMPLES = AudioFeatureConfig().frame_length  # fewer than one filterbank frame is no audio
MAX_REPORT_EXAMPLES = 5


@dataclass
class PrepareConfig:
    crop: str = "face"  # "face": live face tracking and crops; "full": whole frame resized (reference CREMA-D)
    frame_rate: float = 2.0  # crops per second of clip (the model's 8 frames over 4 s)
    crop_size: int = DEFAULT_CROP_SIZE
    sample_rate: int = 16000  # audio rate in the cache (the model's)
    keep_video_only: bool = False  # a clip without audio: keep it video-only instead of skipping it
    keep_audio_only: bool = False  # a clip without video or face: keep it audio-only instead of skipping it
    detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    # Every grid frame is a detection frame (the tracker only sees the frames that get cropped).
    tracker: TrackerConfig = field(default_factory=lambda: TrackerConfig(detect_every_n_frames=1))
    compress: bool = True  # np.savez_compressed: smaller cache, a little slower to load
    workers: int = 1  # processes decoding clips in parallel
    progress: bool = True  # tqdm bar over clips
    print_report: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.detector, Mapping):
            self.detector = dataclass_from_dict(FaceDetectorConfig, self.detector, "PrepareConfig.detector")
        if isinstance(self.tracker, Mapping):
            self.tracker = dataclass_from_dict(TrackerConfig, self.tracker, "PrepareConfig.tracker")
        if self.crop not in CROP_MODES:
            raise ValueError(f"PrepareConfig.crop must be one of {CROP_MODES}, got {self.crop!r}")
        if not (isinstance(self.frame_rate, (int, float)) and self.frame_rate > 0):
            raise ValueError(f"PrepareConfig.frame_rate must be > 0 crops per second (2 for the model), got {self.frame_rate!r}")
        for name in ("crop_size", "sample_rate", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PrepareConfig.{name} must be an int >= 1, got {value!r}")
        if self.tracker.detect_every_n_frames != 1:
            raise ValueError(
                "PrepareConfig.tracker.detect_every_n_frames must be 1: prepare hands the tracker only the frames "
                f"it crops (frame_rate), so each must be a detection frame; got {self.tracker.detect_every_n_frames}"
            )
        if self.tracker.crop_size != self.crop_size:
            raise ValueError(
                f"PrepareConfig.tracker.crop_size ({self.tracker.crop_size}) must equal crop_size ({self.crop_size})"
            )

    def content(self) -> dict[str, Any]:
        """The fields that shape cached clips (not workers, progress or what is kept)."""
        content = {"format": CACHE_FORMAT, "crop": self.crop, "frame_rate": float(self.frame_rate),
                   "crop_size": self.crop_size, "sample_rate": self.sample_rate}
        if self.crop == "face":
            content["detector"] = asdict(self.detector)
            content["tracker"] = asdict(self.tracker)
        return content


@dataclass
class PrepareReport:
    cache_dir: str
    total: int = 0  # clips given
    prepared: int = 0  # decoded and written by this run
    cached: int = 0  # already in the cache, reused
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> "clip: detail", a few
    read_skipped: dict[str, int] = field(default_factory=dict)  # left out by the readers (ItemList.skipped)
    read_examples: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def kept(self) -> int:
        return self.prepared + self.cached

    def count_skip(self, reason: str, clip_id: str, detail: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_REPORT_EXAMPLES:
            examples.append(f"{clip_id}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kept": self.kept}

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        lines = [
            f"prepare_data -> {self.cache_dir}: {self.total} clip(s): {self.prepared} prepared, "
            f"{self.cached} already cached, {skipped} skipped{f' ({reasons})' if reasons else ''} "
            f"in {self.seconds:.1f} s"
        ]
        for reason in sorted(self.examples):
            lines += [f"  {reason}: {example}" for example in self.examples[reason]]
        if self.read_skipped:
            lines.append("  left out by the readers: " + "; ".join(
                f"{reason}: {count} ({self.read_examples[reason]})" for reason, count in sorted(self.read_skipped.items())))
        return "\n".join(lines)


@dataclass
class _Outcome:
    clip_id: str
    status: str  # "prepared" | "cached" | "skipped"
    entry: IndexEntry | None = None
    reason: str = ""
    detail: str = ""


def prepare_data(items: Sequence[ClipItem], cache_dir: str | Path, config: PrepareConfig | None = None) -> PrepareReport:
    """Decode `items` into `cache_dir` (see the module doc); returns the report (also report.json)."""
    config = config or PrepareConfig()
    cache_dir = Path(cache_dir)
    _check_unique(items)
    _check_cache_config(cache_dir, config)
    started = time.perf_counter()
    report = PrepareReport(cache_dir=str(cache_dir), total=len(items))
    for reason, names in getattr(items, "skipped", {}).items():
        report.read_skipped[reason] = len(names)
        report.read_examples[reason] = describe_examples(names)
    entries = {entry.clip_id: entry for entry in _existing_index(cache_dir)}
    bar = tqdm(total=len(items), desc=f"prepare ({config.crop} crops)", unit="clip", disable=not config.progress)
    try:
        for outcome in _outcomes(items, cache_dir, config):
            entries.pop(outcome.clip_id, None)
            if outcome.status == "skipped":
                report.count_skip(outcome.reason, outcome.clip_id, outcome.detail)
            else:
                entries[outcome.clip_id] = outcome.entry
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            bar.update(1)
            bar.set_postfix(skipped=sum(report.skipped.values()), refresh=False)
    finally:
        bar.close()
        write_index(cache_dir, entries.values())
        report.seconds = time.perf_counter() - started
        write_json(cache_dir / REPORT_FILE, report.to_dict())
    if config.print_report:
        print(report.summary(), flush=True)
    return report


def _outcomes(items: Sequence[ClipItem], cache_dir: Path, config: PrepareConfig):
    if config.workers == 1 or len(items) <= 1:
        preparer = ClipPreparer(cache_dir, config)
        try:
            for item in items:
                yield preparer(item)
        finally:
            preparer.close()
        return
    # spawn: MediaPipe graphs and torch thread pools do not survive fork; each worker builds its own.
    context = multiprocessing.get_context("spawn")
    with context.Pool(config.workers, initializer=_init_worker, initargs=(cache_dir, config)) as pool:
        yield from pool.imap_unordered(_prepare_in_worker, items, chunksize=1)


class ClipPreparer:
    """Prepares one clip at a time into the cache; holds the face detector between clips."""

    def __init__(self, cache_dir: Path, config: PrepareConfig) -> None:
        self.cache_dir, self.config = Path(cache_dir), config
        self.key = config_key(config.content())
        self._detector: FaceDetector | None = None

    def __call__(self, item: ClipItem) -> _Outcome:
        try:
            return self._prepare(item)
        except ClipSkipped as skipped:
            return _Outcome(item.clip_id, "skipped", reason=skipped.reason, detail=skipped.detail)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def _prepare(self, item: ClipItem) -> _Outcome:
        file = clip_file_name(item.clip_id)
        path = self.cache_dir / file
        signature = self._signature(item)
        meta = read_clip_meta(path)
        if meta is not None and meta.get("signature") == signature and meta.get("config_key") == self.key:
            self._check_keep(meta.get("video_problem"), meta.get("audio_problem"))
            return _Outcome(item.clip_id, "cached", entry=_entry(item, file, meta))
        crops, audio, stats, problems = self._decode(item)
        samples = np.zeros(0, np.float32) if audio is None else audio.samples  # [A]
        audio_start_s = 0.0 if audio is None else audio.start_s
        audio_end_s = audio_start_s + samples.size / self.config.sample_rate
        meta = {
            "format": CACHE_FORMAT,
            "clip_id": item.clip_id,
            "signature": signature,
            "config_key": self.key,
            "num_frames": int(crops.frames.shape[0]),
            "num_samples": int(samples.size),
            "audio_start_s": audio_start_s,
            "sample_rate": self.config.sample_rate,
            "duration_s": max(stats.video_end_s or 0.0, audio_end_s if samples.size else 0.0),
            "crops": crops.info,
            "frames_decoded": stats.frames_decoded,
            "decode_errors": stats.decode_errors,
            "video_problem": problems[0],  # [reason, detail] of a clip kept audio-only, else None
            "audio_problem": problems[1],  # [reason, detail] of a clip kept video-only, else None
        }
        write_clip(path, crops.frames, crops.times_s, samples, meta, self.config.compress)
        self._check_keep(*problems)  # a single-stream clip stays cached even when this run skips it
        return _Outcome(item.clip_id, "prepared", entry=_entry(item, file, meta))

    def _signature(self, item: ClipItem) -> dict[str, Any]:
        try:
            sources = source_signature(item.sources)
        except OSError as error:
            raise ClipSkipped(UNREADABLE, f"{error.filename or ''}: {error.strerror or error}") from error
        return {"sources": sources, "start_s": item.start_s, "end_s": item.end_s}

    def _decode(self, item: ClipItem):
        cropper = self._cropper() if item.video is not None else None
        audio, stats = decode_clip(item, cropper, frame_rate=self.config.frame_rate, sample_rate=self.config.sample_rate)
        crops = Crops(np.zeros((0, self.config.crop_size, self.config.crop_size, 3), np.uint8), np.zeros(0))
        video_problem = None
        if item.video is not None and not stats.has_video_track:
            video_problem = (NO_VIDEO, f"{item.video.name} has no video track")
        elif item.video is not None and stats.frames_decoded == 0:
            where = "" if item.start_s is None and item.end_s is None else f" in [{item.start_s}, {item.end_s}] s"
            video_problem = (NO_VIDEO, f"{item.video.name}: no video frame decoded{where}")
        elif cropper is not None:
            try:
                crops = cropper.result()
            except ClipSkipped as skipped:
                video_problem = (skipped.reason, skipped.detail)
        if audio is not None and audio.samples.size < MIN_AUDIO_SAMPLES:
            audio = None
        audio_problem = None if audio is not None else (NO_AUDIO, self._no_audio_detail(item, stats))
        if video_problem is not None and audio_problem is not None:
            raise ClipSkipped(*video_problem)  # neither stream: nothing to keep
        return crops, audio, stats, (video_problem and list(video_problem), audio_problem and list(audio_problem))

    def _check_keep(self, video_problem, audio_problem) -> None:
        """Skip a clip missing a stream unless the config keeps such clips single-stream."""
        if video_problem is not None and not self.config.keep_audio_only:
            raise ClipSkipped(*video_problem)
        if audio_problem is not None and not self.config.keep_video_only:
            raise ClipSkipped(*audio_problem)

    @staticmethod
    def _no_audio_detail(item: ClipItem, stats) -> str:
        source = item.audio or item.video
        if not stats.has_audio_track:
            return f"{source.name} has no audio track"
        return f"{source.name}: under {MIN_AUDIO_SAMPLES} audio samples decoded"

    def _cropper(self):
        if self.config.crop == "full":
            return FullFrameCropper(self.config.crop_size)
        if self._detector is None:
            self._detector = FaceDetector(self.config.detector)
        return FaceTrackCropper(self._detector, self.config.tracker)


def _entry(item: ClipItem, file: str, meta: Mapping[str, Any]) -> IndexEntry:
    return IndexEntry(
        clip_id=item.clip_id,
        file=file,
        duration_s=float(meta["duration_s"]),
        num_frames=int(meta["num_frames"]),
        num_samples=int(meta["num_samples"]),
        audio_start_s=float(meta["audio_start_s"]),
        sample_rate=int(meta["sample_rate"]),
        labels=dict(item.labels),
        speaker=item.speaker,
        split=item.split,
        meta=dict(item.meta),
        video=None if item.video is None else str(item.video),
        audio=None if item.audio is None else str(item.audio),
        start_s=item.start_s,
        end_s=item.end_s,
    )


def _check_unique(items: Sequence[ClipItem]) -> None:
    seen, duplicates = set(), []
    for item in items:
        if not isinstance(item, ClipItem):
            raise TypeError(f"prepare_data takes ClipItem objects (from a reader), got {type(item).__name__}")
        if item.clip_id in seen:
            duplicates.append(item.clip_id)
        seen.add(item.clip_id)
    if duplicates:
        raise ValueError(f"prepare_data: {len(duplicates)} duplicate clip id(s) ({describe_examples(duplicates)})")


def _check_cache_config(cache_dir: Path, config: PrepareConfig) -> None:
    """One cache holds clips made one way: refuse a run with other content settings."""
    path = cache_dir / CONFIG_FILE
    existing = read_json(path)
    wanted = config.content()
    if existing is not None and existing != wanted:
        changed = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
        raise ValueError(
            f"{cache_dir} was prepared with other settings ({', '.join(changed)} differ: cache has "
            f"{ {k: existing.get(k) for k in changed} }, this run asks for { {k: wanted.get(k) for k in changed} }); "
            "use another cache_dir, or delete this one to prepare it again"
        )
    if existing is None:
        write_json(path, wanted)


def _existing_index(cache_dir: Path) -> list[IndexEntry]:
    try:
        return read_index(cache_dir)
    except FileNotFoundError:
        return []


# ----- worker processes ------------------------------------------------------------------------

_worker: ClipPreparer | None = None


def _init_worker(cache_dir: Path, config: PrepareConfig) -> None:
    global _worker
    _worker = ClipPreparer(cache_dir, config)


def _prepare_in_worker(item: ClipItem) -> _Outcome:
    return _worker(item)

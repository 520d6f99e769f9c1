"""WindowDataset: 4 s audio-visual windows from a prepared cache, preprocessed exactly as live.

Each item is one window of one clip (windows.py): the frames the live buffer would pick and the
audio of the same interval, through the live preprocessing (`frames_to_model_input`,
`audio_to_model_input`). Window choice by `mode`:

- "random" (training): a random window end per clip and epoch. The generator is seeded with
  (seed, epoch, index), so a run is reproducible whatever the DataLoader workers or the
  DistributedSampler do; call `set_epoch(epoch)` each epoch (the Trainer does) for new windows.
- "center" (evaluation): the window nearest the middle of each clip.
- "all" (evaluation): fixed windows at least `hop_s` apart over every clip; one item per window,
  grouped by "clip_id" when scoring per clip.

An item is a dict:
    audio     float32 tensor [1024, 128], or None when the clip has no audio
    video     float32 tensor [3, 224, 224, 8], or None when the clip has no crops
    targets   {task: tensor} (tasks.py: int64 scalar / float32 scalar / float32 [labels])
    clip_id   str
    window    float64 tensor [2]: window start and end, seconds from the clip start
    video_fill  fraction of the 8 frame slots that had their own crop (the rest repeat)

`collate` stacks items; where some clips of a batch lack a stream it puts zeros in their rows
and the boolean masks `has_audio` / `has_video` [B] say which rows are real (a stream no clip
has is None).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from socialmae_rt.features import PreprocessConfig, audio_to_model_input, frames_to_model_input
from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.stream.buffer import BufferConfig
from socialmae_rt.training.data.cache import IndexEntry, load_clip, load_clip_times, read_index
from socialmae_rt.training.data.items import describe_examples
from socialmae_rt.training.data.tasks import TaskSpec, resolve_tasks
from socialmae_rt.training.data.windows import (
    ClipSpan, centre_end, cut_audio, pick_frames, spaced_ends, window_ends, window_start_ns)

WINDOW_MODES = ("random", "center", "all")


@dataclass(frozen=True)
class _Slot:
    clip: int  # index into the dataset's entries
    end_ns: int | None  # fixed window end ("all" mode), None: chosen per item


class WindowDataset(Dataset):
    def __init__(
        self,
        cache_dir: str | Path,
        split: str | Sequence[str] | None = None,
        tasks: Sequence[str | TaskSpec] = (),
        *,
        mode: str = "random",
        seed: int = 0,
        hop_s: float = 4.0,
        preprocess: PreprocessConfig | None = None,
        window: BufferConfig | None = None,
    ) -> None:
        """Windows of the clips of `split` (a name, several, or None for all) in a prepared cache.

        Every clip must have a label for every task in `tasks`. `window` holds the window rule
        (BufferConfig, as live); `preprocess` the features (PreprocessConfig, as the checkpoint).
        """
        if mode not in WINDOW_MODES:
            raise ValueError(f"mode must be one of {WINDOW_MODES}, got {mode!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        if not hop_s > 0:
            raise ValueError(f"hop_s must be > 0 seconds, got {hop_s!r}")
        self.cache_dir = Path(cache_dir)
        self.mode, self.seed, self.hop_s = mode, seed, hop_s
        self.preprocess = preprocess or PreprocessConfig()
        self.window = window or BufferConfig()
        self._check_window_matches_model()
        self.tasks = resolve_tasks(tasks)
        self.entries = self._select(read_index(self.cache_dir), split)
        self._check_labels()
        self.epoch = 0
        self._slots = self._make_slots()

    # ----- setup --------------------------------------------------------------------------------
    def _check_window_matches_model(self) -> None:
        video = self.preprocess.video
        if self.window.num_frames != video.num_frames or abs(self.window.window_s - video.window_seconds) > 1e-9:
            raise ValueError(
                f"window ({self.window.num_frames} frames over {self.window.window_s} s) does not match the model's "
                f"video input ({video.num_frames} frames at {video.fps} fps = {video.window_seconds} s)"
            )

    def _select(self, entries: list[IndexEntry], split) -> list[IndexEntry]:
        if split is None:
            chosen = entries
        else:
            names = {split} if isinstance(split, str) else set(split)
            chosen = [entry for entry in entries if entry.split in names]
        if not chosen:
            available = sorted({str(entry.split) for entry in entries})
            raise ValueError(f"{self.cache_dir}: no prepared clips in split {split!r}; splits there: {available}")
        return chosen

    def _check_labels(self) -> None:
        for task in self.tasks:
            missing = [entry.clip_id for entry in self.entries if task.name not in entry.labels]
            if missing:
                raise ValueError(
                    f"{self.cache_dir}: {len(missing)} of {len(self.entries)} clips have no {task.name!r} label "
                    f"({describe_examples(missing)}); choose tasks every clip has, or prepare them separately"
                )
            for entry in self.entries:
                task.check(entry.labels[task.name], where=entry.clip_id)

    def _make_slots(self) -> list[_Slot]:
        if self.mode != "all":
            return [_Slot(index, None) for index in range(len(self.entries))]
        slots = []
        for index, entry in enumerate(self.entries):
            windows = window_ends(self._span_of_entry(entry), self.window)
            slots += [_Slot(index, int(end)) for end in spaced_ends(windows, self.hop_s)]
        return slots

    def _span_of_entry(self, entry: IndexEntry) -> ClipSpan:
        """What a clip covers, read without decompressing its frames (for laying out 'all' windows)."""
        times, meta = load_clip_times(self.cache_dir / entry.file)
        return ClipSpan.of(times, meta["audio_start_s"], meta["num_samples"], meta["sample_rate"])

    # ----- Dataset ------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """New random windows for each epoch (same epoch, same windows)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, index: int) -> dict[str, Any]:
        slot = self._slots[index]
        entry = self.entries[slot.clip]
        clip = load_clip(self.cache_dir / entry.file)
        span = ClipSpan.of(clip.frame_times_s, clip.audio_start_s, clip.audio.size, clip.sample_rate)
        windows = window_ends(span, self.window)
        end_ns = slot.end_ns if slot.end_ns is not None else self._choose_end(windows, index)
        start_ns = window_start_ns(windows, end_ns, self.window)
        audio = video = None
        fill = 0.0
        if span.has_audio:
            samples = cut_audio(clip.audio, span, start_ns, end_ns, clip.sample_rate)  # [<= 64000]
            audio = torch.from_numpy(audio_to_model_input(samples, clip.sample_rate, self.preprocess.audio))  # [1024, 128]
        if span.has_video:
            picked = pick_frames(clip.frames, span.frame_times_ns, end_ns, self.window)
            if picked is None:  # cannot happen for ends on crop times; say so if it ever does
                raise RuntimeError(f"{entry.clip_id}: no crop for the window ending at {end_ns / NS_PER_SECOND:.3f} s")
            video = torch.from_numpy(frames_to_model_input(picked.frames, self.preprocess.video, input_order="BGR"))  # [3, 224, 224, 8]
            fill = picked.fill
        return {
            "audio": audio,
            "video": video,
            "targets": {task.name: torch.from_numpy(task.encode(entry.labels[task.name])) for task in self.tasks},
            "clip_id": entry.clip_id,
            "window": torch.tensor([start_ns / NS_PER_SECOND, end_ns / NS_PER_SECOND], dtype=torch.float64),
            "video_fill": fill,
        }

    def _choose_end(self, windows, index: int) -> int:
        if self.mode == "center":
            return centre_end(windows)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(windows.ends_ns[rng.integers(windows.ends_ns.size)])

    # ----- helpers --------------------------------------------------------------------------------
    def clip_ids(self) -> list[str]:
        return [self.entries[slot.clip].clip_id for slot in self._slots]


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack WindowDataset items into a batch (see the module doc for missing streams)."""
    if not items:
        raise ValueError("collate got an empty batch")
    batch: dict[str, Any] = {}
    for key in ("audio", "video"):
        present = [item[key] is not None for item in items]
        batch[f"has_{key}"] = torch.tensor(present, dtype=torch.bool)  # [B]
        if not any(present):
            batch[key] = None
            continue
        shape = next(item[key] for item in items if item[key] is not None).shape
        batch[key] = torch.stack(
            [item[key] if item[key] is not None else torch.zeros(shape, dtype=torch.float32) for item in items]
        )  # [B, 1024, 128] or [B, 3, 224, 224, 8]
    task_names = items[0]["targets"].keys()
    batch["targets"] = {name: torch.stack([item["targets"][name] for item in items]) for name in task_names}
    batch["clip_id"] = [item["clip_id"] for item in items]
    batch["window"] = torch.stack([item["window"] for item in items])  # [B, 2]
    batch["video_fill"] = torch.tensor([item["video_fill"] for item in items], dtype=torch.float32)  # [B]
    return batch

"""Any folder of videos as unlabelled clips (distillation needs no labels): every video file below
the root, the folder it sits in as its speaker, split speaker-independently."""

from __future__ import annotations

from pathlib import Path

from socialmae_rt.training.data.items import ClipItem, ItemList
from socialmae_rt.training.data.splits import SplitConfig, speaker_split

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".webm", ".flv", ".mov")


def read_video_folder(root: str | Path, split: SplitConfig | None = None) -> ItemList:
    """One unlabelled ClipItem per video under `root` (recursively); clip id = its path below root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist")
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
    if not videos:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTS)}) under {root}")
    items = [ClipItem(clip_id=path.relative_to(root).with_suffix("").as_posix(), video=path,
                      speaker=path.parent.relative_to(root).as_posix() or path.stem) for path in videos]
    return speaker_split(items, split)

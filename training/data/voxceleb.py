"""VoxCeleb2 reader (pretraining, no labels): root/<speaker id>/<YouTube id>/<clip>.mp4.

The sound comes from each mp4's own audio track, or, with `audio_root`, from a parallel tree
with the same layout (VoxCeleb2 ships its audio as root/<id>/<video>/<clip>.m4a; WAV and AAC
trees work the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from socialmae_rt.training.data.items import ClipItem, ItemList, Mismatches, check_on_mismatch

AUDIO_EXTS = (".m4a", ".aac", ".wav")


def read_voxceleb2(
    video_root: str | Path,
    audio_root: str | Path | None = None,
    *,
    video_ext: str = ".mp4",
    audio_exts: Sequence[str] = AUDIO_EXTS,
    split: str | None = None,
    on_mismatch: str = "error",
) -> ItemList:
    """One unlabelled ClipItem per video; clip id '<id>/<video>/<clip>', speaker = the id."""
    check_on_mismatch(on_mismatch)
    video_root = Path(video_root)
    videos = _tree(video_root, (video_ext,), "VoxCeleb2 video root")
    if not videos:
        raise FileNotFoundError(f"no <id>/<video>/<clip>{video_ext} files under {video_root}")
    audios = _tree(Path(audio_root), tuple(audio_exts), "VoxCeleb2 audio root") if audio_root is not None else {}
    problems = Mismatches(f"VoxCeleb2 at {video_root}")
    if audio_root is not None:
        for clip_id in sorted(set(videos) - set(audios)):
            problems.add(f"video without an audio file ({'/'.join(audio_exts)}) in {audio_root}", clip_id)
        for clip_id in sorted(set(audios) - set(videos)):
            problems.add("audio file without a video", clip_id)
    items = [
        ClipItem(clip_id=clip_id, video=path, audio=audios.get(clip_id), speaker=clip_id.split("/")[0], split=split)
        for clip_id, path in videos.items()
        if audio_root is None or clip_id in audios
    ]
    return problems.resolve(items, on_mismatch)


def _tree(root: Path, exts: tuple[str, ...], what: str) -> dict[str, Path]:
    """'<id>/<video>/<clip>' -> path, for files three levels below `root` with one of `exts`."""
    if not root.is_dir():
        raise FileNotFoundError(f"{what} {root} does not exist")
    found: dict[str, Path] = {}
    for path in sorted(root.glob("*/*/*")):
        if path.is_file() and path.suffix.lower() in exts:
            clip_id = "/".join(path.relative_to(root).with_suffix("").parts)
            found.setdefault(clip_id, path)  # first extension in sorted order wins if a clip has two
    return found

"""CREMA-D reader: root/VideoFlash/*.flv + root/AudioWAV/*.wav, labels from the file names.

File names are <speaker>_<sentence>_<emotion>_<level>, e.g. 1001_DFA_ANG_XX: actor 1001 says
sentence DFA ("Don't forget a jacket") in anger, level unspecified. The emotion codes map to the
live pipeline's class names (EMOTION_LABELS, alphabetical). The speaker is the actor number, so
`split=SplitConfig(...)` gives speaker-independent splits.
"""

from __future__ import annotations

import re
from pathlib import Path

from socialmae_rt.training.data.items import ClipItem, ItemList, Mismatches, check_on_mismatch
from socialmae_rt.training.data.splits import SplitConfig, speaker_split
from socialmae_rt.training.data.tasks import EMOTION

EMOTION_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
NAME_PATTERN = re.compile(r"^(?P<speaker>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


def parse_crema_d_name(stem: str) -> dict[str, str] | None:
    """{'speaker', 'sentence', 'emotion' (code), 'level'} of a CREMA-D file stem, or None."""
    match = NAME_PATTERN.match(stem)
    return match.groupdict() if match else None


def read_crema_d(
    root: str | Path,
    *,
    video_dir: str = "VideoFlash",
    audio_dir: str | None = "AudioWAV",
    video_ext: str = ".flv",
    audio_ext: str = ".wav",
    split: SplitConfig | None = None,
    on_mismatch: str = "error",
) -> ItemList:
    """One ClipItem per clip, labelled for the `emotion` task, speaker = actor id.

    `audio_dir=None` takes the sound from the video files' own audio tracks instead of the WAVs.
    With `split`, clips get speaker-independent splits (see splits.py). Files that do not pair
    up or whose names do not parse: see items.py (`on_mismatch`).
    """
    check_on_mismatch(on_mismatch)
    root = Path(root)
    videos = _files(root / video_dir, video_ext, "CREMA-D video folder")
    audios = _files(root / audio_dir, audio_ext, "CREMA-D audio folder") if audio_dir is not None else {}
    problems = Mismatches(f"CREMA-D at {root}")
    if audio_dir is not None:
        for stem in sorted(set(videos) - set(audios)):
            problems.add(f"video without a {audio_ext} file in {audio_dir}/", stem)
        for stem in sorted(set(audios) - set(videos)):
            problems.add(f"{audio_ext} file without a video in {video_dir}/", stem)
    items = []
    for stem in sorted(set(videos) & set(audios) if audio_dir is not None else videos):
        fields = parse_crema_d_name(stem)
        if fields is None:
            problems.add("file name not <speaker>_<sentence>_<emotion>_<level>", stem)
            continue
        emotion = EMOTION_CODES.get(fields["emotion"])
        if emotion is None:
            problems.add(f"unknown emotion code (expected one of {sorted(EMOTION_CODES)})", stem)
            continue
        items.append(
            ClipItem(
                clip_id=stem,
                video=videos[stem],
                audio=audios.get(stem),
                labels={EMOTION.name: emotion},
                speaker=fields["speaker"],
                meta={"sentence": fields["sentence"], "level": fields["level"]},
            )
        )
    result = problems.resolve(items, on_mismatch)
    return speaker_split(result, split) if split is not None else result


def _files(folder: Path, ext: str, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} {folder} does not exist (expected the dataset's layout: root/VideoFlash, root/AudioWAV)")
    return {path.stem: path for path in sorted(folder.iterdir()) if path.is_file() and path.suffix.lower() == ext.lower()}

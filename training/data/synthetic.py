"""A generated audio-visual dataset whose labels are learnable: real media files, written by PyAV.

Class k is shown and heard: the picture's background has colour CLASS_COLOURS_BGR[k] and the
sound is a tone at CLASS_PITCHES_HZ[k]. Each clip varies (brightness, picture position and
drift, pixel noise, pitch within +-2 %, tone phase, audio noise, duration 4-6 s), so a model
must learn the colour/pitch rule rather than memorise files. Pictures:

- "shape": a drawn cartoon head (for crop="full"; MediaPipe happens to detect it as a face too);
- "face": matplotlib's bundled photograph of Grace Hopper, which MediaPipe detects (crop="face");
- "none": a moving grey bar, nothing face-like (a clip without a face).

Sound goes in the mp4 (h264 + AAC), in a separate WAV beside a silent mp4, or nowhere.
`make_synthetic_dataset` writes N clips per class and a generic manifest (CSV with labels,
speakers and speaker-independent splits), read back through `read_manifest` like any dataset.
`write_synthetic_clip` writes one clip whose class may change over time (a timeline), for tests
that must tell which interval a window's audio and frames came from.

Everything is small (160x120 at 10 fps, 16 kHz mono) so a dozen clips take about a second.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import av
import cv2
import numpy as np

from socialmae_rt.training.data.items import ItemList
from socialmae_rt.training.data.manifest import read_manifest
from socialmae_rt.training.data.splits import SplitConfig, assign_speaker_splits
from socialmae_rt.training.data.tasks import TaskSpec, get_task

CLASS_COLOURS_BGR = ((40, 40, 210), (40, 190, 40), (210, 70, 40), (40, 210, 220), (210, 60, 210), (220, 210, 60))
CLASS_PITCHES_HZ = (300.0, 500.0, 800.0, 1250.0, 2000.0, 3150.0)
MAX_CLASSES = len(CLASS_COLOURS_BGR)
LABEL_AS = ("synthetic", "emotion")
PICTURES = ("shape", "face", "none")
AUDIO_PLACES = ("track", "wav", "none")
# Container suffix -> (video encoder, audio encoder in that container).
CONTAINER_CODECS = {".mp4": ("libx264", "aac"), ".flv": ("flv", "libmp3lame"), ".mkv": ("libx264", "aac")}
TONE_AMPLITUDE = 0.3
AUDIO_NOISE = 0.01
PIXEL_NOISE = 6.0
GRACE_HOPPER = "grace_hopper.jpg"  # matplotlib sample data, 512 x 600
HEAD_REGION = (110, 30, 420, 400)  # x0, y0, x1, y1 of her head and shoulders in the photo


@dataclass(frozen=True)
class SyntheticConfig:
    num_classes: int = 3
    clips_per_class: int = 4
    num_speakers: int = 4  # clip i of every class belongs to speaker i % num_speakers
    min_duration_s: float = 4.0
    max_duration_s: float = 6.0
    width: int = 160
    height: int = 120
    fps: int = 10
    sample_rate: int = 16000
    picture: str = "shape"
    audio: str = "track"
    split_fractions: Mapping[str, float] = field(default_factory=lambda: {"train": 0.5, "val": 0.25, "test": 0.25})
    seed: int = 0
    # "synthetic": its own task (class0, class1, ...); "emotion": class k labelled as the k-th
    # emotion (anger, disgust, ...), so the training commands take it as they take CREMA-D
    label_as: str = "synthetic"

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"SyntheticConfig.num_classes must be in [2, {MAX_CLASSES}], got {self.num_classes}")
        for name in ("clips_per_class", "num_speakers", "fps", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"SyntheticConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError(f"SyntheticConfig needs 0 < min_duration_s <= max_duration_s, got "
                             f"{self.min_duration_s}, {self.max_duration_s}")
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError(f"SyntheticConfig width/height must be even and >= 32 (yuv420p), got {self.width}x{self.height}")
        if self.picture not in PICTURES:
            raise ValueError(f"SyntheticConfig.picture must be one of {PICTURES}, got {self.picture!r}")
        if self.audio not in AUDIO_PLACES:
            raise ValueError(f"SyntheticConfig.audio must be one of {AUDIO_PLACES}, got {self.audio!r}")
        SplitConfig(self.split_fractions)  # validates the fractions
        if self.label_as not in LABEL_AS:
            raise ValueError(f"SyntheticConfig.label_as must be one of {LABEL_AS}, got {self.label_as!r}")


@dataclass(frozen=True)
class SyntheticDataset:
    root: Path
    manifest: Path
    task: TaskSpec
    items: ItemList  # as read back from the manifest


def synthetic_task(num_classes: int) -> TaskSpec:
    return TaskSpec("synthetic", "classification", tuple(f"class{k}" for k in range(num_classes)),
                    description="generated clips: background colour and tone pitch encode the class")


def make_synthetic_dataset(root: str | Path, config: SyntheticConfig | None = None) -> SyntheticDataset:
    """Write config.clips_per_class clips per class under root/clips and root/manifest.csv."""
    config = config or SyntheticConfig()
    root = Path(root)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    task = synthetic_task(config.num_classes) if config.label_as == "synthetic" else get_task("emotion")
    speakers = [f"spk{i}" for i in range(min(config.num_speakers, config.clips_per_class))]
    splits = assign_speaker_splits(speakers, SplitConfig(config.split_fractions, seed=config.seed))
    rows = []
    for k in range(config.num_classes):
        for i in range(config.clips_per_class):
            rng = np.random.default_rng([config.seed, k, i])
            clip_id = f"class{k}_clip{i:02d}"
            duration = round(rng.uniform(config.min_duration_s, config.max_duration_s) * config.fps) / config.fps
            video = root / "clips" / f"{clip_id}.mp4"
            wav = root / "clips" / f"{clip_id}.wav" if config.audio == "wav" else None
            write_synthetic_clip(
                video, [(0.0, k)], duration, picture=config.picture, audio_in_video=config.audio == "track",
                wav_path=wav, width=config.width, height=config.height, fps=config.fps,
                sample_rate=config.sample_rate, rng=rng,
            )
            speaker = speakers[i % len(speakers)]
            rows.append({
                "clip_id": clip_id,
                "video": video.relative_to(root).as_posix(),
                "audio": "" if wav is None else wav.relative_to(root).as_posix(),
                "speaker": speaker,
                "split": splits[speaker],
                task.name: task.labels[k],
            })
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return SyntheticDataset(root, manifest, task, read_manifest(manifest, [task]))


# ----- one clip -------------------------------------------------------------------------------------


def class_at(timeline: Sequence[tuple[float, int]], time_s: float) -> int:
    """The class of a timeline [(start_s, class), ...] (sorted by start) at `time_s`."""
    current = timeline[0][1]
    for start, k in timeline:
        if time_s >= start:
            current = k
    return current


def write_synthetic_clip(
    video_path: Path | None,
    timeline: Sequence[tuple[float, int]],
    duration_s: float,
    *,
    picture: str = "shape",
    audio_in_video: bool = True,
    wav_path: Path | None = None,
    width: int = 160,
    height: int = 120,
    fps: int = 10,
    sample_rate: int = 16000,
    rng: np.random.Generator | None = None,
) -> None:
    """Write a clip whose colour and pitch follow `timeline` [(start_s, class), ...].

    `video_path` (.mp4 h264/AAC or .flv Sorenson/MP3) gets the picture, and the sound when
    `audio_in_video`; `wav_path`, if given, gets the sound as 16-bit PCM.
    """
    if picture not in PICTURES:
        raise ValueError(f"picture must be one of {PICTURES}, got {picture!r}")
    if not timeline or sorted(timeline) != list(timeline) or timeline[0][0] > 0:
        raise ValueError(f"timeline must be [(start_s, class), ...] sorted and starting at 0, got {timeline}")
    if any(not 0 <= k < MAX_CLASSES for _, k in timeline):
        raise ValueError(f"timeline classes must be in [0, {MAX_CLASSES}), got {timeline}")
    rng = rng or np.random.default_rng(0)
    look = _Look.random(rng, picture, width, height)
    sound = _tone(timeline, duration_s, sample_rate, rng)  # [S]
    if video_path is not None:
        num_frames = int(round(duration_s * fps))
        frames = (look.frame(class_at(timeline, i / fps), i / fps, rng) for i in range(num_frames))
        _write_media(Path(video_path), frames, fps, width, height, sound if audio_in_video else None, sample_rate)
    if wav_path is not None:
        _write_wav(Path(wav_path), sound, sample_rate)


@dataclass
class _Look:
    picture: str
    width: int
    height: int
    brightness: float
    centre: tuple[float, float]
    drift: tuple[float, float, float]  # amplitude x, amplitude y (px), angular speed (rad/s)
    head: np.ndarray | None  # the pasted photo (picture="face")

    @classmethod
    def random(cls, rng: np.random.Generator, picture: str, width: int, height: int) -> "_Look":
        head = None
        if picture == "face":
            head = _grace_hopper_head(int(round(height * rng.uniform(0.6, 0.72))))
        return cls(
            picture=picture,
            width=width,
            height=height,
            brightness=float(rng.uniform(0.85, 1.1)),
            centre=(width * rng.uniform(0.4, 0.6), height * rng.uniform(0.45, 0.55)),
            drift=(float(rng.uniform(2, 6)), float(rng.uniform(1, 3)), float(rng.uniform(0.5, 1.5))),
            head=head,
        )

    def frame(self, k: int, time_s: float, rng: np.random.Generator) -> np.ndarray:
        colour = np.clip(np.asarray(CLASS_COLOURS_BGR[k], np.float32) * self.brightness, 0, 255)
        frame = np.empty((self.height, self.width, 3), np.float32)
        frame[:] = colour
        x = self.centre[0] + self.drift[0] * np.sin(self.drift[2] * time_s)
        y = self.centre[1] + self.drift[1] * np.cos(self.drift[2] * time_s)
        if self.picture == "shape":
            _draw_cartoon(frame, x, y, self.height)
        elif self.picture == "face":
            _paste_centred(frame, self.head, x, y)
        else:
            bar_x = int(x) - 6
            frame[:, max(0, bar_x) : bar_x + 12] = 128.0
        frame += rng.normal(0.0, PIXEL_NOISE, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


def _draw_cartoon(frame: np.ndarray, x: float, y: float, height: int) -> None:
    r = height * 0.28
    centre = (int(x), int(y))
    cv2.ellipse(frame, centre, (int(r * 0.8), int(r)), 0, 0, 360, (170, 185, 225), -1)
    for side in (-1, 1):
        cv2.circle(frame, (int(x + side * r * 0.35), int(y - r * 0.2)), max(2, int(r * 0.1)), (30, 30, 30), -1)
    cv2.ellipse(frame, (int(x), int(y + r * 0.45)), (int(r * 0.3), int(r * 0.1)), 0, 0, 360, (60, 60, 150), -1)


def _grace_hopper_head(height: int) -> np.ndarray:
    from matplotlib import cbook  # a runtime dependency; its sample data ships with the wheel

    path = cbook.get_sample_data(GRACE_HOPPER, asfileobj=False)
    photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if photo is None:
        raise FileNotFoundError(f"could not read matplotlib's sample photograph {path}")
    x0, y0, x1, y1 = HEAD_REGION
    head = photo[y0:y1, x0:x1]
    width = int(round(head.shape[1] * height / head.shape[0]))
    return cv2.resize(head, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def _paste_centred(frame: np.ndarray, image: np.ndarray, x: float, y: float) -> None:
    h, w = image.shape[:2]
    top, left = int(round(y - h / 2)), int(round(x - w / 2))
    fy0, fx0 = max(0, top), max(0, left)
    fy1, fx1 = min(frame.shape[0], top + h), min(frame.shape[1], left + w)
    frame[fy0:fy1, fx0:fx1] = image[fy0 - top : fy1 - top, fx0 - left : fx1 - left]


def _tone(timeline: Sequence[tuple[float, int]], duration_s: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(round(duration_s * rate))) / rate  # [S]
    detune = rng.uniform(0.98, 1.02)
    phase = rng.uniform(0, 2 * np.pi)
    classes = np.zeros(t.size, dtype=np.int64)
    for start, k in timeline:
        classes[t >= start] = k
    frequency = np.asarray(CLASS_PITCHES_HZ)[classes] * detune  # [S]
    phase_track = phase + 2 * np.pi * np.cumsum(frequency) / rate  # continuous phase across class changes
    sound = TONE_AMPLITUDE * np.sin(phase_track) + rng.normal(0.0, AUDIO_NOISE, t.size)
    return np.clip(sound, -1, 1).astype(np.float32)


def _write_media(path: Path, frames, fps: int, width: int, height: int, sound: np.ndarray | None, rate: int) -> None:
    if path.suffix not in CONTAINER_CODECS:
        raise ValueError(f"{path}: synthetic clips are written as {sorted(CONTAINER_CODECS)}")
    video_codec, audio_codec = CONTAINER_CODECS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 600_000
        if video_codec == "libx264":
            video.options = {"preset": "ultrafast"}
        audio = None
        if sound is not None:
            audio_rate = 22050 if audio_codec == "libmp3lame" and rate == 16000 else rate  # MP3 in FLV: 11/22/44 kHz
            audio = container.add_stream(audio_codec, rate=audio_rate, layout="mono")
        for index, bgr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            _encode_audio(container, audio, sound, rate)


def _encode_audio(container, stream, sound: np.ndarray, rate: int) -> None:
    context = stream.codec_context
    if context.sample_rate != rate:
        from socialmae_rt.features.audio import resample_audio

        sound = resample_audio(sound, rate, context.sample_rate)
    frame_size = context.frame_size or 1024
    format_name = context.format.name
    for start in range(0, sound.size, frame_size):
        block = sound[None, start : start + frame_size]  # [1, n]
        if format_name.startswith("s16"):
            block = np.round(block * 32767).astype(np.int16)
        elif format_name.startswith("s32"):
            block = np.round(block * 2147483647.0).astype(np.int32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=format_name, layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = context.sample_rate, start, Fraction(1, context.sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def _write_wav(path: Path, sound: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        samples = np.round(sound * 32767).astype(np.int16)[None]  # [1, S]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode())

"""The held-out suite: clips that share no content with the calibration clip, to judge int8 on.

The calibration clip (`sample_media`) is scikit-image's astronaut speaking with espeak-ng's en-us
voice on a teal background. An int8 model judged on windows of that same clip is judged on its
own calibration data, so the accuracy gate scores these instead: other people (matplotlib's
Grace Hopper, scikit-image's grayscale cameraman), other voices and languages (en-gb, German,
French, Spanish), laughter-like bursts, tones, noise and silence, dim and bright light, small and
large faces, and two people at once. Every part ships with a package or the OS (no download).

Each clip is short (6.5-7.5 s: three or four windows one second apart) and deterministic for the same
package versions. The suite is written on demand into a folder keyed by SUITE_VERSION, so that a
changed recipe never reuses old files.

    python -m socialmae_rt.media.heldout OUT_DIR      (writes every clip of the suite)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from socialmae_rt.media.sample import (
    AUDIO_CODEC, VIDEO_CODECS, SampleClip, add_audio_stream, add_video_stream, audio_frames, espeak_speech,
    first_available_encoder, fit_to_length)

SUITE_VERSION = 1  # bump when any recipe or renderer changes: the suite's folder is keyed by it
FPS = 25
WIDTH, HEIGHT = 640, 480
SAMPLE_RATE = 16000
PEAK = 0.6

TEXTS = {
    "en-gb": "Could you bring the blue cup from the table, and put it next to the window please?",
    "de": "Guten Morgen. Ich habe heute leider keine Zeit, aber morgen komme ich gern vorbei.",
    "fr-fr": "Bonjour tout le monde. Le robot nous attend dans la cuisine depuis ce matin.",
    "es": "Hola, me llamo Grace. Hoy vamos a probar el robot en la sala grande.",
}
# Rows, cols of each photograph around the head and shoulders.
HOPPER_CROP = (slice(30, 400), slice(110, 420))  # matplotlib's grace_hopper.jpg (colour)
CAMERAMAN_CROP = (slice(30, 230), slice(160, 340))  # scikit-image's camera.png (grayscale)


@dataclass(frozen=True)
class HeldOutClip:
    """One clip of the suite: who is seen, what is heard, and how the scene is lit and framed."""

    name: str
    faces: tuple[str, ...]  # "hopper", "cameraman" (side by side when two)
    sound: tuple[str, ...]  # each part fills an equal share of the clip: "speech:<voice>", "laughter",
    # "tones", "noise", "silence"
    seconds: float = 6.5  # windows end on the 2 fps crops from 4 s on, one second apart: 3
    light: float = 1.0  # brightness gain on the picture
    face_height: float = 0.6  # head-and-shoulders height as a fraction of the frame height
    background_bgr: tuple[int, int, int] = (90, 90, 90)
    noise_snr_db: float | None = None  # room noise under the sound at this signal-to-noise ratio

    @property
    def what(self) -> str:
        extras = [f"light x{self.light:g}"] if self.light != 1.0 else []
        extras += [f"face {self.face_height:.0%} of the frame"] if self.face_height != 0.6 else []
        extras += [f"noise at {self.noise_snr_db:g} dB SNR"] if self.noise_snr_db is not None else []
        return f"{' + '.join(self.faces)}; {', '.join(self.sound)}" + (f"; {', '.join(extras)}" if extras else "")


SUITE: tuple[HeldOutClip, ...] = (
    HeldOutClip("hopper-en-gb", ("hopper",), ("speech:en-gb+f3",)),
    HeldOutClip("cameraman-de-dim-noisy", ("cameraman",), ("speech:de",), light=0.5, noise_snr_db=10.0,
                background_bgr=(40, 60, 70)),
    HeldOutClip("hopper-laughter-bright", ("hopper",), ("laughter", "speech:es", "laughter"), light=1.35,
                background_bgr=(200, 190, 170)),
    HeldOutClip("hopper-tones-silence-small", ("hopper",), ("tones", "silence", "noise"), face_height=0.32),
    HeldOutClip("two-people-fr", ("hopper", "cameraman"), ("speech:fr-fr", "laughter"), seconds=7.5, face_height=0.45,
                background_bgr=(60, 110, 60)),
)


def suite_key(clips: tuple[HeldOutClip, ...] = SUITE) -> str:
    """Names the suite's folder: its version and every recipe."""
    recipe = json.dumps({"version": SUITE_VERSION, "clips": [asdict(c) for c in clips]}, sort_keys=True)
    return f"v{SUITE_VERSION}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def build_suite(folder: str | Path, clips: tuple[HeldOutClip, ...] = SUITE) -> list[Path]:
    """Every clip of the suite in `folder/<suite key>/`, written where missing; their paths."""
    home = Path(folder) / suite_key(clips)
    home.mkdir(parents=True, exist_ok=True)
    paths = []
    for clip in clips:
        path = home / f"{clip.name}.mp4"
        if not path.is_file():
            staging = path.with_name(f".{path.name}.{os.getpid()}.part.mp4")
            build_clip(clip, staging)
            staging.replace(path)  # whole files only: a second process never reads a half-written clip
        paths.append(path)
    return paths


# ----- picture -----


def photograph(name: str) -> np.ndarray:
    """A head-and-shoulders photograph that ships with a package, BGR uint8."""
    if name == "hopper":
        from matplotlib import cbook

        hopper = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
        return np.ascontiguousarray(hopper[HOPPER_CROP])
    if name == "cameraman":
        from skimage import data

        return cv2.cvtColor(np.ascontiguousarray(data.camera()[CAMERAMAN_CROP]), cv2.COLOR_GRAY2BGR)
    raise ValueError(f"held-out suite: unknown face {name!r} (hopper, cameraman)")


def render_frame(clip: HeldOutClip, photos: list[np.ndarray], t_s: float) -> np.ndarray:
    """One BGR frame [H, W, 3]: each photograph drifting slowly in its half (or the middle) of the frame."""
    frame = np.empty((HEIGHT, WIDTH, 3), np.float32)
    frame[:] = clip.background_bgr
    for index, photo in enumerate(photos):
        scale = clip.face_height * HEIGHT / photo.shape[0] * (1.0 + 0.06 * np.sin(2 * np.pi * t_s / 5.0 + index))
        centre_x = WIDTH * (index + 1) / (len(photos) + 1) + 0.05 * WIDTH * np.sin(2 * np.pi * t_s / 6.0 + index)
        centre_y = HEIGHT / 2 + 0.04 * HEIGHT * np.sin(2 * np.pi * t_s / 4.0)
        transform = np.array([[scale, 0.0, centre_x - scale * photo.shape[1] / 2],
                              [0.0, scale, centre_y - scale * photo.shape[0] / 2]])
        cv2.warpAffine(photo.astype(np.float32), transform, (WIDTH, HEIGHT), dst=frame, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_TRANSPARENT)
    return np.clip(frame * clip.light, 0, 255).astype(np.uint8)


# ----- sound -----


def speech(voice: str, sample_rate: int) -> np.ndarray:
    """espeak-ng saying this language's sentence (voice "de", or with a variant "en-gb+f3"), peak PEAK."""
    return espeak_speech(TEXTS[voice.split("+")[0]], sample_rate, voice=voice, words_per_minute=150, peak=PEAK)


def laughter(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Laughter-like bursts: groups of 'ha' syllables (about 5 per second), each a voiced pulse
    train gliding down in pitch through an /a/-like resonance, with breath noise, and a pause
    between groups."""
    from scipy.signal import butter, lfilter

    rng = np.random.default_rng(seed)
    out = np.zeros(int(round(seconds * sample_rate)), np.float32)
    t = 0.05
    while t < seconds - 0.3:
        for _ in range(int(rng.integers(4, 8))):
            length = int(0.12 * sample_rate)
            f0 = np.linspace(330, 250, length) * rng.uniform(0.9, 1.1)
            phase = 2 * np.pi * np.cumsum(f0) / sample_rate
            voiced = np.sign(np.sin(phase)) * 0.5 + np.sin(phase)  # rich in harmonics
            breath = rng.standard_normal(length) * 0.4
            envelope = np.sin(np.linspace(0, np.pi, length)) ** 1.5
            syllable = (voiced + breath) * envelope
            start = int(t * sample_rate)
            if start + length > out.size:
                break
            out[start:start + length] += syllable.astype(np.float32)
            t += rng.uniform(0.17, 0.23)
        t += rng.uniform(0.4, 0.7)  # between two groups
    b, a = butter(2, [500, 1600], btype="band", fs=sample_rate)  # the first formants of /a/
    shaped = lfilter(b, a, out)
    return (shaped * (PEAK / max(np.abs(shaped).max(), 1e-9))).astype(np.float32)


def tones(seconds: float, sample_rate: int) -> np.ndarray:
    """A steady 440 Hz tone, then a sweep from 200 Hz to 3 kHz."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    half = t.size // 2
    steady = np.sin(2 * np.pi * 440 * t[:half])
    span = seconds - t[half]
    sweep_t = t[half:] - t[half]
    sweep = np.sin(2 * np.pi * (200 * sweep_t + (3000 - 200) * sweep_t ** 2 / (2 * max(span, 1e-9))))
    return (0.4 * np.concatenate([steady, sweep])).astype(np.float32)


def noise(samples: int, seed: int) -> np.ndarray:
    """Pink-ish room noise (white noise through a one-pole low pass), unit RMS."""
    from scipy.signal import lfilter

    white = np.random.default_rng(seed).standard_normal(samples)
    pink = lfilter([0.05], [1, -0.95], white)
    return (pink / max(np.sqrt(np.mean(pink ** 2)), 1e-12)).astype(np.float32)


def render_audio(clip: HeldOutClip, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 [seconds * sample_rate]: the sound parts one after another, plus room noise."""
    total = int(round(clip.seconds * sample_rate))
    bounds = np.linspace(0, total, len(clip.sound) + 1).round().astype(int)
    audio = np.zeros(total, np.float32)
    for index, (part, start, end) in enumerate(zip(clip.sound, bounds[:-1], bounds[1:])):
        length = int(end - start)
        if part.startswith("speech:"):
            audio[start:end] = fit_to_length(speech(part.split(":", 1)[1], sample_rate), length, sample_rate)
        elif part == "laughter":
            audio[start:end] = laughter(length / sample_rate, sample_rate, seed=index)[:length]
        elif part == "tones":
            audio[start:end] = tones(length / sample_rate, sample_rate)[:length]
        elif part == "noise":
            audio[start:end] = 0.15 * noise(length, seed=index)
        elif part != "silence":
            raise ValueError(f"held-out suite: unknown sound {part!r} (speech:<voice>, laughter, tones, noise, silence)")
    if clip.noise_snr_db is not None:
        loudness = np.sqrt(np.mean(audio ** 2))
        audio += noise(total, seed=99) * loudness / 10 ** (clip.noise_snr_db / 20)
    return np.clip(audio, -1.0, 1.0)


# ----- writing -----


def build_clip(clip: HeldOutClip, path: str | Path) -> Path:
    """Write one clip as mp4 (the sample clip's codecs and stream settings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    photos = [photograph(face) for face in clip.faces]
    audio = render_audio(clip)
    layout = SampleClip(path, clip.seconds, FPS, WIDTH, HEIGHT, SAMPLE_RATE, first_available_encoder(VIDEO_CODECS),
                        AUDIO_CODEC, clip.background_bgr, 0.0, ())
    with av.open(str(path), mode="w", format="mp4") as container:
        video = add_video_stream(container, layout)
        sound = add_audio_stream(container, layout)
        for index in range(int(round(clip.seconds * FPS))):
            frame = av.VideoFrame.from_ndarray(render_frame(clip, photos, index / FPS), format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for block in audio_frames(audio, SAMPLE_RATE):
            container.mux(sound.encode(block))
        container.mux(sound.encode())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialmae_rt.media.heldout",
                                     description="Write the held-out suite the int8 accuracy gate scores on.")
    parser.add_argument("folder", type=Path, help="where to write (a sub-folder named by the suite's version)")
    args = parser.parse_args(argv)
    by_name = {c.name: c for c in SUITE}
    for path in build_suite(args.folder):
        print(f"{path}: {by_name[path.stem].what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A sample clip with a known timeline, built from parts that ship with packages and the OS.

The picture is scikit-image's bundled astronaut photograph (head and shoulders), moved and scaled
smoothly over a plain background; the sound is espeak-ng speech. The timeline has a stretch with
no face (the photograph leaves the frame) and a stretch of silence, so the demo and the tests can
check the perception pipeline against what is known to be in the clip:

    default (20 s):  0-8 s face + speech | 8-12 s no face + speech | 12-16 s face + silence | 16-20 s face + speech

Shorter clips scale the timeline. Output is deterministic (same bytes for the same arguments on
the same package versions).

    python -m socialmae_rt.media.sample OUT.mp4 [--seconds 20] [--fps 25]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.codec.codec
import av.error
import cv2
import numpy as np

from socialmae_rt.features.audio import resample_audio

# The timeline as fractions of the clip: (start, end, has_face, has_audio).
TIMELINE_FRACTIONS = ((0.0, 0.4, True, True), (0.4, 0.6, False, True), (0.6, 0.8, True, False), (0.8, 1.0, True, True))
# What is said in each speech stretch (fitted to the stretch: cut, or repeated after a pause).
SPEECH_TEXTS = {
    0: "Hello there. I am the sample clip for the social robot. My face moves slowly around the picture "
    "while I talk, so you can watch the face tracker follow me.",
    1: "Now my face has left the picture, but you can still hear my voice.",
    3: "I am back, and I am talking again. Thank you for watching this short test.",
}
ESPEAK_VOICE = "en-us"
ESPEAK_WORDS_PER_MINUTE = 165
BACKGROUND_BGR = (120, 104, 48)  # plain muted teal: nothing face-like, far from skin tones
# Head-and-shoulders cut of the 512x512 astronaut photograph (rows, cols), face near its centre.
ASTRONAUT_CROP = (slice(20, 340), slice(60, 380))
MAX_TRANSITION_S = 0.75  # how long the photograph takes to slide out of / into the frame
SPEECH_PEAK = 0.7  # speech normalised to this peak amplitude
EDGE_FADE_S = 0.02  # fade at the edges of each speech stretch, so cuts do not click
REPEAT_GAP_S = 0.3  # pause before speech repeats to fill a long stretch
VIDEO_CODECS = ("libx264", "mpeg4")  # the first one the bundled ffmpeg can encode is used
AUDIO_CODEC = "aac"
AUDIO_FRAME_SAMPLES = 1024  # AAC frame size
ENCODER_THREADS = 2


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    has_face: bool
    has_audio: bool

    @property
    def midpoint_s(self) -> float:
        return (self.start_s + self.end_s) / 2

    def contains(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass(frozen=True)
class SampleClip:
    """What was written: the file, its format, and the timeline of face and speech."""

    path: Path
    seconds: float
    fps: int
    width: int
    height: int
    sample_rate: int
    video_codec: str
    audio_codec: str
    background_bgr: tuple[int, int, int]
    # The photograph slides out over the last transition_s of a face stretch before a no-face
    # stretch (and back in over the first transition_s after it): the face is only partly in view
    # there. No-face stretches are empty background from their first frame to their last.
    transition_s: float
    segments: tuple[Segment, ...]

    @property
    def num_frames(self) -> int:
        return frame_count(self.seconds, self.fps)

    def segment_at(self, t_s: float) -> Segment:
        return self.segments[self.segment_index_at(t_s)]

    def segment_index_at(self, t_s: float) -> int:
        for index, segment in enumerate(self.segments):
            if segment.contains(t_s):
                return index
        return len(self.segments) - 1  # t == seconds: the end belongs to the last stretch


@dataclass
class SampleClipConfig:
    seconds: float = 20.0
    fps: int = 25
    width: int = 640
    height: int = 480
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if not self.seconds >= 2.0:
            raise ValueError(f"sample clip: seconds must be >= 2 (four stretches), got {self.seconds!r}")
        for name in ("fps", "width", "height", "sample_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"sample clip: {name} must be a positive int, got {value!r}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"sample clip: width and height must be even (yuv420p), got {self.width}x{self.height}")


def frame_count(seconds: float, fps: int) -> int:
    return int(round(seconds * fps))


def build_sample_clip(
    path: str | Path, seconds: float = 20.0, fps: int = 25, width: int = 640, height: int = 480, sample_rate: int = 16000
) -> SampleClip:
    """Writes the sample clip (mp4: H.264 or MPEG-4 video, AAC mono audio) and returns its timeline."""
    config = SampleClipConfig(seconds=seconds, fps=fps, width=width, height=height, sample_rate=sample_rate)
    segments = scaled_timeline(config.seconds)
    clip = SampleClip(
        path=Path(path),
        seconds=config.seconds,
        fps=config.fps,
        width=config.width,
        height=config.height,
        sample_rate=config.sample_rate,
        video_codec=first_available_encoder(VIDEO_CODECS),
        audio_codec=AUDIO_CODEC,
        background_bgr=BACKGROUND_BGR,
        transition_s=min(MAX_TRANSITION_S, min(s.end_s - s.start_s for s in segments) / 4),
        segments=segments,
    )
    audio = render_audio(clip)
    write_mp4(clip, audio)
    return clip


def scaled_timeline(seconds: float) -> tuple[Segment, ...]:
    return tuple(
        Segment(start_s=round(start * seconds, 6), end_s=round(end * seconds, 6), has_face=face, has_audio=sound)
        for start, end, face, sound in TIMELINE_FRACTIONS
    )


def first_available_encoder(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            av.Codec(name, "w")
            return name
        except av.codec.codec.UnknownCodecError:
            continue
    raise RuntimeError(f"sample clip: PyAV's ffmpeg has none of the encoders {', '.join(names)}")


# ----- picture -----


def head_and_shoulders_bgr() -> np.ndarray:
    """The astronaut photograph bundled in scikit-image's wheel (no download), cut to the head."""
    from skimage import data  # imported here: only clip building needs scikit-image

    rgb = data.astronaut()  # uint8 [512, 512, 3] RGB
    return np.ascontiguousarray(rgb[ASTRONAUT_CROP][:, :, ::-1])  # [320, 320, 3] BGR


def photo_placement(clip: SampleClip, t_s: float, photo_size: int) -> tuple[float, float, float] | None:
    """(centre x, centre y, scale) of the photograph at time t, or None when it is out of view."""
    index = clip.segment_index_at(t_s)
    segment = clip.segments[index]
    if not segment.has_face:
        return None
    # Slow, incommensurate sinusoids: smooth wandering and zooming that stays inside the frame.
    scale = (1.05 + 0.15 * np.sin(2 * np.pi * t_s / 6.0)) * clip.height / 480
    x = clip.width / 2 + 0.18 * clip.width * np.sin(2 * np.pi * t_s / 7.0)
    y = clip.height / 2 + 0.06 * clip.height * np.sin(2 * np.pi * t_s / 5.0)
    half = scale * photo_size / 2
    before = clip.segments[index - 1] if index > 0 else None
    after = clip.segments[index + 1] if index + 1 < len(clip.segments) else None
    if after is not None and not after.has_face and t_s > segment.end_s - clip.transition_s:
        progress = (t_s - (segment.end_s - clip.transition_s)) / clip.transition_s
        x = lerp(x, -half - 1, smoothstep(progress))  # slides out to the left
    if before is not None and not before.has_face and t_s < segment.start_s + clip.transition_s:
        progress = (t_s - segment.start_s) / clip.transition_s
        x = lerp(clip.width + half + 1, x, smoothstep(progress))  # slides back in from the right
    return float(x), float(y), float(scale)


def smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def lerp(a: float, b: float, u: float) -> float:
    return a + (b - a) * u


def render_frame(clip: SampleClip, photo_bgr: np.ndarray, t_s: float) -> np.ndarray:
    """One BGR frame [H, W, 3]: the background, with the photograph placed where t puts it."""
    frame = np.empty((clip.height, clip.width, 3), dtype=np.uint8)
    frame[:] = clip.background_bgr
    placement = photo_placement(clip, t_s, photo_bgr.shape[0])
    if placement is None:
        return frame
    x, y, scale = placement
    size = photo_bgr.shape[0]
    # Source -> frame: scale about the origin, then put the photo's centre at (x, y); sub-pixel
    # placement keeps the motion smooth. BORDER_TRANSPARENT leaves the background where the
    # photograph does not reach.
    transform = np.array([[scale, 0.0, x - scale * size / 2], [0.0, scale, y - scale * size / 2]])
    cv2.warpAffine(photo_bgr, transform, (clip.width, clip.height), dst=frame, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return frame


# ----- sound -----


def render_audio(clip: SampleClip) -> np.ndarray:
    """Mono float32 [seconds * sample_rate]: speech in the speech stretches, exact zeros elsewhere."""
    audio = np.zeros(int(round(clip.seconds * clip.sample_rate)), dtype=np.float32)
    for index, segment in enumerate(clip.segments):
        if not segment.has_audio:
            continue
        start, end = (int(round(t * clip.sample_rate)) for t in (segment.start_s, segment.end_s))
        speech = synthesize_speech(SPEECH_TEXTS[index], clip.sample_rate)
        audio[start:end] = fit_to_length(speech, end - start, clip.sample_rate)
    return audio


def synthesize_speech(text: str, sample_rate: int) -> np.ndarray:
    """The sample clip's voice saying `text` (espeak_speech)."""
    return espeak_speech(text, sample_rate, voice=ESPEAK_VOICE, words_per_minute=ESPEAK_WORDS_PER_MINUTE,
                         peak=SPEECH_PEAK)


def espeak_speech(text: str, sample_rate: int, *, voice: str, words_per_minute: int, peak: float,
                  pitch: int | None = None) -> np.ndarray:
    """espeak-ng speech as float32 mono at sample_rate, peak-normalised, leading/trailing silence cut
    (every generated clip speaks through this)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (run scripts/install_system_deps.sh)")
    with tempfile.TemporaryDirectory(prefix="socialmae_speech_") as folder:
        wav_path = Path(folder) / "speech.wav"
        command = [espeak, "-v", voice, *(["-p", str(pitch)] if pitch is not None else []),
                   "-s", str(words_per_minute), "-w", str(wav_path), text]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        samples, rate = read_wav_int16_mono(wav_path)
    speech = resample_audio(samples, rate, sample_rate)  # soxr; int16 scaled to [-1, 1]
    voiced = np.flatnonzero(np.abs(speech) > 0.01)
    if voiced.size == 0:
        raise RuntimeError(f"espeak-ng produced no audible speech for {text!r} (voice {voice})")
    speech = speech[voiced[0] : voiced[-1] + 1]
    return (speech * (peak / np.abs(speech).max())).astype(np.float32)


def read_wav_int16_mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise RuntimeError(f"sample clip: expected 16-bit mono from espeak-ng, got {wav.getsampwidth() * 8}-bit x{wav.getnchannels()}")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), wav.getframerate()


def fit_to_length(speech: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Speech cut to `length` samples, or repeated after a short pause until it fills them."""
    gap = np.zeros(int(REPEAT_GAP_S * sample_rate), dtype=np.float32)
    pieces, filled = [], 0
    while filled < length:
        pieces += [speech, gap]
        filled += speech.size + gap.size
    fitted = np.concatenate(pieces)[:length].copy()
    fade = np.sin(np.linspace(0, np.pi / 2, min(int(EDGE_FADE_S * sample_rate), length // 2))) ** 2
    fitted[: fade.size] *= fade
    fitted[length - fade.size :] *= fade[::-1]
    return fitted


# ----- writing -----


def write_mp4(clip: SampleClip, audio: np.ndarray) -> None:
    clip.path.parent.mkdir(parents=True, exist_ok=True)
    photo = head_and_shoulders_bgr()
    with av.open(str(clip.path), mode="w", format="mp4") as container:
        video_stream = add_video_stream(container, clip)
        audio_stream = add_audio_stream(container, clip)
        for index in range(clip.num_frames):
            frame = av.VideoFrame.from_ndarray(render_frame(clip, photo, index / clip.fps), format="bgr24")
            frame.pts = index
            container.mux(video_stream.encode(frame))
        container.mux(video_stream.encode())
        for audio_frame in audio_frames(audio, clip.sample_rate):
            container.mux(audio_stream.encode(audio_frame))
        container.mux(audio_stream.encode())


def add_video_stream(container, clip: SampleClip):
    stream = container.add_stream(clip.video_codec, rate=clip.fps)
    stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
    stream.codec_context.time_base = Fraction(1, clip.fps)
    # A fixed thread count: x264's output depends on it, and the clip must be the same everywhere.
    stream.codec_context.thread_count = ENCODER_THREADS
    if clip.video_codec == "libx264":
        stream.options = {"preset": "veryfast", "crf": "20"}
    else:
        stream.bit_rate = 2_000_000
    stream.codec_context.gop_size = 2 * clip.fps  # a key frame every 2 s: quick seeking in players
    return stream


def add_audio_stream(container, clip: SampleClip):
    stream = container.add_stream(clip.audio_codec, rate=clip.sample_rate, layout="mono")
    stream.bit_rate = 64_000
    return stream


def audio_frames(audio: np.ndarray, sample_rate: int):
    """AAC-sized planar float frames with pts in samples."""
    for start in range(0, audio.size, AUDIO_FRAME_SAMPLES):
        block = audio[start : start + AUDIO_FRAME_SAMPLES].reshape(1, -1)  # [N] -> [1 channel, N]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        yield frame


# ----- command line -----


def describe(clip: SampleClip) -> str:
    lines = [f"{clip.path}: {clip.seconds:g} s, {clip.width}x{clip.height} @{clip.fps} fps {clip.video_codec}, {clip.sample_rate} Hz mono {clip.audio_codec}"]
    for segment in clip.segments:
        face = "face" if segment.has_face else "no face"
        sound = "speech" if segment.has_audio else "silence"
        lines.append(f"  {segment.start_s:6.2f} - {segment.end_s:6.2f} s  {face:7s} + {sound}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialmae_rt.media.sample", description="Write the sample clip (face + speech timeline).")
    parser.add_argument("output", type=Path, help="the .mp4 to write")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length; the timeline scales with it (default 20)")
    parser.add_argument("--fps", type=int, default=25, help="frame rate (default 25)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        clip = build_sample_clip(args.output, seconds=args.seconds, fps=args.fps)
    except (ValueError, RuntimeError, subprocess.CalledProcessError, av.error.FFmpegError) as error:
        parser.exit(1, f"error: {error}\n")
    print(describe(clip))
    print(f"written in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

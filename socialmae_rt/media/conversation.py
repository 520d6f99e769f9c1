"""A two-person clip with a known schedule of who speaks when, for speaker attribution.

Two real photographs that ship with packages sit side by side: scikit-image's astronaut (left,
person "A") and matplotlib's Grace Hopper (right, "B"). Each speaks with her own espeak-ng voice
in her turns of the schedule; while she speaks her mouth opens and closes with the loudness of
her own speech (a dark opening drawn between the lips, as wide as her lips and as tall as the
loudness says), and stays closed otherwise. The ground truth is the schedule.

An occlusion (`--occlusions "B:6-7.5"`) hides a person behind a plain panel for that stretch, as
someone walking in front would: the tracker loses her and must give her her id back.

    python -m socialmae_rt.media.conversation OUT.mp4 [--schedule "A:0-5 B:5-10 A:10-14"] [--occlusions "B:6-7.5"]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from socialmae_rt.media.sample import (
    AUDIO_CODEC, VIDEO_CODECS, SampleClip, add_audio_stream, add_video_stream, audio_frames, espeak_speech,
    first_available_encoder, fit_to_length, head_and_shoulders_bgr)

PEOPLE = ("A", "B")
VOICES = {"A": ("en-us", 60), "B": ("en-gb", 30)}  # espeak-ng voice, pitch (0-99)
TEXTS = {
    "A": "I think the robot should wait for us at the door, and then follow us into the kitchen.",
    "B": "That sounds fine to me, but it has to keep out of the way when we carry the boxes in.",
}
# Mouth centre (x, y) and lip width in each photo cut, from MediaPipe's face mesh on the cut.
MOUTHS = {"A": ((163.6, 120.2), 45.5), "B": ((157.8, 246.4), 73.3)}
HOPPER_CROP = (slice(30, 400), slice(110, 420))  # rows, cols of matplotlib's grace_hopper.jpg
HEAD_HEIGHT = 240
BACKGROUND_BGR = (120, 104, 48)
MAX_OPENING = 0.6  # mouth height / lip width at the loudest
SPEECH_PEAK = 0.6
WORDS_PER_MINUTE = 160


@dataclass(frozen=True)
class Turn:
    speaker: str  # "A" or "B"
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ConversationClip:
    path: Path
    seconds: float
    fps: int
    turns: tuple[Turn, ...]
    head_boxes: dict[str, tuple[int, int, int, int]]  # person -> pasted photo (x0, y0, x1, y1) in the frame
    occlusions: tuple[Turn, ...] = ()  # (person, start, end): hidden behind a panel then

    def speakers_at(self, t_s: float) -> set[str]:
        return {turn.speaker for turn in self.turns if turn.start_s <= t_s < turn.end_s}

    def sole_speaker(self, start_s: float, end_s: float, min_share: float = 0.75) -> str | None:
        """The one person who speaks for at least `min_share` of [start, end] while the other is
        silent throughout; None when both, nobody, or too little speech."""
        spoken = {person: 0.0 for person in PEOPLE}
        for turn in self.turns:
            spoken[turn.speaker] += max(0.0, min(end_s, turn.end_s) - max(start_s, turn.start_s))
        talking = [p for p, seconds in spoken.items() if seconds > 0]
        if len(talking) != 1 or spoken[talking[0]] < min_share * (end_s - start_s):
            return None
        return talking[0]


def parse_schedule(text: str) -> tuple[Turn, ...]:
    """'A:0-5 B:5-10' -> turns; speakers A/B, times in seconds, no overlap within one speaker."""
    turns = []
    for item in text.split():
        try:
            speaker, span = item.split(":")
            start, end = (float(v) for v in span.split("-"))
        except ValueError:
            raise ValueError(f"schedule item {item!r}: expected SPEAKER:START-END, e.g. A:0-5") from None
        if speaker not in PEOPLE or not 0 <= start < end:
            raise ValueError(f"schedule item {item!r}: speaker must be A or B and 0 <= start < end")
        turns.append(Turn(speaker, start, end))
    if not turns:
        raise ValueError("the schedule is empty; e.g. 'A:0-5 B:5-10'")
    return tuple(sorted(turns, key=lambda t: t.start_s))


def heads() -> dict[str, np.ndarray]:
    from matplotlib import cbook

    hopper = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
    return {"A": head_and_shoulders_bgr(), "B": np.ascontiguousarray(hopper[HOPPER_CROP])}


def voice(person: str, sample_rate: int) -> np.ndarray:
    name, pitch = VOICES[person]
    return espeak_speech(TEXTS[person], sample_rate, voice=name, pitch=pitch, words_per_minute=WORDS_PER_MINUTE,
                         peak=SPEECH_PEAK)


def loudness_per_frame(track: np.ndarray, sample_rate: int, fps: int, frames: int) -> np.ndarray:
    """RMS of `track` over each frame's 1/fps, scaled so that loud speech is 1."""
    hop = sample_rate // fps
    rms = np.array([np.sqrt(np.mean(np.square(track[i * hop:(i + 1) * hop], dtype=np.float64)))
                    if i * hop < track.size else 0.0 for i in range(frames)])
    loud = np.percentile(rms[rms > 0], 90) if (rms > 0).any() else 1.0
    return np.clip(rms / loud, 0.0, 1.0)


def build_conversation_clip(path: str | Path, schedule: str | tuple[Turn, ...] = "A:0-5 B:5-10 A:10-14",
                            fps: int = 25, width: int = 640, height: int = 480,
                            sample_rate: int = 16000, occlusions: str = "") -> ConversationClip:
    turns = parse_schedule(schedule) if isinstance(schedule, str) else tuple(schedule)
    hidden = parse_schedule(occlusions) if occlusions.strip() else ()
    seconds = max(t.end_s for t in turns) + 1.0
    frames = int(round(seconds * fps))
    tracks = {p: np.zeros(int(round(seconds * sample_rate)), np.float32) for p in PEOPLE}
    speech = {p: voice(p, sample_rate) for p in PEOPLE if any(t.speaker == p for t in turns)}
    for turn in turns:
        start, end = int(round(turn.start_s * sample_rate)), int(round(turn.end_s * sample_rate))
        tracks[turn.speaker][start:end] += fit_to_length(speech[turn.speaker], end - start, sample_rate)
    openings = {p: MAX_OPENING * loudness_per_frame(tracks[p], sample_rate, fps, frames) for p in PEOPLE}
    photos = heads()
    clip = ConversationClip(Path(path), seconds, fps, turns, {}, hidden)
    placed, boxes = {}, {}
    for index, person in enumerate(PEOPLE):
        photo = photos[person]
        scale = HEAD_HEIGHT / photo.shape[0]
        size = (int(round(photo.shape[1] * scale)), HEAD_HEIGHT)
        left = 40 if index == 0 else width - 40 - size[0]
        top = (height - HEAD_HEIGHT) // 2
        placed[person] = (cv2.resize(photo, size, interpolation=cv2.INTER_AREA), left, top, scale)
        boxes[person] = (left, top, left + size[0], top + size[1])
    clip = replace(clip, head_boxes=boxes)
    _write(clip, placed, openings, tracks["A"] + tracks["B"], width, height, sample_rate)
    return clip


OCCLUDER_BGR = (70, 70, 70)


def _frame(clip: ConversationClip, placed, openings, index: int, width: int, height: int) -> np.ndarray:
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BACKGROUND_BGR
    t_s = index / clip.fps
    for person, (photo, left, top, scale) in placed.items():
        if any(o.speaker == person and o.start_s <= t_s < o.end_s for o in clip.occlusions):
            frame[top - 20:top + photo.shape[0] + 20, left - 20:left + photo.shape[1] + 20] = OCCLUDER_BGR
            continue
        frame[top:top + photo.shape[0], left:left + photo.shape[1]] = photo
        opening = float(openings[person][index])
        if opening > 0.02:
            (mx, my), lip_width = MOUTHS[person]
            cx, cy, w = left + mx * scale, top + my * scale, lip_width * scale
            cv2.ellipse(frame, (int(round(cx)), int(round(cy + opening * w * 0.3))),
                        (int(round(w * 0.42)), max(1, int(round(opening * w * 0.5)))), 0, 0, 360, (25, 20, 35), -1,
                        lineType=cv2.LINE_AA)
    return frame


def _write(clip: ConversationClip, placed, openings, audio: np.ndarray, width: int, height: int,
           sample_rate: int) -> None:
    clip.path.parent.mkdir(parents=True, exist_ok=True)
    # the sample clip's stream settings (codec, threads, GOP) through its own helpers
    layout = SampleClip(clip.path, clip.seconds, clip.fps, width, height, sample_rate,
                        first_available_encoder(VIDEO_CODECS), AUDIO_CODEC, BACKGROUND_BGR, 0.0, ())
    with av.open(str(clip.path), mode="w", format="mp4") as container:
        video = add_video_stream(container, layout)
        sound = add_audio_stream(container, layout)
        for index in range(int(round(clip.seconds * clip.fps))):
            frame = av.VideoFrame.from_ndarray(_frame(clip, placed, openings, index, width, height), format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for block in audio_frames(np.clip(audio, -1, 1).astype(np.float32), sample_rate):
            container.mux(sound.encode(block))
        container.mux(sound.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialmae_rt.media.conversation",
                                     description="Write a two-person clip with a known schedule of who speaks when.")
    parser.add_argument("out", help="the mp4 to write")
    parser.add_argument("--schedule", default="A:0-5 B:5-10 A:10-14",
                        help="turns SPEAKER:START-END in seconds, A = left (astronaut), B = right (Grace Hopper)")
    parser.add_argument("--occlusions", default="", help="PERSON:START-END stretches hidden behind a panel")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args(argv)
    clip = build_conversation_clip(args.out, args.schedule, fps=args.fps, occlusions=args.occlusions)
    print(f"wrote {clip.path}: {clip.seconds:.1f} s, turns " +
          " ".join(f"{t.speaker}:{t.start_s:g}-{t.end_s:g}" for t in clip.turns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

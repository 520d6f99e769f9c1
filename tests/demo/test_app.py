"""`socialmae-rt demo` end to end: the sample clip drawn headless into an mp4 with its audio, a
PNG snapshot checked against the records and the face detector, missing devices as notices, and
the OpenCV window under a virtual X display driven by real key presses."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from socialmae_rt.app.options import RunOptions
from socialmae_rt.demo.app import RANDOM_WEIGHTS_NOTICE, DemoError, DemoWindow, run_demo
from socialmae_rt.demo.options import DemoOptions
from socialmae_rt.demo.overlay import OverlayRenderer
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig
from socialmae_rt.media.sample import build_sample_clip
from socialmae_rt.messages import NS_PER_SECOND, SourceError

SECONDS = 12.0  # timeline: face+speech 0-4.8 s, no face 4.8-7.2, face+silence 7.2-9.6, face+speech 9.6-12
SNAPSHOT_AT = 4.02  # the first frame after the first window (ends at 4.0 s), before the photo slides out
FPS = 25


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return build_sample_clip(tmp_path_factory.mktemp("sample") / "sample.mp4", seconds=SECONDS, fps=FPS)


@pytest.fixture(scope="module")
def headless_run(sample, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    options = DemoOptions(source=str(sample.path), headless=True, record=str(out_dir / "demo.mp4"),
                          snapshot=str(out_dir / "shot.png"), snapshot_at=SNAPSHOT_AT,
                          run=RunOptions(model="tiny", backend="torch", output=str(out_dir / "records.jsonl")))
    printed = io.StringIO()
    summary = run_demo(options, out=printed)
    return summary, out_dir, results(out_dir / "records.jsonl"), printed.getvalue()


def results(jsonl: Path) -> list[dict]:
    """The result records of a JSONL file (events left out)."""
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return [r for r in records if r["schema"] == "socialmae_rt.result/1"]


def decode(path: Path) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Every video frame (BGR) and the audio (mono float) of a file, with the audio rate."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, np.zeros(0, np.float32), 0
        rate = container.streams.audio[0].codec_context.sample_rate
        chunks = [f.to_ndarray().reshape(f.layout.nb_channels if f.format.is_planar else 1, -1)[0]
                  for f in container.decode(audio=0)]
    return frames, np.concatenate(chunks).astype(np.float32), rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_headless_run_records_every_frame_and_the_audio(headless_run, sample):
    summary, out_dir, records, printed = headless_run
    frames, audio, rate = decode(out_dir / "demo.mp4")
    assert summary.frames_drawn == sample.num_frames == len(frames) == summary.recording.frames
    height, width = OverlayRenderer().canvas_size(sample.height, sample.width)
    assert frames[0].shape == (height, width, 3)
    assert abs(audio.size / rate - SECONDS) < 0.1
    speech = audio[int(1.0 * rate): int(4.0 * rate)]
    silence = audio[int(7.6 * rate): int(9.2 * rate)]
    assert rms(speech) > 10 * max(rms(silence), 1e-5)  # the sample's sound, in its place on the timeline
    assert summary.records == len(records) > 0
    assert RANDOM_WEIGHTS_NOTICE in printed and "recorded" in printed


def test_the_snapshot_shows_the_face_box_and_the_bars_of_the_newest_record(headless_run, sample):
    _, out_dir, records, _ = headless_run
    shot = cv2.imread(str(out_dir / "shot.png"))
    renderer = OverlayRenderer()
    assert shot.shape[:2] == renderer.canvas_size(sample.height, sample.width)

    with av.open(str(sample.path)) as container:
        source = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    index = int(np.ceil(SNAPSHOT_AT * FPS))  # the first frame at or after SNAPSHOT_AT
    frame = source[index]
    # Away from the drawings the frame is the source frame, pixel for pixel.
    assert np.array_equal(shot[400:470, 10:60], frame[400:470, 10:60])

    # The box is where the detector finds the face (on the tracker's last detection frame).
    with FaceDetector(FaceDetectorConfig()) as detector:
        boxes = detector.detect(source[index - index % 3])
    assert len(boxes) == 1
    box = boxes[0]
    colour = np.array(renderer.config.face_colour(1))
    y_mid, x_mid = int((box.y0 + box.y1) / 2), int((box.x0 + box.x1) / 2)
    for y, x in ((int(box.y0) + 1, x_mid), (int(box.y1) - 2, x_mid), (y_mid, int(box.x0) + 1), (y_mid, int(box.x1) - 2)):
        patch = shot[y - 2: y + 3, x - 2: x + 3].reshape(-1, 3).astype(int)
        assert (np.abs(patch - colour).sum(axis=1) < 30).any(), (y, x)

    # The panel's bars are the newest record's values at that frame.
    stamp_ns = index * NS_PER_SECOND // FPS
    shown = max((r for r in records if r["face_id"] == 1 and r["window_end_ns"] <= stamp_ns),
                key=lambda r: r["window_end_ns"])
    assert shown["modality"] == "audiovisual"
    panel = renderer.layout(sample.height, sample.width, [1]).panels[0]
    for label, probability in shown["emotion"].items():
        bar = panel.emotion[label]
        row = shot[bar.y + bar.height // 2, bar.x: bar.x + bar.width].astype(int)
        fill = np.array(renderer.config.emotion_colours[label])
        filled = int((np.abs(row - fill).sum(axis=1) < 10).sum())
        assert abs(filled - bar.filled(probability)) <= 1, label


def test_an_audio_only_file_draws_blank_frames_with_the_audio_panel_and_a_notice(tone_wav, tmp_path):
    wav = tone_wav(5.0)
    printed = io.StringIO()
    # torch: what is drawn is under test, not the backend (an unpaced file builds `auto`'s int8 first)
    summary = run_demo(DemoOptions(source=str(wav), headless=True, record=str(tmp_path / "a.mp4"),
                                   snapshot=str(tmp_path / "a.png"), snapshot_at=4.5,
                                   run=RunOptions(model="tiny", backend="torch")),
                       out=printed)
    assert "the file has no video: audio only" in printed.getvalue()
    frames, audio, rate = decode(tmp_path / "a.mp4")
    assert abs(len(frames) - 5.0 * 15) <= 2 and abs(audio.size / rate - 5.0) < 0.1  # 15 fps of blank canvas
    assert summary.records >= 2
    shot = cv2.imread(str(tmp_path / "a.png"))
    renderer = OverlayRenderer()
    panel = renderer.layout(480, 640, [None]).panels[0]
    x, y, w, h = panel.rect
    audio_colour = np.array(renderer.config.audio_only_colour)
    assert (np.abs(shot[y: y + h, x: x + w].reshape(-1, 3).astype(int) - audio_colour).sum(axis=1) < 10).any()
    assert not shot[100:400, 100:500].any()  # the frame area is blank: there is no camera


def test_a_microphone_that_cannot_be_opened_leaves_a_notice_and_video_goes_on(sample, tmp_path):
    """The 'camera' is the sample clip opened by OpenCV (the camera code path); the microphone
    named does not exist (this machine has no sound card at all)."""
    printed = io.StringIO()
    summary = run_demo(DemoOptions(camera=f"file://{sample.path}", headless=True, snapshot=str(tmp_path / "m.png"),
                                   snapshot_at=0.5, run=RunOptions(mic="no-such-mic", model="tiny", duration=5.5,
                                                                   output=str(tmp_path / "r.jsonl"))), out=printed)
    assert "microphone unavailable" in printed.getvalue() and "video only" in printed.getvalue()
    records = results(tmp_path / "r.jsonl")
    assert summary.records == len(records) > 0 and {r["modality"] for r in records} == {"video"}
    shot = cv2.imread(str(tmp_path / "m.png"))
    banner = shot[2:18, 100:400].reshape(-1, 3).astype(int)
    notice = np.array(OverlayRenderer().config.notice_background)
    assert (np.abs(banner - notice).sum(axis=1) < 10).mean() > 0.3  # the notice banner is on screen


DEMO_ASOUNDRC = """
pcm.demomic {
    type pulse
    device "demosink.monitor"
    hint { show on description "demo test microphone: monitor of null sink demosink" }
}
"""


def test_a_camera_that_cannot_be_opened_leaves_a_notice_and_the_microphone_goes_on(pulse_audio, tmp_path_factory):
    """A real microphone (a PulseAudio null sink's monitor with a 440 Hz tone playing into it) and
    a camera device that does not exist: audio-only results on a blank canvas, the notice on it."""
    base = tmp_path_factory.mktemp("pa")  # short: the server's unix socket path is limited
    rate = pulse_audio.sink_rate
    t = np.arange(12 * rate) / rate
    tone = np.repeat((0.5 * np.sin(2 * np.pi * 440.0 * t))[:, None], 2, axis=1)  # [frames, 2]
    (tone * 32767).round().astype("<i2").tofile(base / "tone.raw")
    server = pulse_audio.PulseServer(base / "server", sinks=("demosink",), asoundrc=DEMO_ASOUNDRC).start()
    player = subprocess.Popen(["pacat", "--playback", "--raw", "--format=s16le", f"--rate={rate}", "--channels=2",
                               "--device=demosink", "--latency-msec=20", str(base / "tone.raw")], env=server.env)
    out = base / "out"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "socialmae_rt.cli", "demo", "--camera", "/dev/video-missing", "--mic", "demomic",
             "--headless", "--model", "tiny", "--backend", "torch", "--duration", "7", "--record", str(out / "a.mp4"),
             "--output", str(out / "r.jsonl"), "--snapshot", str(out / "a.png"), "--snapshot-at", "6"],
            env=server.env, capture_output=True, text=True, timeout=120)
    finally:
        player.kill()
        player.wait()
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert "camera unavailable" in run.stdout and "audio only" in run.stdout
    records = results(out / "r.jsonl")
    assert records and {(r["modality"], r["face_id"]) for r in records} == {("audio", None)}
    frames, audio, audio_rate = decode(out / "a.mp4")
    assert len(frames) > 5 * 15 * 0.8  # blank canvas at 15 fps for the whole run
    middle = audio[audio.size // 3: 2 * audio.size // 3]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    assert abs(np.fft.rfftfreq(middle.size, 1 / audio_rate)[np.argmax(spectrum)] - 440.0) < 5
    shot = cv2.imread(str(out / "a.png"))
    assert not shot[100:400, 100:500].any()  # no camera: the frame area is blank
    banner = shot[2:18, 100:400].reshape(-1, 3).astype(int)
    notice = np.array(OverlayRenderer().config.notice_background)
    assert (np.abs(banner - notice).sum(axis=1) < 10).mean() > 0.3


def test_no_camera_and_no_microphone_is_one_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no source could be opened: camera '/dev/video-missing': no such file"):
        run_demo(DemoOptions(camera="/dev/video-missing", headless=True, run=RunOptions(mic="none", model="tiny")))


def test_a_window_without_a_display_says_to_use_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DemoError, match="--headless"):
        DemoWindow("socialmae-rt demo")


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="ending in .mp4"):
        DemoOptions(record="out.avi")
    with pytest.raises(ValueError, match="duration must be > 0"):
        DemoOptions(run=RunOptions(duration=0))


# -- the window, under Xvfb --------------------------------------------------------------------------

missing_x = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]


@pytest.fixture()
def display():
    if missing_x:
        pytest.skip(f"missing {', '.join(missing_x)}: apt-get install xvfb xdotool (scripts/install_system_deps.sh)")
    number = random.randint(200, 899)
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Xvfb :{number} did not start")
        time.sleep(0.05)  # polling for the server's socket
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=5)


def xdotool(display: str, *args: str, timeout: float = 10) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=timeout, check=True).stdout


def test_the_window_shows_the_demo_and_answers_s_space_and_q(display, sample, tmp_path):
    shots = tmp_path / "shots"
    env = {**os.environ, "DISPLAY": display}
    demo = subprocess.Popen([sys.executable, "-m", "socialmae_rt.cli", "demo", "--source", str(sample.path),
                             "--model", "tiny", "--screenshot-dir", str(shots)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def press(window: str, key: str) -> None:
        xdotool(display, "windowfocus", "--sync", window, "key", key)

    def screenshot(window: str, count: int) -> None:
        press(window, "s")
        deadline = time.monotonic() + 10
        while len(list(shots.glob("*.png"))) < count and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the screenshot file

    try:
        window = xdotool(display, "search", "--sync", "--name", "socialmae-rt demo", timeout=60).split()[0]
        time.sleep(1.0)  # a few frames in
        screenshot(window, 1)
        press(window, "space")
        time.sleep(0.5)
        screenshot(window, 2)
        time.sleep(1.0)  # the clip plays on underneath
        screenshot(window, 3)
        press(window, "q")
        out, err = demo.communicate(timeout=20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err[-2000:]
    saved = sorted(shots.glob("*.png"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    assert len(saved) == 3 and all(f"saved {path}" in out for path in saved)
    playing, paused, still_paused = (cv2.imread(str(path)) for path in saved)
    assert playing.shape[:2] == OverlayRenderer().canvas_size(sample.height, sample.width)
    yellow = np.array(OverlayRenderer().config.paused_colour)

    def paused_text(canvas):  # "PAUSED" is written across the middle of the frame
        centre = canvas[200:280, 200:440].reshape(-1, 3).astype(int)
        return int((np.abs(centre - yellow).sum(axis=1) < 30).sum())

    assert paused_text(playing) == 0 and paused_text(paused) > 100
    assert np.array_equal(paused, still_paused)  # the view holds still while paused
    drawn = int(out.split("demo done: ")[1].split(" frames")[0])
    assert 0 < drawn < sample.num_frames  # q ended it before the 12 s clip (played in real time) was over

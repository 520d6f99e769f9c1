"""Shared fixtures: small real media files written with PyAV (no mocks).

Test modules cannot import each other (pytest --import-mode=importlib), so helpers they share
live here as fixtures.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import av.codec.codec
import numpy as np
import pytest

# The engine cache (ONNX exports, OpenVINO IR) of this test session: one folder shared by every
# test and the commands they start, so the tiny model's graphs are built once per session and
# never land in (or come from) the user's own ~/.cache/socialmae_rt.
_SESSION_CACHE: "tempfile.TemporaryDirectory[str] | None" = None


def pytest_configure(config) -> None:  # noqa: ANN001 (pytest hook)
    global _SESSION_CACHE
    if "SOCIALMAE_RT_CACHE" not in os.environ:
        _SESSION_CACHE = tempfile.TemporaryDirectory(prefix="socialmae-rt-test-cache-")
        os.environ["SOCIALMAE_RT_CACHE"] = _SESSION_CACHE.name


def pytest_unconfigure(config) -> None:  # noqa: ANN001 (pytest hook)
    if _SESSION_CACHE is not None:
        os.environ.pop("SOCIALMAE_RT_CACHE", None)
        _SESSION_CACHE.cleanup()


# ---------------------------------------------------------------------------------------------
# Media clips (capture tests)
# ---------------------------------------------------------------------------------------------

CLIP_WIDTH, CLIP_HEIGHT = 160, 120
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.5
NUMBER_PATCH = 16  # top-left square whose grey level encodes the frame number
NUMBER_STEP = 8  # grey levels per frame: survives lossy coding, 32 distinct frames


@dataclass(frozen=True)
class WrittenClip:
    """A clip the fixture wrote, with what it put in it."""

    path: Path
    seconds: float
    fps: int | None  # None: no video track
    num_frames: int
    size: tuple[int, int]  # (width, height) of the frames
    audio_rate: int | None  # None: no audio track
    audio_channels: int
    num_audio_samples: int
    video_codec: str | None
    audio_codec: str | None

    @property
    def has_video(self) -> bool:
        return self.fps is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_rate is not None

    @staticmethod
    def frame_number(bgr: np.ndarray) -> int:
        """The frame number a decoded frame carries in its top-left patch."""
        level = float(bgr[2 : NUMBER_PATCH - 2, 2 : NUMBER_PATCH - 2].mean())
        return int(round(level / NUMBER_STEP))


# container suffix -> (video encoder, audio encoder, audio rate): the codecs each container takes.
CONTAINER_CODECS = {
    ".mp4": ("libx264", "aac", 44100),
    ".mkv": ("libx264", "libopus", 48000),
    ".webm": ("libvpx", "libopus", 48000),
    ".flv": ("flv", "libmp3lame", 44100),  # CREMA-D's container: Sorenson H.263 + MP3
    ".avi": ("mpeg4", "pcm_s16le", 44100),
    ".wav": (None, "pcm_s16le", 44100),
}


def encoder_available(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except av.codec.codec.UnknownCodecError:
        return False


def numbered_frame(index: int, num_frames: int, width: int, height: int) -> np.ndarray:
    """BGR [H, W, 3]: dark, frame number in the top-left grey level, a bright square moving right."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:NUMBER_PATCH, :NUMBER_PATCH] = (index * NUMBER_STEP) % 256
    x = NUMBER_PATCH + (width - 2 * NUMBER_PATCH - 24) * index // max(num_frames - 1, 1)
    frame[height // 2 - 12 : height // 2 + 12, x : x + 24] = 255
    return frame


def tone(num_samples: int, rate: int) -> np.ndarray:
    t = np.arange(num_samples) / rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def as_audio_format(block: np.ndarray, format_name: str) -> np.ndarray:
    """Float [channels, N] -> the array PyAV wants for `format_name` (planar or packed, int or float)."""
    if format_name.startswith("s16"):
        block = np.round(block * 32767).astype(np.int16)
    elif format_name.startswith("s32"):
        block = np.round(block * 2147483647.0).astype(np.int32)
    if not format_name.endswith("p"):
        block = block.T.reshape(1, -1)  # [channels, N] -> packed [1, N * channels]
    return np.ascontiguousarray(block)


def add_video_stream(container, codec: str, fps: int, size: tuple[int, int], pix_fmt: str):
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    stream.bit_rate = 1_000_000  # generous for 160x120: the frame-number patch must survive coding
    return stream


def write_video(container, stream, num_frames: int, corrupt_frames: frozenset[int]) -> None:
    for index in range(num_frames):
        frame = av.VideoFrame.from_ndarray(numbered_frame(index, num_frames, stream.width, stream.height), format="bgr24")
        frame.pts = index
        packets = stream.encode(frame)
        if index in corrupt_frames:
            packets = [garbage_like(packet, stream, seed=index) for packet in packets]
        container.mux(packets)
    container.mux(stream.encode())


def garbage_like(packet: av.Packet, stream, seed: int) -> av.Packet:
    """A packet with the same timing whose payload is random bytes: a corrupt frame mid-file."""
    payload = np.random.default_rng(seed).integers(0, 256, max(packet.size, 64), dtype=np.uint8).tobytes()
    bad = av.Packet(payload)
    bad.pts, bad.dts, bad.time_base, bad.stream = packet.pts, packet.dts, packet.time_base, stream
    return bad


def add_audio_stream(container, codec: str, rate: int, channels: int):
    return container.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")


def write_audio(container, stream, num_samples: int) -> None:
    rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    frame_size = stream.codec_context.frame_size or 1024
    format_name = stream.codec_context.format.name
    samples = np.tile(tone(num_samples, rate), (channels, 1))  # [N] -> [channels, N]
    for start in range(0, num_samples, frame_size):
        block = as_audio_format(samples[:, start : start + frame_size], format_name)
        frame = av.AudioFrame.from_ndarray(block, format=format_name, layout=stream.layout.name)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


@pytest.fixture
def write_clip(tmp_path) -> Callable[..., WrittenClip]:
    """Factory: write_clip(name, seconds=3, fps=10, video=True, audio=True, ...) -> WrittenClip.

    The container (and its codecs) follows the name's suffix (CONTAINER_CODECS) unless
    `video_codec` is given. Video: numbered frames, 160x120 unless `size` = (width, height).
    Audio: a 440 Hz tone, stereo at the container's usual rate (44.1 kHz for mp4/flv/avi/wav,
    48 kHz for Opus in mkv/webm). `corrupt_frames` replaces those frames'
    packets with random bytes. Skips the test when PyAV's ffmpeg lacks an encoder it needs.
    """

    def write(
        name: str = "clip.mp4",
        seconds: float = 3.0,
        fps: int = 10,
        video: bool = True,
        audio: bool = True,
        channels: int = 2,
        corrupt_frames: tuple[int, ...] = (),
        video_codec: str | None = None,
        size: tuple[int, int] = (CLIP_WIDTH, CLIP_HEIGHT),
        pix_fmt: str = "yuv420p",
    ) -> WrittenClip:
        path = tmp_path / name
        default_video, audio_codec, audio_rate = CONTAINER_CODECS[path.suffix]
        video_codec = video_codec or default_video
        video = video and video_codec is not None
        for needed in [c for c, used in ((video_codec, video), (audio_codec, audio)) if used]:
            if not encoder_available(needed):
                pytest.skip(f"PyAV's bundled ffmpeg has no {needed} encoder for {path.suffix}")
        num_frames = int(round(seconds * fps)) if video else 0
        num_samples = int(round(seconds * audio_rate)) if audio else 0
        with av.open(str(path), mode="w") as container:
            # Every stream must exist before the first packet is muxed (the header is written then).
            video_stream = add_video_stream(container, video_codec, fps, size, pix_fmt) if video else None
            audio_stream = add_audio_stream(container, audio_codec, audio_rate, channels) if audio else None
            if video_stream is not None:
                write_video(container, video_stream, num_frames, frozenset(corrupt_frames))
            if audio_stream is not None:
                write_audio(container, audio_stream, num_samples)
        return WrittenClip(
            path=path,
            seconds=seconds,
            fps=fps if video else None,
            num_frames=num_frames,
            size=size,
            audio_rate=audio_rate if audio else None,
            audio_channels=channels if audio else 0,
            num_audio_samples=num_samples,
            video_codec=video_codec if video else None,
            audio_codec=audio_codec if audio else None,
        )

    return write


@pytest.fixture
def truncated_clip(write_clip) -> Path:
    """An mp4 cut off halfway: its index (moov atom, written last) is missing."""
    clip = write_clip("whole.mp4")
    data = clip.path.read_bytes()
    truncated = clip.path.with_name("truncated.mp4")
    truncated.write_bytes(data[: len(data) // 2])
    return truncated


@pytest.fixture
def not_media_file(tmp_path) -> Path:
    """A text file with a media name: what a mislabelled download looks like."""
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 50)
    return path


def write_tone_wav(path: Path, seconds: float, rate: int = 16000, amplitude: int = 8000) -> Path:
    """A mono 16-bit WAV of a 440 Hz tone, written by PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        n = int(seconds * rate)
        samples = (amplitude * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)[None]  # [1, N]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


@pytest.fixture
def tone_wav(tmp_path) -> Callable[..., Path]:
    """Factory: tone_wav(seconds, amplitude=8000, name="tone.wav") -> path of a PyAV-written tone."""
    return lambda seconds, amplitude=8000, name="tone.wav": write_tone_wav(tmp_path / name, seconds, amplitude=amplitude)


# PulseAudio (tests/capture/test_microphone.py, tests/demo) ------------------------------------
# No sound card here: a private PulseAudio server (a user process) with null sinks stands in.
# A client captures a sink's `.monitor` through PortAudio's ALSA host and the ALSA `pulse`
# plugin; what `pacat` plays into the sink comes back in real time, as from a microphone.
# PortAudio reads the ALSA configuration once per process, so clients run as subprocesses with
# the server's `env` (its HOME holds the test's .asoundrc).

PULSE_INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libasound2-plugins (scripts/install_system_deps.sh)"
PULSE_SINK_RATE = 48000  # the null sinks' rate: what pacat plays into them
PULSE_START_TIMEOUT_S = 10.0


def pulse_tools_missing() -> list[str]:
    import glob
    import shutil

    missing = [tool for tool in ("pulseaudio", "pacat", "pactl") if shutil.which(tool) is None]
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        missing.append("the ALSA pulse plugin")
    return missing


def isolated_audio_env(base: Path, asoundrc: str, server_socket: Path) -> dict[str, str]:
    """Environment in which ALSA sees only our .asoundrc (beside the system config) and PulseAudio
    clients talk only to our server, never autospawning one."""
    home = base / "home"
    runtime = base / "run"
    for folder in (home, runtime):
        folder.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)  # PulseAudio refuses a runtime dir others can read
    (home / ".asoundrc").write_text(asoundrc)
    client_conf = base / "client.conf"
    client_conf.write_text("autospawn = no\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ALSA_", "PULSE_"))}
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        XDG_CONFIG_HOME=str(home / ".config"),
        PULSE_SERVER=f"unix:{server_socket}",
        PULSE_CLIENTCONFIG=str(client_conf),
        JACK_NO_START_SERVER="1",  # PortAudio's JACK host probes for a server; never start one
    )
    return env


@dataclass
class PulseServer:
    """A private PulseAudio server with null sinks, each kept busy by a silent low-latency stream.

    An idle null sink renders in long blocks (first buffers took up to 2 s here); a stream
    playing into the sink keeps it rendering in ~20 ms steps.
    """

    base: Path
    sinks: tuple[str, ...]
    asoundrc: str  # the ALSA devices clients see (e.g. `type pulse` PCMs on the sinks' monitors)
    env: dict[str, str] = field(init=False)
    daemon: subprocess.Popen | None = None
    keepers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.base / "native"

    @property
    def log(self) -> Path:
        return self.base / "pulseaudio.log"

    def start(self) -> "PulseServer":
        if len(str(self.socket)) > 100:  # AF_UNIX paths are limited to 108 bytes
            raise RuntimeError(f"socket path {self.socket} is too long for a unix socket; use a shorter TMPDIR")
        self.env = isolated_audio_env(self.base, self.asoundrc, self.socket)
        command = [
            "pulseaudio", "-n", "--daemonize=no", "--system=no", "--use-pid-file=no",
            "--exit-idle-time=-1", "--disallow-exit", "--disable-shm=yes", "--realtime=no",
            "--high-priority=no", "--log-target=stderr", "--log-level=error",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
        ]  # fmt: skip
        command += [f"--load=module-null-sink sink_name={sink} rate={PULSE_SINK_RATE} channels=2" for sink in self.sinks]
        with self.log.open("w") as log:
            self.daemon = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_for("the server to answer", lambda: self.pactl("info", check=False).returncode == 0)
        for sink in self.sinks:
            self.keepers.append(
                subprocess.Popen(
                    ["pacat", "--playback", "--raw", f"--device={sink}", "--latency-msec=20", "/dev/zero"],
                    env=self.env,
                    stderr=subprocess.DEVNULL,
                )
            )
        self._wait_for("the silent streams to connect", self._all_sinks_playing)
        for sink in self.sinks:
            # the sink's first 2 s block was armed before the silent stream asked for 20 ms, and
            # runs out first; suspending and resuming re-arms it with the short block
            self.pactl("suspend-sink", sink, "1")
            self.pactl("suspend-sink", sink, "0")
        return self

    def _all_sinks_playing(self) -> bool:
        lines = self.pactl("list", "short", "sink-inputs").stdout.splitlines()
        return len(lines) == len(self.sinks)

    def _wait_for(self, what: str, ready) -> None:
        deadline = time.monotonic() + PULSE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {self.daemon.returncode}: {self.log.read_text()}")
            if ready():
                return
            time.sleep(0.02)  # polling interval; the deadline bounds the wait
        raise RuntimeError(f"pulseaudio: gave up waiting for {what} after {PULSE_START_TIMEOUT_S} s")

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=5, check=check)

    def stop(self) -> None:
        for process in [*self.keepers, self.daemon]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.keepers, self.daemon]:
            if process is None:
                continue
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="session")
def pulse_audio():
    """PulseServer(base, sinks, asoundrc).start() and isolated_env(base, asoundrc, socket); skips
    the test when PulseAudio or the ALSA pulse plugin is missing."""
    from types import SimpleNamespace

    missing = pulse_tools_missing()
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: {PULSE_INSTALL_HINT}")
    return SimpleNamespace(PulseServer=PulseServer, isolated_env=isolated_audio_env, sink_rate=PULSE_SINK_RATE)


# ROS (tests/nodes, tests/launch) ------------------------------------------------------------
@pytest.fixture
def context(monkeypatch):
    """An rclpy context on a random ROS domain, with discovery kept on this machine."""
    import random

    import rclpy

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=random.randint(1, 200))
    yield ctx
    rclpy.shutdown(context=ctx)


@pytest.fixture
def spin_until():
    """spin_until(executor, condition, timeout_s=10): spin until condition() holds, or fail."""
    import time

    def spin(executor, condition, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            executor.spin_once(timeout_sec=0.05)

    return spin


# Released checkpoint layout (tests/model, tests/training) ------------------------------------
# Written out from the reference code, independently of our model code, so the tests compare our
# models against the reference layout rather than against themselves.


def reference_block_shapes(d: int, mlp_ratio: float) -> dict[str, tuple[int, ...]]:
    """One reference block at width d: timm 0.4.5 Attention/Mlp names + the three LayerNorm pairs."""
    hidden = int(d * mlp_ratio)
    shapes = {
        "attn.qkv.weight": (3 * d, d),
        "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d),
        "attn.proj.bias": (d,),
        "mlp.fc1.weight": (hidden, d),
        "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (d, hidden),
        "mlp.fc2.bias": (d,),
    }
    for norm in ("norm1", "norm1_a", "norm1_v", "norm2", "norm2_a", "norm2_v"):
        shapes[f"{norm}.weight"] = (d,)
        shapes[f"{norm}.bias"] = (d,)
    return shapes


def reference_stem_shapes(d: int, num_audio: int, num_video: int, p: int = 16,
                          s: int = 2) -> dict[str, tuple[int, ...]]:
    """The encoder around its blocks, shared by the fine-tuned and pretraining layouts: patch
    embeddings, modality and position embeddings, the three final LayerNorms."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed_a.proj.weight": (d, 1, p, p),
        "patch_embed_a.proj.bias": (d,),
        "patch_embed_v.proj.weight": (d, 3, p, p, s),
        "patch_embed_v.proj.bias": (d,),
        "modality_a": (1, 1, d),
        "modality_v": (1, 1, d),
        "pos_embed_a": (1, num_audio, d),
        "pos_embed_v": (1, num_video, d),
    }
    for norm in ("norm_a", "norm_v", "norm"):
        shapes[f"{norm}.weight"] = (d,)
        shapes[f"{norm}.bias"] = (d,)
    return shapes


def official_shapes(config) -> dict[str, tuple[int, ...]]:
    d, p, s = config.embed_dim, config.patch_size, config.temporal_stride
    num_audio = (config.num_mel_bins // p) * (config.audio_length // p)
    num_video = (config.image_size // p) ** 2 * (config.num_frames // s)
    shapes = reference_stem_shapes(d, num_audio, num_video, p, s)
    block = reference_block_shapes(d, config.mlp_ratio)
    depths = {"blocks_a": config.modality_specific_depth, "blocks_v": config.modality_specific_depth}
    depths["blocks_u"] = config.joint_depth
    for group, depth in depths.items():
        for i in range(depth):
            for name, shape in block.items():
                shapes[f"{group}.{i}.{name}"] = shape
    shapes["mlp_head.0.weight"] = (d,)
    shapes["mlp_head.0.bias"] = (d,)
    shapes["mlp_head.1.weight"] = (config.num_classes, d)
    shapes["mlp_head.1.bias"] = (config.num_classes,)
    return shapes


def make_official_state(config, prefix: str = "module.", seed: int = 0) -> dict:
    """A released-format state dict with random values (LayerNorm weights near 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in official_shapes(config).items():
        tensor = torch.randn(shape, generator=generator) * 0.05
        if "norm" in name and name.endswith(".weight") or name == "mlp_head.0.weight":
            tensor += 1.0
        state[prefix + name] = tensor
    return state


@pytest.fixture
def block_layout():
    """The reference block as a function: (width, mlp_ratio) -> {name: shape}."""
    return reference_block_shapes


@pytest.fixture
def stem_layout():
    """The encoder's non-block tensors as a function: (width, audio patches, video tubelets,
    patch=16, stride=2) -> {name: shape}."""
    return reference_stem_shapes


@pytest.fixture
def official_layout():
    """The reference layout as a function: config -> {name: shape}."""
    return official_shapes


@pytest.fixture
def official_state():
    """Factory: (config, prefix='module.', seed=0) -> a released-format state dict."""
    return make_official_state


# Released-format checkpoints for the weights and bundle tests: the reference layout above at tiny
# width and depth with the released input sizes, one file per released task, plus the pretrained
# encoder with an MAE decoder.

# Tiny width, 2 blocks per stream: the released token counts at a few ms per window.
RELEASED_LIKE = {"modality_specific_depth": 2}
HEAD_WIDTHS = {"emotion": 6, "personality": 5, "laughter": 3}


def released_config(task: str, size: str = "tiny", width: int | None = None):
    from socialmae_rt.model import SocialMAEConfig

    return SocialMAEConfig.variant(size, num_classes=width or HEAD_WIDTHS[task], **RELEASED_LIKE)


def pretrained_state(config, official_state) -> dict:
    """The released pretraining layout: the encoder without a head, plus decoder tensors."""
    import torch

    state = {k: v for k, v in official_state(config, seed=9).items() if not k.startswith("module.mlp_head.")}
    generator = torch.Generator().manual_seed(10)
    for name, shape in {"decoder_embed.weight": (64, config.embed_dim), "decoder_embed.bias": (64,),
                        "mask_token": (1, 1, 64), "decoder_pos_embed_a": (1, 512, 64),
                        "decoder_blocks.0.attn.qkv.weight": (192, 64), "decoder_pred_a.weight": (256, 64)}.items():
        state["module." + name] = torch.randn(shape, generator=generator)
    return state


@pytest.fixture
def released_files(tmp_path, official_state) -> dict[str, Path]:
    """task -> a released-format .pth (keys with DataParallel's `module.`), and 'encoder' -> the pretrained one."""
    import torch

    folder = tmp_path / "released"
    folder.mkdir()
    files = {}
    for seed, task in enumerate(HEAD_WIDTHS, start=1):
        files[task] = folder / f"{task}.pth"
        torch.save(official_state(released_config(task), seed=seed), files[task])
    files["encoder"] = folder / "pretrained.pth"
    torch.save(pretrained_state(released_config("emotion"), official_state), files["encoder"])
    return files


@pytest.fixture
def bundle_dir(tmp_path, released_files) -> Path:
    """The three fine-tuned files and the pretrained one imported into one bundle folder."""
    from socialmae_rt.weights.importer import import_released

    out = tmp_path / "bundle"
    for task, path in released_files.items():
        import_released(path, task, out)
    return out


@pytest.fixture
def released_layout():
    """(task, size='tiny', width=None) -> the SocialMAEConfig a released-format test file is made with."""
    return released_config


# Google Drive on loopback (tests/weights/test_download.py, tests/test_readme.py) ---------------------

class _Drive(http.server.BaseHTTPRequestHandler):
    """Answers like Google Drive for large files: `/uc?export=download&id=ID` gives the "can't scan
    this file for viruses" page, whose form (action on another path, as drive.usercontent.google.com
    is another host) gives the file. `files`: id -> bytes; `only_pages`: every answer is a page."""

    files: dict[str, bytes] = {}
    only_pages = [False]
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        import urllib.parse

        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        type(self).requests.append(self.path)
        if type(self).only_pages[0]:
            return self._page("<html><head><title>Google Drive - Quota exceeded</title></head><body>Too many users "
                              "have viewed or downloaded this file recently.</body></html>")
        if url.path == "/uc" and query.get("id") in self.files:
            port = self.server.server_address[1]
            return self._page(
                '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
                '<p>Google Drive can&#39;t scan this file for viruses.</p>'
                f'<form id="download-form" action="http://127.0.0.1:{port}/download" method="get">'
                '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                f'<input type="hidden" name="id" value="{query["id"]}">'
                '<input type="hidden" name="export" value="download">'
                '<input type="hidden" name="confirm" value="t">'
                '<input type="hidden" name="uuid" value="0c8f1a52-test"></form></body></html>')
        if url.path == "/download" and query.get("confirm") == "t" and query.get("uuid") == "0c8f1a52-test":
            body = self.files[query["id"]]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", f'attachment; filename="{query["id"]}.pth"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.end_headers()

    def _page(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_drive(monkeypatch):
    """A server on 127.0.0.1 that answers like Google Drive; $SOCIALMAE_RT_DRIVE_URL points at it."""
    from socialmae_rt.weights.google_drive import DRIVE_URL_ENV

    _Drive.files, _Drive.only_pages[0] = {}, False
    _Drive.requests.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drive)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(DRIVE_URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/uc")
    yield _Drive
    httpd.shutdown()
    httpd.server_close()

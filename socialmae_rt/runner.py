"""Build a pipeline from RunOptions (the `socialmae-rt run` flags) and run it.

RunOptions is the one source of defaults for the command line and, later, the ROS node's
parameters: a user who knows one knows the other.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from socialmae_rt.capture.base import DEFAULT_MAX_FRAME_SIDE
from socialmae_rt.messages import seconds_to_ns
from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.postprocess import PostprocessConfig
from socialmae_rt.scheduler import SchedulerConfig
from socialmae_rt.sinks import ConsoleSink, JsonlSink
from socialmae_rt.speakers import SpeakerConfig
from socialmae_rt.weights.bundle import parse_weights

if TYPE_CHECKING:
    from socialmae_rt.pipeline import Pipeline

log = logging.getLogger(__name__)

NO_MIC = ("none", "off", "")
# Heads a model built without weights gets, so every output of the pipeline is exercised.
DEFAULT_EXTRA_HEADS = {"laughter": 1, "personality": 5}


@dataclass
class RunOptions:
    source: str = "0"  # camera index, /dev/video*, URL, or a media file
    mic: str | None = "default"  # microphone index or name substring; "none" = no microphone
    # released .pth, our .safetensors, a bundle directory, or "emotion=A laughter=B personality=C";
    # None = random (warned)
    weights: str | None = None
    model: str = "base"  # size when weights do not say: base | small | tiny
    backend: str = "auto"  # the fastest this CPU and install allow (engines/auto.py), or a name
    hop: float = 0.5
    output: str | None = None  # JSONL file, appended to
    fresh_output: bool = False  # start the JSONL file afresh instead of appending
    realtime: bool = False  # pace a file at real time, like a live stream
    width: int | None = 640  # camera resolution and rate asked for (the device may give others)
    height: int | None = 480
    fps: float | None = 30.0
    max_faces: int = 4
    max_frame_side: int = DEFAULT_MAX_FRAME_SIDE  # larger frames (pixels, longest side) are scaled down at capture
    threads: int | None = None  # backend compute threads (None: every core this process may use)
    # an int8/bf16 backend re-runs one live window through fp32 this often (seconds; 0: off) and gives
    # way to the next backend when 3 checks in a row miss the int8 gate's bar
    shadow_check_s: float = 30.0
    # record this many seconds of the run's own input at a first start and calibrate ov-int8 on it
    # (gated on its later part too), running a float backend meanwhile; 0: off (site_calibration.py)
    calibrate_live_s: float = 0.0
    # backend "triton": the server (HOST:PORT; default 127.0.0.1 and the protocol's port 8001/8000),
    # its protocol, the model name prefix of `export-triton`, and the timeout of one request
    triton_url: str | None = None
    triton_protocol: str = "grpc"
    triton_model_prefix: str = "socialmae"
    triton_timeout: float = 10.0
    # who speaks: each face's mouth (MediaPipe face mesh) against the audio; records gain `speaking`,
    # laughter events the face that speaks. speakers_audio: all (every face hears the window) |
    # speakers (while a visible face speaks, only it hears; the others get video-only windows)
    speakers: bool = False
    speakers_audio: str = "all"
    duration: float | None = None  # stop after this many seconds of input (media time for an unpaced file)
    quiet: bool = False  # no per-window line
    embedding: bool = False  # include the pooled embedding in records
    status: bool = False  # write status records into the JSONL too
    zmq: str | None = None  # publish records on this ZeroMQ PUB endpoint, e.g. tcp://127.0.0.1:5556
    zmq_curve_key: str | None = None  # CURVE secret certificate: encrypt the ZeroMQ stream
    zmq_curve_clients: str | None = None  # folder of client public certificates: only they may subscribe
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        if self.model not in MODEL_VARIANTS:
            raise ValueError(f"model must be one of {sorted(MODEL_VARIANTS)}, got {self.model!r}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration}")
        if self.calibrate_live_s:
            from socialmae_rt.site_calibration import SiteCalibrationConfig

            SiteCalibrationConfig(seconds=self.calibrate_live_s)  # too short is refused here, before anything loads
        if self.shadow_check_s < 0:
            raise ValueError(f"shadow_check_s must be >= 0 seconds (0: no shadow check), got {self.shadow_check_s}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or unset for every usable core), got {self.threads}")
        SpeakerConfig(enabled=self.speakers, audio_to=self.speakers_audio)  # refused here, before anything loads
        if self.triton_protocol not in ("grpc", "http"):
            raise ValueError(f"triton_protocol must be grpc or http, got {self.triton_protocol!r}")
        if not self.triton_timeout > 0:
            raise ValueError(f"triton_timeout must be > 0 seconds, got {self.triton_timeout}")
        if self.triton_url is not None and not self.triton_url.strip():
            self.triton_url = None
        SchedulerConfig(hop_s=self.hop)  # a bad hop is refused here, before anything loads
        if self.weights is not None and not self.weights.strip():
            self.weights = None
        parse_weights(self.weights)  # a malformed bundle is refused before anything loads

    @property
    def mic_enabled(self) -> bool:
        return self.mic is not None and self.mic.lower() not in NO_MIC


def is_camera(source: str) -> bool:
    return source.isdigit() or source.startswith("/dev/video") or "://" in source


def mic_device(mic: str) -> int | str | None:
    if mic == "default":
        return None
    return int(mic) if mic.isdigit() else mic


def build_sources(options: RunOptions) -> list:
    if is_camera(options.source):
        from socialmae_rt.capture.camera import CameraConfig, CameraSource

        device = int(options.source) if options.source.isdigit() else options.source
        sources = [CameraSource(CameraConfig(device=device, width=options.width, height=options.height, fps=options.fps,
                                             max_frame_side=options.max_frame_side))]
        if options.mic_enabled:
            from socialmae_rt.capture.microphone import MicConfig, MicSource

            sources.append(MicSource(MicConfig(device=mic_device(options.mic))))
        return sources
    path = Path(options.source)
    if not path.is_file():
        raise FileNotFoundError(
            f"--source {options.source!r} is neither a camera (index, /dev/video*, URL) nor an existing file"
        )
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource

    return [MediaFileSource(MediaFileConfig(path=str(path), realtime=options.realtime,
                                            max_frame_side=options.max_frame_side))]


def open_sources(sources: list, failed: list | None = None) -> list:
    """Open each source; one that fails is left out with a warning (and appended to `failed` as
    (source, error)), unless none is left."""
    from socialmae_rt.messages import SourceError

    opened, failures = [], []
    for source in sources:
        try:
            source.open()
            opened.append(source)
        except SourceError as err:
            failures.append(str(err))
            if failed is not None:
                failed.append((source, err))
            log.warning("%s; continuing without it", err)
    if not opened:
        raise SourceError("no source could be opened: " + "; ".join(failures))
    return opened


def model_config_for(options: RunOptions) -> SocialMAEConfig | None:
    """Size for a released .pth (emotion head only) or random weights (all heads); ours carry their own."""
    if options.weights is None:
        return SocialMAEConfig.variant(options.model, extra_heads=DEFAULT_EXTRA_HEADS)
    if options.weights.endswith((".pth", ".pt")):
        return SocialMAEConfig.variant(options.model)
    return None


# Backends that only load (seconds): made while the first window fills. Every other one may build
# something the first time (an ONNX export, OpenVINO IR, int8 calibration, TensorRT plans: minutes).
LOAD_ONLY_BACKENDS = ("torch", "torch-bf16")


def status_to_stderr(message: str) -> None:
    print(f"socialmae-rt: {message}", file=sys.stderr, flush=True)


def make_backend(options: RunOptions, on_status=status_to_stderr, background: bool = True):
    """The backend of a live run: `auto` starts at once on what is built and switches to better ones
    built in the background; approximate backends are shadow-checked (engines/adaptive.py)."""
    from socialmae_rt.engines import create_backend
    from socialmae_rt.engines.adaptive import create_live_backend
    from socialmae_rt.engines.switching import ShadowConfig

    backend_options: dict[str, Any] = {"on_status": on_status}
    if options.threads is not None:
        backend_options["threads"] = options.threads
    if options.backend == "triton":
        backend_options.update(triton_url=options.triton_url, triton_protocol=options.triton_protocol,
                               triton_model_prefix=options.triton_model_prefix, triton_timeout_s=options.triton_timeout)
    shadow = ShadowConfig(enabled=options.shadow_check_s > 0, every_s=options.shadow_check_s)
    site = None
    if options.calibrate_live_s:
        from socialmae_rt.site_calibration import SiteCalibrationConfig, SiteRecorder

        site = SiteRecorder(SiteCalibrationConfig(seconds=options.calibrate_live_s), on_status=on_status)
        background = True  # the build waits for the recording, which the run itself makes
    backend = create_live_backend(create_backend, options.backend, options.weights, model_config_for(options),
                                  shadow=shadow, background=background, site=site, **backend_options)
    if site is not None and not site.cancelled:
        backend.site_recorder = site  # build_pipeline feeds it what the pipeline ingests
    return backend


def backend_before_capture(options: RunOptions, on_status=status_to_stderr, background: bool = True):
    """The backend, made now when it may have to build first, so that no live input is captured
    and dropped while it builds; None for backends that load in seconds (made while the first
    window fills). `background=False`: `auto` builds its best candidate now instead of starting on
    a ready one (an unpaced file, where waiting loses nothing)."""
    if options.backend in LOAD_ONLY_BACKENDS:
        return None
    return make_backend(options, on_status, background=background)


def build_pipeline(options: RunOptions, sinks: list, observers: tuple = (), backend=None) -> "Pipeline":
    """The pipeline, on `backend` if one was made already (backend_before_capture)."""
    # Heavy imports (torch, MediaPipe) happen here, after the sources started capturing.
    from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
    from socialmae_rt.pipeline import Pipeline, PipelineConfig

    backend = backend or make_backend(options)
    site = getattr(backend, "site_recorder", None)
    observers = (*observers, site) if site is not None else observers
    detector = FaceDetector(FaceDetectorConfig(max_faces=options.max_faces))
    tracker = FaceTracker(detector, TrackerConfig(max_tracks=options.max_faces))
    config = PipelineConfig(hop_s=options.hop, include_embedding=options.embedding, postprocess=options.postprocess,
                            speakers=SpeakerConfig(enabled=options.speakers, audio_to=options.speakers_audio))
    config.buffer.max_faces = options.max_faces
    return Pipeline(backend, tracker, sinks, config, observers=observers)


def output_sinks(options: RunOptions, out: TextIO | None = None) -> list:
    """The JSONL file and the ZeroMQ publisher, when asked for (the CLI and the ROS node alike)."""
    out = out or sys.stdout  # looked up now: a default bound at import would outlive a replaced stdout
    sinks: list = []
    if options.output:
        sinks.append(JsonlSink(options.output, include_embedding=options.embedding, include_status=options.status,
                               fresh=options.fresh_output))
    if options.zmq:
        from socialmae_rt.nodes.zmq_publisher import ZmqConfig, ZmqSink

        publisher = ZmqSink(ZmqConfig(endpoint=options.zmq, curve_secret_key_file=options.zmq_curve_key,
                                      curve_allowed_clients=options.zmq_curve_clients,
                                      include_embedding=options.embedding))
        out.write(f"socialmae-rt: publishing on ZeroMQ {publisher.endpoint} (topics results, laughter_onset, "
                  "laughter_offset, status)\n")
        sinks.append(publisher)
    return sinks


def runs_offline(sources: list) -> bool:
    """A single file, not paced (stamped on the media clock): every window in order, as fast as the
    backend goes."""
    return len(sources) == 1 and sources[0].clock == "media"


def start_capture(sources: list) -> list:
    """Live sources start capturing now, so that the first window fills while the model loads
    (capture/prefetch.py); an unpaced file is read by the pipeline itself, as fast as it goes."""
    if runs_offline(sources):
        return sources
    from socialmae_rt.capture.prefetch import PrefetchedSource

    return [PrefetchedSource(source).start() for source in sources]


def close_all(sources: list) -> None:
    for source in sources:
        source.close()


def input_limit_ns(duration_s: float | None) -> int | None:
    """`--duration` as a media-time bound for offline runs (None: the whole input)."""
    return None if duration_s is None else seconds_to_ns(duration_s)


def run_pipeline(pipeline: "Pipeline", options: RunOptions, sources: list, stop: threading.Event) -> None:
    """`duration` means the same everywhere: seconds of the input (media time for an unpaced file,
    which runs faster than real time; capture time live), as for `demo --duration`."""
    if runs_offline(sources):
        pipeline.run_offline(sources[0], stop, until_ns=input_limit_ns(options.duration))
    else:
        pipeline.run_live(sources, stop, max_seconds=options.duration)


def run(options: RunOptions, out: TextIO | None = None) -> dict[str, Any]:
    """Run to the end of the source (or `duration`, or SIGINT/SIGTERM); returns the final status.

    SIGINT and SIGTERM stop a running pipeline cleanly (sources closed, sinks flushed, summary
    printed); while sources open and the model loads they abandon the start (KeyboardInterrupt,
    which the command line reports in one line)."""
    out = out or sys.stdout
    stop, running = threading.Event(), threading.Event()

    def on_signal(_signum, _frame) -> None:
        if not running.is_set():
            raise KeyboardInterrupt
        stop.set()

    # Signals only reach the main thread; elsewhere (tests, embedding programs) the caller stops us.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        return _run(options, out, stop, running)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_long_enough(sources: list) -> None:
    """A file shorter than one window can give no result: say so before the model loads."""
    from socialmae_rt.buffer import BufferConfig

    window_s = BufferConfig().window_s
    for source in sources:
        duration = getattr(source, "duration_s", None)
        if source.clock == "media" and duration is not None and duration < window_s:
            name = getattr(source, "path", None)
            raise ValueError(f"{'clip ' + Path(name).name if name else source.status.name} is {duration:.1f} s, "
                             f"shorter than the {window_s:g} s window: no window can be formed")


def _run(options: RunOptions, out: TextIO, stop: threading.Event, running: threading.Event) -> dict[str, Any]:
    opened = open_sources(build_sources(options))
    sinks: list = []
    backend = None
    try:
        check_long_enough(opened)
        # Outputs open before the backend builds: a bad --output fails in a second, not after minutes.
        sinks += output_sinks(options, out)
        backend = backend_before_capture(options, background=not runs_offline(opened))
    except BaseException:
        close_all(opened)
        for sink in sinks:
            sink.close()
        raise
    sources = start_capture(opened)
    if not options.quiet:
        # Offline files are stamped from 0; live stamps are monotonic, so the line counts from the first.
        duration = getattr(sources[0], "duration_s", None)
        sinks.insert(0, ConsoleSink(out, origin_ns=0 if runs_offline(sources) else None, duration_s=duration))
    try:
        pipeline = build_pipeline(options, sinks, backend=backend)
    except BaseException:
        close_all(sources)
        for sink in sinks:
            sink.close()
        if backend is not None:
            backend.close()
        raise
    out.write(backend_line(pipeline.backend, options))
    running.set()
    try:
        run_pipeline(pipeline, options, sources, stop)
    finally:
        for sink in sinks:
            sink.close()
        pipeline.close()
    status = pipeline.status(sources)
    out.write(summary_line(status, options.output))
    return status


def backend_line(backend, options: RunOptions) -> str:
    """What runs and which checkpoint serves which task, e.g.
    `socialmae-rt: torch (fp32, cpu), hop 0.5 s, source clip.mp4; emotion <- a.safetensors, ...`."""
    from socialmae_rt.engines.bundle_backend import describe_tasks

    info = backend.info
    return (f"socialmae-rt: {info.name} ({info.precision}, {info.device}), hop {options.hop} s, "
            f"source {options.source}{' (real time)' if options.realtime else ''}; {describe_tasks(backend)}\n")


def latency_text(status: dict[str, Any]) -> str:
    """A run's end-to-end latency percentiles for a person: "p50 291 ms, p95 410 ms" (or "n/a")."""
    p50, p95 = status["latency_ms_p50"], status["latency_ms_p95"]
    return "n/a" if p50 is None else f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"


def summary_line(status: dict[str, Any], output: str | None) -> str:
    latency = latency_text(status)
    where = f"; records in {output}" if output else ""
    return (
        f"done: {status['windows']} windows, {status['results']} records, {status['skipped_windows']} skipped, "
        f"latency {latency}; last: {status['last']}{where}\n"
    )

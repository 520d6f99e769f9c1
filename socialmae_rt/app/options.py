"""RunOptions: what a run is asked to do, declared once. The `socialmae-rt run` and `demo` flags,
the ROS node's parameters and both help texts come from these fields (util/options.py); the
demo and soak compose them with their own few."""

from __future__ import annotations

from dataclasses import dataclass, field

from socialmae_rt.capture.base import DEFAULT_MAX_FRAME_SIDE
from socialmae_rt.engines.triton_backend import TritonConfig
from socialmae_rt.model.config import MODEL_NAMES, MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.stream.postprocess import PostprocessConfig
from socialmae_rt.stream.scheduler import SchedulerConfig
from socialmae_rt.stream.speakers import AUDIO_TO, SpeakerConfig
from socialmae_rt.util.options import nested, option
from socialmae_rt.weights.bundle import parse_weights

NO_MIC = ("none", "off", "")
BACKEND_NAMES = "auto | torch | torch-bf16 | ort | ort-int8 | ov | ov-int8 | trt | triton"
# Heads a model built without weights gets, so every output of the pipeline is exercised.
DEFAULT_EXTRA_HEADS = {"laughter": 1, "personality": 5}

# The options `run` and `demo` share (the demo names its own source and pacing).
PERCEPTION_OPTIONS = (
    "mic", "weights", "model", "backend", "triton_url", "triton_protocol", "triton_model_prefix", "triton_timeout",
    "hop", "speakers", "speakers_audio", "output", "fresh_output", "width", "height", "fps", "max_faces", "threads",
    "shadow_check_s", "calibrate_live_s", "duration",
)


@dataclass
class RunOptions:
    source: str = option("0", "camera index, /dev/videoN, stream URL, or a media file (mp4/mkv/avi/webm/flv) "
                         "(default: %(default)s)")
    mic: str | None = option("default", "microphone index or name substring for a camera source; 'none' for no "
                             "audio (default: the default input). A file brings its own audio.")
    weights: str | None = option(None, "a released .pth, our .safetensors, a bundle directory from `weights import`, "
                                 "or one checkpoint per task: emotion=A laughter=B personality=C. Without it the model "
                                 "has RANDOM weights and outputs are meaningless", nargs="+", metavar="W")
    model: str = option("base", "model size when the weights do not say (default: %(default)s)", choices=MODEL_NAMES)
    backend: str = option("auto", f"inference backend: {BACKEND_NAMES} (default: %(default)s: the fastest this CPU "
                          "and install allow; a first start builds what it needs once; triton: a Triton Inference "
                          "Server, see --triton-url)")
    triton: TritonConfig = nested("triton_", TritonConfig)
    hop: float = option(0.5, "seconds between windows, 0.25..4 (default: %(default)s)")
    speakers: bool = option(False, "who speaks: each face's mouth against the audio (MediaPipe face mesh, ~6 ms per "
                            "face crop); records gain `speaking`, laughter events the face that speaks (None: off "
                            "camera)")
    speakers_audio: str = option("all", "with --speakers: all (default: every face hears the window) or speakers "
                                 "(while a visible face speaks only it hears; the others get video-only windows)",
                                 choices=AUDIO_TO)
    output: str | None = option(None, "append result and event records to this JSONL file")
    fresh_output: bool = option(False, "start the --output file afresh instead of appending to it")
    realtime: bool = option(False, "pace a file at real time, like a live stream")
    width: int | None = option(640, "camera width asked for (default: %(default)s)")
    height: int | None = option(480, "camera height asked for (default: %(default)s)")
    fps: float | None = option(30.0, "camera frame rate asked for (default: %(default)s)")
    max_faces: int = option(4, "faces tracked at once (default: %(default)s)")
    max_frame_side: int = option(DEFAULT_MAX_FRAME_SIDE, "scale larger frames down to this many pixels on the "
                                 "longest side as they are captured, so memory stays bounded whatever the input "
                                 "(default: %(default)s)")
    threads: int | None = option(None, "compute threads of the backend (default: every core this process may use: "
                                 "affinity, cgroup quota)")
    shadow_check_s: float = option(30.0, "an int8/bf16 backend re-runs one live window through fp32 this often, in "
                                   "idle time, and gives way to the next backend after 3 misses in a row (seconds; "
                                   "0: off; default: %(default)g)")
    calibrate_live_s: float = option(0.0, "at a first start where auto would build ov-int8: record this many seconds "
                                     "of this run's own input, calibrate int8 on the first 60 %% and gate it on the "
                                     "last 40 %% (beside the held-out suite), running a float backend meanwhile (0: "
                                     "off, calibrate on the bundled sample clip; default: %(default)g; 60 or more "
                                     "recommended)", flag="--calibrate-live", metavar="SECONDS")
    duration: float | None = option(None, "stop after this many seconds of input: media time for a file (an unpaced "
                                    "file runs faster than real time), capture time live")
    quiet: bool = option(False, "no per-window line")
    embedding: bool = option(False, "include the pooled embedding in records")
    status: bool = option(False, "also write status records (1 Hz) into the JSONL")
    zmq: str | None = option(None, "publish records on this ZeroMQ PUB endpoint (e.g. tcp://127.0.0.1:5556; "
                             "multipart [topic, JSON])")
    zmq_curve_key: str | None = option(None, "CURVE secret certificate (zmq.auth.create_certificates) to encrypt "
                                       "the ZeroMQ stream")
    zmq_curve_clients: str | None = option(None, "folder of client public certificates (*.key): only those clients "
                                           "may subscribe (ZAP)")
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        if isinstance(self.weights, (list, tuple)):  # task=checkpoint entries: one string, as a ROS parameter holds it
            self.weights = " ".join(self.weights)
        if self.model not in MODEL_VARIANTS:
            raise ValueError(f"model must be one of {sorted(MODEL_VARIANTS)}, got {self.model!r}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration}")
        if self.calibrate_live_s:
            from socialmae_rt.app.site_calibration import SiteCalibrationConfig

            SiteCalibrationConfig(seconds=self.calibrate_live_s)  # too short is refused here, before anything loads
        if self.shadow_check_s < 0:
            raise ValueError(f"shadow_check_s must be >= 0 seconds (0: no shadow check), got {self.shadow_check_s}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or unset for every usable core), got {self.threads}")
        SpeakerConfig(enabled=self.speakers, audio_to=self.speakers_audio)  # refused here, before anything loads
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


def model_config_for(options: RunOptions) -> SocialMAEConfig | None:
    """Size for a released .pth (emotion head only) or random weights (all heads); ours carry their own."""
    if options.weights is None:
        return SocialMAEConfig.variant(options.model, extra_heads=DEFAULT_EXTRA_HEADS)
    if options.weights.endswith((".pth", ".pt")):
        return SocialMAEConfig.variant(options.model)
    return None

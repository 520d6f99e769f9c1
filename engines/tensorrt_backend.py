"""TensorRT backend: one engine per modality, built from the ONNX export and cached on disk.

Written against the TensorRT 10 Python API (name-based I/O tensors, `execute_async_v3`,
`build_serialized_network`, memory-pool limits). `tensorrt` is imported only inside functions:
this module imports, and its pure parts (config, input checks, batching, profile shapes) run,
on machines without TensorRT or a GPU.

    backend = create_tensorrt_backend(export, TensorRTConfig(precision="fp16"))

returns a `TensorRTBackend` when TensorRT and a CUDA GPU are there, and otherwise warns and
returns the ONNX Runtime backend (`info.name` says which one you got).

Engines are cached by `engine_cache`: the first start on a GPU builds them (minutes; `state` is
"building" and `on_status` hears about it), later starts load the plans in milliseconds.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from socialmae_rt.backend import (  # the shared checks: the TRT tests import them from here too
    MODE_INPUTS, Backend, BackendInfo, BackendOutput, NonFiniteOutputError, StatusCallback, check_finite, check_inputs)
from socialmae_rt.engines.engine_cache import (
    PRECISIONS, BatchProfile, CacheKeyParts, LoadedEngine, PlanReport, default_cache_dir, load_or_build)
from socialmae_rt.engines.onnx_export import OnnxExport, load_export, sha256_file
from socialmae_rt.model import Modality

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "pip install --extra-index-url https://pypi.nvidia.com 'tensorrt>=10,<12' "
    "(TensorRT 10 or 11, needs an NVIDIA GPU and driver)"
)
SUPPORTED_MAJOR = 10  # name-based I/O, execute_async_v3, explicit batch by default
STRONGLY_TYPED_MAJOR = 11  # weak typing (BuilderFlag.FP16) is gone: the graph's own types decide


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing on this machine."""


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX graph or build an engine from it."""


class EngineLoadError(RuntimeError):
    """A plan could not be loaded for a reason that says nothing against the plan (GPU memory,
    driver trouble): it is kept, not deleted and rebuilt."""


# What TensorRT says when a plan itself is unusable (another TensorRT version or GPU, a damaged
# file): only then is a cached plan deleted and rebuilt (minutes).
INVALID_PLAN_SIGNS = ("serializ", "version", "magic", "compatib", "corrupt", "invalid", "mismatch", "platform",
                      "truncat")


def plan_is_invalid(messages: Sequence[str]) -> bool:
    """Whether TensorRT's messages about a failed deserialisation blame the plan itself."""
    text = " ".join(messages).lower()
    return any(sign in text for sign in INVALID_PLAN_SIGNS)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class TensorRTConfig:
    precision: str = "fp16"  # "fp16" lets TensorRT pick fp16 kernels; "fp32" keeps full fp32 (TF32 off)
    max_batch: int = 4  # device buffers and the engine profile are sized for this many windows
    opt_batch: int = 1  # the batch TensorRT tunes its kernels for (a live robot runs batch 1)
    workspace_mb: int = 2048  # scratch memory TensorRT may use per layer while building and running
    cache_dir: str | None = None  # None: $SOCIALMAE_RT_CACHE/trt, else ~/.cache/socialmae_rt/trt
    force_rebuild: bool = False  # rebuild even when a valid cached plan exists
    device: int = 0  # CUDA device index

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"TensorRTConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not _is_int(self.max_batch) or self.max_batch < 1:
            raise ValueError(f"TensorRTConfig.max_batch must be an integer >= 1, got {self.max_batch!r}")
        if not _is_int(self.opt_batch) or not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(
                f"TensorRTConfig.opt_batch must be an integer in 1..max_batch ({self.max_batch}), got "
                f"{self.opt_batch!r}: lower opt_batch or raise max_batch"
            )
        if not _is_int(self.workspace_mb) or self.workspace_mb < 1:
            raise ValueError(f"TensorRTConfig.workspace_mb must be an integer >= 1 (MiB), got {self.workspace_mb!r}")
        if not _is_int(self.device) or self.device < 0:
            raise ValueError(f"TensorRTConfig.device must be a CUDA device index >= 0, got {self.device!r}")
        if not isinstance(self.force_rebuild, bool):
            raise ValueError(f"TensorRTConfig.force_rebuild must be True or False, got {self.force_rebuild!r}")

    @property
    def profile(self) -> BatchProfile:
        return BatchProfile(min=1, opt=self.opt_batch, max=self.max_batch)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


# ---------------------------------------------------------------------------------------------
# Pure helpers: input checks, batching, output checks, profile shapes (no GPU needed)
# ---------------------------------------------------------------------------------------------


def batch_chunks(batch: int, max_batch: int) -> list[slice]:
    """Row ranges of at most max_batch: larger batches run as several engine calls."""
    if batch < 1 or max_batch < 1:
        raise ValueError(f"batch and max_batch must be >= 1, got {batch} and {max_batch}")
    return [slice(start, min(start + max_batch, batch)) for start in range(0, batch, max_batch)]


def check_fp16_finite(outputs: Mapping[str, np.ndarray], where: str) -> None:
    """Non-finite outputs from a plan: with fp16 that is usually an overflow, so say so."""
    check_finite(outputs, where, hint="with precision='fp16' this is usually an fp16 overflow: "
                                      "try TensorRTConfig(precision='fp32')")


def profile_shapes(
    name: str, onnx_shape: Sequence[int], profile: BatchProfile
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes for one input: only the batch varies, the rest is fixed by the graph.

    `onnx_shape` is the network input's shape with -1 for dynamic dimensions.
    """
    shape = tuple(int(d) for d in onnx_shape)
    if not shape or shape[0] != -1:
        raise EngineBuildError(
            f"input {name!r} has shape {list(shape)}: its batch dimension is not dynamic; "
            "re-export with export_onnx (batch is dynamic there)"
        )
    window = shape[1:]
    if any(d < 1 for d in window):
        raise EngineBuildError(
            f"input {name!r} has shape {list(shape)}: only the batch may be dynamic, the other dimensions must be fixed"
        )
    return (profile.min, *window), (profile.opt, *window), (profile.max, *window)


def parser_errors(parser) -> list[str]:
    """Every error the ONNX parser recorded, as text."""
    return [str(parser.get_error(index)) for index in range(parser.num_errors)]


def describe_parse_failure(onnx_path: str | Path, messages: Sequence[str]) -> str:
    listed = "\n".join(f"  {i + 1}. {message}" for i, message in enumerate(messages)) or "  (the parser gave no reason)"
    return (
        f"TensorRT could not parse {onnx_path} ({len(messages)} error(s)):\n{listed}\n"
        "Re-export the graph (socialmae-rt export-onnx) or use the ONNX Runtime backend."
    )


# ---------------------------------------------------------------------------------------------
# Availability and fallback
# ---------------------------------------------------------------------------------------------


def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT backend cannot run here, or None when it can."""
    try:
        import tensorrt
    except (ImportError, OSError) as err:  # OSError: the wheel is there but libnvinfer cannot load
        return f"TensorRT is not installed ({err}); install it with: {INSTALL_HINT}"
    version = str(getattr(tensorrt, "__version__", "unknown"))
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < SUPPORTED_MAJOR:
        # 8.x (JetPack 6.1 and older) builds implicit-batch networks from create_network(0)
        return f"TensorRT {version} is installed; this backend needs TensorRT 10 or 11 ({INSTALL_HINT})"
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False: no NVIDIA driver/GPU, or a CPU-only torch build)"
    return None


def _as_export(export: OnnxExport | str | Path) -> OnnxExport:
    return export if isinstance(export, OnnxExport) else load_export(export)


def _ort_providers() -> list[str] | None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return None


def _ort_fallback(export: OnnxExport, why: str, threads: int | None = None) -> Backend:
    try:
        import onnxruntime  # noqa: F401 - the fallback's runtime: missing means no fallback at all

        from socialmae_rt.engines.ort_backend import OrtBackend
    except ImportError as err:
        raise ImportError(
            f"TensorRT cannot run here ({why}) and the ONNX Runtime fallback could not be imported: {err}; "
            "pip install onnxruntime (CPU) or onnxruntime-gpu"
        ) from err
    return OrtBackend(export, variant="fp32", providers=_ort_providers(), threads=threads)


def create_tensorrt_backend(
    export: OnnxExport | str | Path,
    config: TensorRTConfig | None = None,
    on_status: StatusCallback | None = None,
    threads: int | None = None,
) -> Backend:
    """TensorRT when it can run here; otherwise a loud warning and the ONNX Runtime backend
    (on `threads` CPU threads when it runs on the CPU).

    The returned backend's `info.name` says what it is ("tensorrt", or ONNX Runtime's own name).
    """
    export = _as_export(export)
    why = tensorrt_unavailable_reason()
    if why is None:
        return TensorRTBackend(export, config, on_status=on_status)
    log.warning("TensorRT backend unavailable: %s. Falling back to the ONNX Runtime backend.", why)
    if on_status is not None:
        on_status(f"TensorRT unavailable; using ONNX Runtime ({why.split(' (')[0]})")
    return _ort_fallback(export, why, threads)


# ---------------------------------------------------------------------------------------------
# TensorRT: logger, build, deserialize (tensorrt imported lazily)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _trt_logger():
    """One process-wide ILogger forwarding TensorRT's messages into Python logging.

    One instance, never freed: a logger must outlive every builder and runtime made with it, and
    older TensorRT releases treat it as a process-wide singleton. It remembers the latest errors
    so our exceptions can quote them.
    """
    import tensorrt as trt

    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.DEBUG,  # TensorRT's INFO is chatty (every build phase)
        severity.VERBOSE: logging.DEBUG,
    }

    class ForwardToLogging(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # required by the bindings for Python subclasses
            self.recent_errors: deque[str] = deque(maxlen=10)

        def log(self, level, message) -> None:
            python_level = levels.get(level, logging.DEBUG)
            if python_level >= logging.ERROR:
                self.recent_errors.append(message)
            log.log(python_level, "TensorRT: %s", message)

    return ForwardToLogging()


def _network_shapes(count: int, get) -> dict[str, list[int]]:
    return {tensor.name: [int(d) for d in tensor.shape] for tensor in (get(i) for i in range(count))}


def fast_fp16(compute_capability: str) -> bool:
    """Whether a GPU of this compute capability runs fp16 at least at fp32 speed: 6.0 (P100),
    6.2 (Jetson TX2) and 7.0 onwards; the consumer Pascal cards (6.1) run fp16 at 1/64 rate.
    (Read from the capability because `IBuilder.platform_has_fast_fp16` is deprecated in TensorRT 10.)"""
    major, _, minor = compute_capability.partition(".")
    version = (int(major), int(minor or 0))
    return version >= (7, 0) or version in ((6, 0), (6, 2), (5, 3))


def _full_fp32(trt, config) -> None:
    """No TF32 matmuls (TensorRT's default on Ampere and later: a 10-bit mantissa)."""
    tf32 = getattr(trt.BuilderFlag, "TF32", None)
    if tf32 is not None:
        config.clear_flag(tf32)


def _enable_fp16(trt, compute_capability: str, config, precision: str) -> bool:
    """Set the FP16 flag when asked for and useful; return whether it is set. "fp32" means full
    fp32: TensorRT's default TF32 matmuls (10-bit mantissa on Ampere and later) are turned off."""
    if precision != "fp16":
        _full_fp32(trt, config)
        return False
    flag = getattr(trt.BuilderFlag, "FP16", None)
    if flag is None:  # weak typing gone (TensorRT 11): build_plan takes the strongly typed path there
        raise EngineBuildError(f"TensorRT {trt.__version__} has no FP16 builder flag; build a strongly typed "
                               "network from the fp16 graph instead")
    if not fast_fp16(compute_capability):
        log.warning("this GPU (compute capability %s) has no fast FP16: building the engine with fp32 kernels",
                    compute_capability)
        return False
    config.set_flag(flag)
    return True


class TensorRTRuntime:
    """The tensorrt module, one runtime on one device, and the facts a cache key needs."""

    def __init__(self, device_index: int) -> None:
        import tensorrt as trt

        if device_index >= torch.cuda.device_count():
            raise ValueError(
                f"TensorRTConfig.device={device_index} but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        self.trt = trt
        self.version = trt.__version__
        self.logger = _trt_logger()
        self.device = torch.device("cuda", device_index)
        major, minor = torch.cuda.get_device_capability(self.device)
        self.compute_capability = f"{major}.{minor}"
        self.gpu_name = torch.cuda.get_device_name(self.device)
        with torch.cuda.device(self.device):  # TensorRT works on the current CUDA device
            self.runtime = trt.Runtime(self.logger)

    def key_parts(self, onnx_path: Path, config: TensorRTConfig) -> CacheKeyParts:
        return CacheKeyParts(sha256_file(onnx_path), self.version, self.compute_capability, config.precision,
                             config.profile, gpu_name=self.gpu_name, workspace_mb=config.workspace_mb)

    @property
    def strongly_typed(self) -> bool:
        """TensorRT 11 builds strongly typed networks only: fp16 comes from an fp16 graph."""
        major = str(self.version).split(".")[0]
        return major.isdigit() and int(major) >= STRONGLY_TYPED_MAJOR

    def graph_for(self, export: OnnxExport, modality: Modality, precision: str) -> Path:
        """The ONNX graph a plan is built from: the fp16 graph for fp16 on a strongly typed
        TensorRT, else the fp32 one (TensorRT 10 lowers it to fp16 by the builder flag)."""
        if self.strongly_typed and precision == "fp16":
            from socialmae_rt.engines.onnx_export import fp16_graph

            return fp16_graph(export, modality)
        return export.graph(modality)

    def build_on_device(self, onnx_path: Path, config: TensorRTConfig) -> tuple[Any, dict[str, Any]]:
        """build_plan with this runtime's GPU current: TensorRT builds for the GPU current at build time."""
        with torch.cuda.device(self.device):
            return self.build_plan(onnx_path, config)

    def build_plan(self, onnx_path: Path, config: TensorRTConfig) -> tuple[Any, dict[str, Any]]:
        """Parse the ONNX graph and build a serialized engine: -> (plan, sidecar extras)."""
        trt = self.trt
        started = time.perf_counter()
        self.logger.recent_errors.clear()
        builder = trt.Builder(self.logger)
        if self.strongly_typed:
            network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        else:
            network = builder.create_network(0)  # TensorRT 10: always explicit batch (EXPLICIT_BATCH is deprecated)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):  # from the file: better diagnostics, external weights
            raise EngineBuildError(describe_parse_failure(onnx_path, parser_errors(parser)))
        inputs = _network_shapes(network.num_inputs, network.get_input)
        outputs = _network_shapes(network.num_outputs, network.get_output)
        builder_config = builder.create_builder_config()
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mb << 20)
        if self.strongly_typed:  # no precision flags: the graph's types are the precision
            fp16 = config.precision == "fp16"
            if not fp16:
                _full_fp32(trt, builder_config)
        else:
            fp16 = _enable_fp16(trt, self.compute_capability, builder_config, config.precision)
        profile = builder.create_optimization_profile()
        for name, shape in inputs.items():
            profile.set_shape(name, *profile_shapes(name, shape, config.profile))
        builder_config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, builder_config)
        if plan is None:
            errors = "; ".join(self.logger.recent_errors) or "see the TensorRT errors logged above"
            raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path}: {errors}")
        extra = {
            "onnx_path": str(onnx_path),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 2),
            "workspace_mb": config.workspace_mb,
            "fp16_enabled": fp16,
            "strongly_typed": self.strongly_typed,
            "gpu_name": self.gpu_name,
            "inputs": inputs,
            "outputs": outputs,
        }
        return plan, extra

    def deserialize(self, plan) -> Any | None:
        """The engine; None when TensorRT says the plan itself is unusable (then it is rebuilt);
        EngineLoadError for any other failure (out of GPU memory ...: the plan is kept)."""
        self.logger.recent_errors.clear()
        failure = None
        try:
            with torch.cuda.device(self.device):
                engine = self.runtime.deserialize_cuda_engine(plan)
        except (RuntimeError, TypeError, ValueError) as err:
            engine, failure = None, str(err)
        if engine is not None:
            return engine
        messages = [*self.logger.recent_errors, *([failure] if failure else [])]
        reason = "; ".join(messages) or "no reason given"
        if plan_is_invalid(messages):
            log.warning("TensorRT cannot use the plan: %s", reason)
            return None
        raise EngineLoadError(f"TensorRT could not load the plan ({reason}); it is kept, not rebuilt: free GPU "
                              "memory and start again, or delete the cache to force a rebuild")

    def obtain_engine(self, export: OnnxExport, modality: Modality, config: TensorRTConfig,
                      on_build: Callable[[Modality, str], None]) -> LoadedEngine:
        onnx_path = self.graph_for(export, modality, config.precision)
        return load_or_build(
            config.cache_path,
            self.key_parts(onnx_path, config),
            force_rebuild=config.force_rebuild,
            build=lambda: self.build_on_device(onnx_path, config),
            deserialize=self.deserialize,
            on_build=lambda reason: on_build(modality, reason),
        )


# ---------------------------------------------------------------------------------------------
# Runtime: one engine + execution context + device buffers per modality
# ---------------------------------------------------------------------------------------------


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
             trt.DataType.BOOL: torch.bool}
    if dtype not in table:
        raise EngineBuildError(f"engine tensor type {dtype} is not supported by this backend")
    return table[dtype]


class _ModeRunner:
    """One modality's engine with its execution context and buffers preallocated for max_batch."""

    def __init__(self, trt, engine, modality: Modality, outputs: Sequence[str], max_batch: int,
                 device: torch.device, stream: torch.cuda.Stream) -> None:
        self.engine = engine
        self.stream = stream
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineBuildError(f"TensorRT could not create an execution context for {modality.value} "
                                   "(out of GPU memory?)")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = list(outputs)
        self._bound_batch: int | None = None  # the batch the input shapes are set for
        self._check_names(modality, names)
        # Output shapes are only fully known once the inputs have one: bind the largest batch first,
        # then size every buffer from the context (dimension 0 = max_batch).
        self._bind_batch(max_batch, {name: tuple(engine.get_tensor_shape(name))[1:] for name in self.inputs})
        self.buffers: dict[str, torch.Tensor] = {}
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineBuildError(f"{modality.value} engine tensor {name!r} has unresolved shape {list(shape)}")
            buffer = torch.empty(shape, dtype=_torch_dtype(trt, engine.get_tensor_dtype(name)), device=device)
            if not self.context.set_tensor_address(name, buffer.data_ptr()):
                raise EngineBuildError(f"TensorRT refused the device buffer for {name!r}")
            self.buffers[name] = buffer
        torch.cuda.synchronize(device)  # buffers allocated on the default stream are ready for ours

    def _check_names(self, modality: Modality, names: Sequence[str]) -> None:
        expected_inputs = list(MODE_INPUTS[modality])
        missing_outputs = [n for n in self.outputs if n not in names]
        if sorted(self.inputs) != sorted(expected_inputs) or missing_outputs:
            raise EngineBuildError(
                f"{modality.value} engine has I/O tensors {names}; expected inputs {expected_inputs} and outputs "
                f"{self.outputs}. Rebuild with TensorRTConfig(force_rebuild=True)"
            )

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One engine call for at most max_batch rows: copy in, set shapes, execute, copy out."""
        batch = next(iter(inputs.values())).shape[0]
        with torch.cuda.stream(self.stream):
            for name, array in inputs.items():
                host = torch.from_numpy(array if array.flags.writeable else array.copy())
                self.buffers[name][:batch].copy_(host)
            self._bind_batch(batch, {name: array.shape[1:] for name, array in inputs.items()})
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT errors logged above")
            # copy=True: the result must never alias a buffer the next call overwrites
            host_results = {name: self.buffers[name][:batch].to("cpu", torch.float32, copy=True)
                            for name in self.outputs}
        self.stream.synchronize()
        return {name: value.numpy() for name, value in host_results.items()}

    def _bind_batch(self, batch: int, windows: Mapping[str, Sequence[int]]) -> None:
        # Shapes stay set between calls; setting them again costs a shape pass, so only on change.
        if batch == self._bound_batch:
            return
        self._bound_batch = None
        for name, window in windows.items():
            if not self.context.set_input_shape(name, (batch, *window)):
                raise RuntimeError(f"TensorRT refused input shape {(batch, *window)} for {name!r} "
                                   "(outside the engine's batch profile?)")
        self._bound_batch = batch

    def release(self) -> None:
        # The context must go before its engine, and both before the buffers they point at.
        self.context = None
        self.engine = None
        self.buffers.clear()


class TensorRTBackend:
    """SocialMAE as TensorRT engines (one per modality) built from an ONNX export.

    `state`: "loading" -> "building" (while an engine builds) -> "ready" -> "closed".
    `on_status(message)` hears every state change, e.g. for a ROS node's status topic.
    """

    def __init__(
        self,
        export: OnnxExport | str | Path,
        config: TensorRTConfig | None = None,
        *,
        on_status: StatusCallback | None = None,
        modalities: Iterable[Modality] | None = None,
    ) -> None:
        self.config = config or TensorRTConfig()
        self._on_status = on_status
        self.state = "loading"
        export = _as_export(export)
        why = tensorrt_unavailable_reason()
        if why is not None:
            raise TensorRTUnavailable(why)
        self.model_config = export.model_config
        self.preprocess = export.preprocess
        self.outputs = export.outputs
        self.window_shapes = {name: tuple(shape) for name, shape in export.manifest["input_shapes"].items()}
        self._lock = threading.Lock()  # the buffers are shared: one inference at a time
        self._env = TensorRTRuntime(self.config.device)
        self.stream = torch.cuda.Stream(device=self._env.device)
        self.reports: dict[Modality, PlanReport] = {}
        self._runners: dict[Modality, _ModeRunner] = {}
        for modality in modalities or MODE_INPUTS:
            self._runners[modality] = self._load(export, modality)
        self.info = BackendInfo(
            name="tensorrt",
            precision=self.config.precision,
            device=str(self._env.device),
            weights=export.manifest.get("source") or str(export.directory),
        )
        self._set_state("ready", f"TensorRT engines ready ({', '.join(m.value for m in self._runners)})")

    def _set_state(self, state: str, message: str) -> None:
        self.state = state
        if self._on_status is not None:
            self._on_status(message)

    def _announce_build(self, modality: Modality, reason: str) -> None:
        message = f"building TensorRT engine for {modality.value} (this can take minutes)"
        log.info("%s; reason: %s", message, reason)
        self._set_state("building", message)

    def _load(self, export: OnnxExport, modality: Modality) -> _ModeRunner:
        loaded = self._env.obtain_engine(export, modality, self.config, self._announce_build)
        report = loaded.report
        self.reports[modality] = report
        log.info("TensorRT engine for %s %s in %.2f s (%s)", modality.value,
                 "built" if report.built else "loaded", report.seconds, report.plan)
        with torch.cuda.device(self._env.device):
            return _ModeRunner(self._env.trt, loaded.engine, modality, self.outputs, self.config.max_batch,
                               self._env.device, self.stream)

    def _runner(self, modality: Modality) -> _ModeRunner:
        if self.state == "closed":
            raise RuntimeError("this TensorRT backend is closed")
        if modality not in self._runners:
            raise ValueError(f"no {modality.value} engine loaded; loaded: {[m.value for m in self._runners]}")
        return self._runners[modality]

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        modality, inputs, batch = check_inputs(audio, video, self.window_shapes)  # before any GPU work
        pieces = []
        with self._lock:  # close() takes it too: a closed backend is never half-used
            runner = self._runner(modality)
            with torch.cuda.device(self._env.device):
                for rows in batch_chunks(batch, self.config.max_batch):
                    pieces.append(runner.run({name: array[rows] for name, array in inputs.items()}))
        outputs = {name: np.concatenate([piece[name] for piece in pieces]) for name in self.outputs}
        check_fp16_finite(outputs, f"TensorRT {modality.value} engine")
        return BackendOutput(embedding=outputs["embedding"], heads={name: outputs[name] for name in self.outputs[1:]})

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.release()
            self._runners.clear()
            self._env = None
            self.state = "closed"


# ---------------------------------------------------------------------------------------------
# Offline build (`socialmae-rt build-engine`)
# ---------------------------------------------------------------------------------------------


def build_engines(
    export_dir: str | Path,
    config: TensorRTConfig | None = None,
    *,
    modalities: Iterable[Modality] | None = None,
    on_status: StatusCallback | None = None,
) -> dict[str, dict[str, Any]]:
    """Build (or find cached) plans for every modality ahead of time.

    -> {mode: {"key", "plan", "action": "built"|"loaded", "seconds", "reason"}}.
    Raises TensorRTUnavailable with the install hint where TensorRT or a GPU is missing.
    """
    config = config or TensorRTConfig()
    why = tensorrt_unavailable_reason()
    if why is not None:
        raise TensorRTUnavailable(f"cannot build TensorRT engines: {why}")
    export = load_export(export_dir)
    env = TensorRTRuntime(config.device)

    def announce(modality: Modality, reason: str) -> None:
        message = f"building TensorRT engine for {modality.value} (this can take minutes)"
        log.info("%s; reason: %s", message, reason)
        if on_status is not None:
            on_status(message)

    summary = {}
    for modality in modalities or MODE_INPUTS:
        loaded = env.obtain_engine(export, modality, config, announce)
        summary[modality.value] = loaded.report.summary()
        del loaded  # only the plan on disk matters here; free the engine before the next build
    return summary

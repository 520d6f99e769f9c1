"""A Triton Inference Server model repository from our ONNX exports: one model per modality graph.

    REPO/
      socialmae_repository.json        what was exported (weights hashes, preprocessing, options)
      socialmae_audiovisual/           one model per graph (with a task prefix for bundles:
        config.pbtxt                   socialmae_emotion_audiovisual, ...)
        1/model.onnx                   (tensorrt: 1/model.plan; python: 1/model.onnx + 1/model.py)
      socialmae_audio/ ...
      socialmae_video/ ...

A client picks the graph by modality: `<prefix>_<modality>`, inputs `audio` [B, 1024, 128] and/or
`video` [B, 3, 224, 224, 8], outputs `embedding` and one per head, batch dynamic up to
`max_batch_size`. Each config.pbtxt carries in its `parameters` what the client must check before
it trusts the server: the weights' hashes, the preprocessing and the model config as JSON.

Platforms: `onnxruntime` (Triton's ONNX Runtime backend: the usual GPU or CPU server),
`tensorrt` (plans built here on the server's GPU model), `python` (Triton's Python backend
running our graph with onnxruntime: for servers built without the ONNX Runtime backend, such as
the one bundled with the nvidia-pytriton wheel that the tests start).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from socialmae_rt.backend import MODE_INPUTS, StatusCallback
from socialmae_rt.model.modality import Modality

if TYPE_CHECKING:  # onnx_export imports torch; a repository is written from exports already made
    from socialmae_rt.engines.onnx_export import OnnxExport

log = logging.getLogger(__name__)

FORMAT = "socialmae_rt.triton/1"
REPOSITORY_MANIFEST = "socialmae_repository.json"
PLATFORMS = ("onnxruntime", "tensorrt", "python")
INSTANCE_KINDS = ("KIND_AUTO", "KIND_GPU", "KIND_CPU")
# What a client reads from each model's config `parameters` (all strings, as Triton keeps them).
PARAMETER_PREFIX = "socialmae_"
MODEL_PREFIX = "socialmae"  # model names on the server: <prefix>[_<task>]_<modality>
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")


class TritonRepositoryError(ValueError):
    """Options or inputs that cannot make a valid model repository."""


@dataclass
class TritonRepositoryConfig:
    platform: str = "onnxruntime"
    max_batch_size: int = 16  # windows per server execution (faces x robots)
    preferred_batch_sizes: Sequence[int] = (4, 8)
    max_queue_delay_us: int = 2000  # how long the server may hold a request to form a batch
    instances: int = 1  # model instances per device
    instance_kind: str = "KIND_AUTO"
    variant: str = "fp32"  # onnxruntime / python: the int8 graphs where the export has them
    threads: int = 0  # python platform: onnxruntime threads per instance (0: its default)
    model_prefix: str = MODEL_PREFIX
    tensorrt_precision: str = "fp16"
    extra_parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise TritonRepositoryError(f"platform must be one of {', '.join(PLATFORMS)}, got {self.platform!r}")
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise TritonRepositoryError(f"max_batch_size must be an integer >= 1, got {self.max_batch_size!r}")
        bad = [size for size in self.preferred_batch_sizes if not 1 <= int(size) <= self.max_batch_size]
        if bad:
            raise TritonRepositoryError(f"preferred batch sizes must lie in 1..max_batch_size ({self.max_batch_size}), "
                                        f"got {list(self.preferred_batch_sizes)}")
        if self.max_queue_delay_us < 0:
            raise TritonRepositoryError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")
        if self.instances < 1:
            raise TritonRepositoryError(f"instances must be >= 1, got {self.instances}")
        if self.instance_kind not in INSTANCE_KINDS:
            raise TritonRepositoryError(f"instance_kind must be one of {', '.join(INSTANCE_KINDS)}, "
                                        f"got {self.instance_kind!r}")
        if self.variant not in ("fp32", "int8"):
            raise TritonRepositoryError(f"variant must be fp32 or int8, got {self.variant!r}")
        if self.variant == "int8" and self.platform == "tensorrt":
            raise TritonRepositoryError("int8 graphs are ONNX Runtime's; TensorRT plans are built fp16/fp32")
        if not self.model_prefix or not all(c.isalnum() or c in "_-" for c in self.model_prefix):
            raise TritonRepositoryError(f"model_prefix must be letters, digits, '_' or '-', got {self.model_prefix!r}")


@dataclass(frozen=True)
class RepositoryEntry:
    """One checkpoint's export; `task` names it within a bundle (None: a single checkpoint)."""

    export: OnnxExport
    task: str | None = None
    checkpoint_sha256: str | None = None  # the checkpoint file the export came from, when known


def model_name(prefix: str, task: str | None, modality: Modality) -> str:
    return "_".join(part for part in (prefix, task, modality.value) if part)


def preprocess_sha256(preprocess: dict[str, Any]) -> str:
    """A stable hash of a preprocessing config (sorted JSON)."""
    return hashlib.sha256(json.dumps(preprocess, sort_keys=True).encode()).hexdigest()


def _quote(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dims(shape: Sequence[int]) -> str:
    return "[ " + ", ".join(str(int(d)) for d in shape) + " ]"


def model_parameters(entry: RepositoryEntry, modality: Modality, config: TritonRepositoryConfig) -> dict[str, str]:
    manifest = entry.export.manifest
    return {
        f"{PARAMETER_PREFIX}format": FORMAT,
        f"{PARAMETER_PREFIX}task": entry.task or "",
        f"{PARAMETER_PREFIX}modality": modality.value,
        f"{PARAMETER_PREFIX}weights_sha256": manifest["weights_sha256"],
        f"{PARAMETER_PREFIX}checkpoint_sha256": entry.checkpoint_sha256 or "",
        f"{PARAMETER_PREFIX}preprocess_sha256": preprocess_sha256(manifest["preprocess"]),
        f"{PARAMETER_PREFIX}preprocess": json.dumps(manifest["preprocess"], sort_keys=True),
        f"{PARAMETER_PREFIX}model": json.dumps(manifest["model"], sort_keys=True),
        f"{PARAMETER_PREFIX}outputs": ",".join(manifest["outputs"]),
        f"{PARAMETER_PREFIX}variant": config.variant if config.platform != "tensorrt" else config.tensorrt_precision,
        **config.extra_parameters,
    }


def config_pbtxt(name: str, entry: RepositoryEntry, modality: Modality, config: TritonRepositoryConfig) -> str:
    """The model's config.pbtxt: named inputs/outputs with our shapes (batch dimension implicit)."""
    manifest = entry.export.manifest
    shapes = manifest["input_shapes"]
    sizes = {"embedding": entry.export.model_config.embed_dim, **entry.export.model_config.head_sizes}
    lines = [f"name: {_quote(name)}"]
    if config.platform == "tensorrt":
        lines.append('platform: "tensorrt_plan"')
    else:
        lines.append(f"backend: {_quote(config.platform)}")
    lines.append(f"max_batch_size: {config.max_batch_size}")
    lines.append("input [")
    lines.append(",\n".join(f"  {{ name: {_quote(n)} data_type: TYPE_FP32 dims: {_dims(shapes[n])} }}"
                            for n in MODE_INPUTS[modality]))
    lines.append("]")
    lines.append("output [")
    lines.append(",\n".join(f"  {{ name: {_quote(n)} data_type: TYPE_FP32 dims: [ {sizes[n]} ] }}"
                            for n in manifest["outputs"]))
    lines.append("]")
    preferred = " ".join(f"preferred_batch_size: {int(s)}" for s in config.preferred_batch_sizes)
    lines.append(f"dynamic_batching {{ {preferred} max_queue_delay_microseconds: {config.max_queue_delay_us} }}")
    kind = "KIND_CPU" if config.platform == "python" else config.instance_kind
    lines.append(f"instance_group [ {{ count: {config.instances} kind: {kind} }} ]")
    params = model_parameters(entry, modality, config)
    if config.platform == "python" and config.threads:
        params["onnxruntime_threads"] = str(config.threads)
    for key, value in params.items():
        lines.append(f"parameters {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}")
    return "\n".join(lines) + "\n"


def _place(source: Path, target: Path) -> None:
    """Hard-link where source and target share a file system (graphs are hundreds of MB), else copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_repository(entries: Sequence[RepositoryEntry], out: str | Path,
                     config: TritonRepositoryConfig | None = None,
                     on_status: StatusCallback | None = None) -> dict[str, Any]:
    """Write every entry's three graphs as Triton models under `out`; -> the repository manifest."""
    config = config or TritonRepositoryConfig()
    say = on_status or (lambda message: log.info("%s", message))
    if not entries:
        raise TritonRepositoryError("nothing to export: give a checkpoint, an export or a bundle")
    tasks = [entry.task for entry in entries]
    if len(entries) > 1 and (None in tasks or len(set(tasks)) != len(tasks)):
        raise TritonRepositoryError(f"several checkpoints need one distinct task each, got {tasks}")
    preprocess = {preprocess_sha256(e.export.manifest["preprocess"]) for e in entries}
    if len(preprocess) > 1:
        raise TritonRepositoryError("the checkpoints were trained with different preprocessing; a client "
                                    "preprocesses a window once for all of them, so they cannot share a repository")
    for entry in entries:
        if config.variant == "int8" and "int8" not in entry.export.manifest["graphs"]["audiovisual"]:
            raise TritonRepositoryError(f"{entry.export.directory} has no int8 graphs: make them with "
                                        f"`socialmae-rt export-onnx --int8` or use --variant fp32")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plans = _tensorrt_plans(entries, config, say) if config.platform == "tensorrt" else {}
    models: dict[str, Any] = {}
    for entry in entries:
        for modality in MODE_INPUTS:
            name = model_name(config.model_prefix, entry.task, modality)
            version = out / name / "1"
            version.mkdir(parents=True, exist_ok=True)
            if config.platform == "tensorrt":
                plans[(entry.task, modality)].replace(version / "model.plan")
            else:
                _place(entry.export.graph(modality, config.variant), version / "model.onnx")
                if config.platform == "python":
                    shutil.copyfile(PYTHON_MODEL, version / "model.py")
            (out / name / "config.pbtxt").write_text(config_pbtxt(name, entry, modality, config))
            models[name] = {"task": entry.task, "modality": modality.value,
                            "export": str(entry.export.directory)}
            say(f"wrote {out / name}")
    manifest = {
        "format": FORMAT,
        "platform": config.platform,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "models": models,
        "entries": [{"task": e.task, "weights_sha256": e.export.manifest["weights_sha256"],
                     "checkpoint_sha256": e.checkpoint_sha256, "source": e.export.manifest.get("source"),
                     "preprocess": e.export.manifest["preprocess"]} for e in entries],
    }
    (out / REPOSITORY_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _tensorrt_plans(entries: Sequence[RepositoryEntry], config: TritonRepositoryConfig,
                    say: StatusCallback) -> dict[tuple[str | None, Modality], Path]:
    """Build a plan per graph on this machine's GPU (Triton's GPUs must be the same model)."""
    import tempfile

    from socialmae_rt.engines.tensorrt_backend import TensorRTConfig, TensorRTRuntime, tensorrt_unavailable_reason

    why = tensorrt_unavailable_reason()
    if why is not None:
        raise TritonRepositoryError(f"--platform tensorrt builds plans on this machine's GPU and cannot here: {why}; "
                                    "use --platform onnxruntime (optionally with TensorRT acceleration on the server)")
    runtime = TensorRTRuntime(0)
    staging = Path(tempfile.mkdtemp(prefix="socialmae-triton-plans-"))
    trt_config = TensorRTConfig(max_batch=config.max_batch_size, opt_batch=max(config.preferred_batch_sizes or [1]),
                                precision=config.tensorrt_precision, cache_dir=str(staging))
    plans = {}
    for entry in entries:
        for modality in MODE_INPUTS:
            say(f"building the TensorRT plan for {entry.task or 'the model'} {modality.value} on {runtime.gpu_name}")
            # the graph a TensorRT backend would build from (fp16 copy on strongly typed TensorRT 11)
            graph = runtime.graph_for(entry.export, modality, config.tensorrt_precision)
            plan, _ = runtime.build_on_device(graph, trt_config)
            path = staging / f"{entry.task}-{modality.value}.plan"
            path.write_bytes(bytes(plan))
            plans[(entry.task, modality)] = path
    return plans


def checkpoint_sha256(path: str | Path | None) -> str | None:
    """The sha256 of a checkpoint file (None for an export directory or no weights)."""
    from socialmae_rt.engines.onnx_export import sha256_file

    if path is None or Path(path).is_dir():
        return None
    return sha256_file(Path(path))


def export_triton(weights: str | None, out: str | Path, config: TritonRepositoryConfig | None = None,
                  model_config=None, cache_dir: str | Path | None = None,
                  on_status: StatusCallback | None = None) -> dict[str, Any]:
    """`--weights` (a checkpoint, an export directory, a task bundle, or None for random weights)
    -> a model repository under `out`. Exports come from (and go to) the ONNX export cache."""
    from socialmae_rt.engines.bundle_backend import check_bundle_entries
    from socialmae_rt.engines.exports import prepare_export
    from socialmae_rt.weights.bundle import parse_weights

    config = config or TritonRepositoryConfig()
    spec = parse_weights(weights)
    int8 = config.variant == "int8"
    if spec.is_bundle:
        check_bundle_entries(spec)
        sources = [(entry.task, entry.path) for entry in spec.entries]
    else:
        sources = [(None, spec.single)]
    entries = []
    for task, path in sources:
        export = prepare_export(path, model_config if not spec.is_bundle else None, int8=int8, cache_dir=cache_dir,
                                on_status=on_status)
        entries.append(RepositoryEntry(export, task, checkpoint_sha256(path)))
    return write_repository(entries, out, config, on_status=on_status)

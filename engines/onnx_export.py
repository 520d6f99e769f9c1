"""ONNX export of the Social-MAE encoder with all heads: one graph per modality, batch dynamic.

An export is a directory:

    audiovisual.onnx   inputs audio [B, 1024, 128], video [B, 3, 224, 224, 8]
    audio.onnx         input  audio
    video.onnx         input  video
    manifest.json      model + preprocessing config, output names, hashes, tool versions,
                       and how the graphs compared with torch when they were written

Every graph returns (embedding [B, D], one [B, size] output per head, in `outputs` order).
An export is checked against the torch model on the same inputs before it is accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from socialmae_rt.backend import MODE_INPUTS
from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "socialmae_rt.onnx/1"
OPSET = 17
# fp32 graph vs fp32 torch on the same inputs: only operation order differs.
EXPORT_ATOL = 1e-3


class ExportError(RuntimeError):
    """An ONNX export that is missing, corrupt, or disagrees with the model it came from."""


class _ModeGraph(nn.Module):
    """The encoder for one modality with every head, as plain tensor outputs."""

    def __init__(self, model: SocialMAE, modality: Modality) -> None:
        super().__init__()
        self.model = model
        self.modality = modality

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(MODE_INPUTS[self.modality], inputs))
        embedding = self.model.encode(named.get("audio"), named.get("video"))
        return (embedding, *self.model.apply_heads(embedding).values())


def input_shapes(config: SocialMAEConfig) -> dict[str, tuple[int, ...]]:
    """Per-window input shapes (without the batch dimension)."""
    return {
        "audio": (config.audio_length, config.num_mel_bins),
        "video": (config.in_chans, config.image_size, config.image_size, config.num_frames),
    }


def example_inputs(config: SocialMAEConfig, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((batch, *shape)).astype(np.float32) for name, shape in input_shapes(config).items()}


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_fingerprint(model: SocialMAE) -> str:
    """sha256 over every tensor (name, shape, bytes): identifies the weights an export came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class OnnxExport:
    """A written export: where its graphs are and what they hold."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def model_config(self) -> SocialMAEConfig:
        return SocialMAEConfig.from_dict(self.manifest["model"])

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.manifest["preprocess"])

    @property
    def outputs(self) -> list[str]:
        return list(self.manifest["outputs"])

    def graph(self, modality: Modality, variant: str = "fp32") -> Path:
        entry = self.manifest["graphs"][modality.value]
        name = entry["file"] if variant == "fp32" else entry.get(variant, {}).get("file")
        if name is None:
            raise ExportError(f"{self.directory}: no {variant} graph for {modality.value}; build it first")
        return self.directory / name


def export_onnx(
    model: SocialMAE,
    directory: str | Path,
    preprocess: PreprocessConfig | None = None,
    *,
    source: str = "",
    verify: bool = True,
    opset: int = OPSET,
) -> OnnxExport:
    """Write the three graphs and the manifest; check each graph against torch before accepting it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    config = model.config
    outputs = ["embedding", *config.head_sizes]
    fingerprint = weights_fingerprint(model)
    example = {name: torch.from_numpy(x) for name, x in example_inputs(config, batch=1).items()}
    graphs: dict[str, Any] = {}
    for modality, input_names in MODE_INPUTS.items():
        path = directory / f"{modality.value}.onnx"
        started = time.perf_counter()
        dynamic = {name: {0: "batch"} for name in (*input_names, *outputs)}
        with torch.no_grad(), warnings.catch_warnings():
            # We choose the TorchScript exporter on purpose (no onnxscript dependency); its notice is noise.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
            torch.onnx.export(
                _ModeGraph(model, modality),
                tuple(example[name] for name in input_names),
                str(path),
                dynamo=False,  # the TorchScript exporter: no extra packages, fixed shapes but the batch
                opset_version=opset,
                input_names=list(input_names),
                output_names=outputs,
                dynamic_axes=dynamic,
            )
        stamp_metadata(path, {"model": config.to_dict(), "preprocess": (preprocess or PreprocessConfig()).to_dict(),
                              "modality": modality.value, "outputs": outputs, "weights_sha256": fingerprint,
                              "source": source})
        graphs[modality.value] = {"file": path.name, "inputs": list(input_names), "sha256": sha256_file(path),
                                  "export_s": round(time.perf_counter() - started, 2)}
        log.info("exported %s in %.1f s", path, graphs[modality.value]["export_s"])
    manifest = {
        "format": FORMAT,
        "model": config.to_dict(),
        "preprocess": (preprocess or PreprocessConfig()).to_dict(),
        "outputs": outputs,
        "input_shapes": {k: list(v) for k, v in input_shapes(config).items()},
        "graphs": graphs,
        "opset": opset,
        "weights_sha256": fingerprint,
        "source": source,
        "torch": torch.__version__,
    }
    export = OnnxExport(directory, manifest)
    if verify:
        manifest["verification"] = verify_export(export, model)
    write_manifest(export)
    return export


def stamp_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Record config, preprocessing and the weights hash inside the .onnx file itself
    (metadata_props key "socialmae_rt"), so a graph copied on its own still says what it is."""
    import onnx

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "socialmae_rt", json.dumps(metadata, sort_keys=True)
    onnx.save(graph, str(path))


def write_manifest(export: OnnxExport) -> None:
    (export.directory / MANIFEST).write_text(json.dumps(export.manifest, indent=2) + "\n")


def read_manifest(path: Path, expected_format: str, error: type[Exception], missing: str) -> dict[str, Any]:
    """A manifest's JSON, or `error` naming what is wrong: `missing` when there is no file, else
    invalid JSON or another format."""
    if not path.is_file():
        raise error(missing)
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise error(f"{path} is not valid JSON: {err}") from err
    if manifest.get("format") != expected_format:
        raise error(f"{path}: format {manifest.get('format')!r}, expected {expected_format!r}")
    return manifest


def load_export(directory: str | Path) -> OnnxExport:
    """Read an export directory; the graphs must be present and unchanged since they were written."""
    directory = Path(directory)
    manifest = read_manifest(directory / MANIFEST, FORMAT, ExportError,
                             f"{directory} is not an ONNX export: {MANIFEST} not found (run `socialmae-rt export-onnx`)")
    export = OnnxExport(directory, manifest)
    for mode, entry in manifest["graphs"].items():
        for listed in (entry, *(v for v in entry.values() if isinstance(v, dict))):  # fp32, then int8 ...
            graph = directory / listed["file"]
            if not graph.is_file():
                raise ExportError(f"{directory}: graph {listed['file']} for {mode} is missing")
            if sha256_file(graph) != listed["sha256"]:
                raise ExportError(f"{graph} does not match the sha256 in {MANIFEST} (corrupt or replaced); export again")
    return export


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: max abs difference and the lowest per-row cosine similarity."""
    report = {}
    for name, ref in expected.items():
        got = actual[name]
        ref2, got2 = ref.reshape(ref.shape[0], -1).astype(np.float64), got.reshape(got.shape[0], -1).astype(np.float64)
        norms = np.linalg.norm(ref2, axis=1) * np.linalg.norm(got2, axis=1)
        cosine = np.where(norms > 0, (ref2 * got2).sum(1) / np.maximum(norms, 1e-30), 1.0)
        report[name] = {"max_abs": float(np.abs(ref2 - got2).max()), "min_cosine": float(cosine.min())}
    return report


def torch_outputs(model: SocialMAE, inputs: dict[str, np.ndarray], modality: Modality) -> dict[str, np.ndarray]:
    names = MODE_INPUTS[modality]
    with torch.no_grad():
        out = model.predict(*(torch.from_numpy(inputs[n]) if n in names else None for n in ("audio", "video")))
    return {"embedding": out.embedding.numpy(), **{k: v.numpy() for k, v in out.logits.items()}}


def run_graph(path: Path, inputs: dict[str, np.ndarray], input_names, output_names, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    values = session.run(output_names, {n: inputs[n] for n in input_names})
    return dict(zip(output_names, values))


def verify_export(export: OnnxExport, model: SocialMAE, variant: str = "fp32", atol: float | None = EXPORT_ATOL,
                  min_cosine: float | None = None) -> dict[str, Any]:
    """Run every graph on the same batch-2 inputs as torch; raise ExportError past the tolerances."""
    inputs = example_inputs(model.config, batch=2, seed=1)
    report: dict[str, Any] = {}
    for modality in MODE_INPUTS:
        expected = torch_outputs(model, inputs, modality)
        actual = run_graph(export.graph(modality, variant), inputs, MODE_INPUTS[modality], export.outputs)
        report[modality.value] = compare_outputs(expected, actual)
        for name, stats in report[modality.value].items():
            # `not <=` so that NaN fails too
            if atol is not None and not stats["max_abs"] <= atol:
                raise ExportError(
                    f"{variant} {modality.value} graph disagrees with torch on {name}: max abs difference "
                    f"{stats['max_abs']:.3g} > {atol}"
                )
            if min_cosine is not None and not stats["min_cosine"] >= min_cosine:
                raise ExportError(
                    f"{variant} {modality.value} graph disagrees with torch on {name}: cosine "
                    f"{stats['min_cosine']:.5f} < {min_cosine}"
                )
    return report


def fp16_graph(export: OnnxExport, modality: Modality) -> Path:
    """The graph of `modality` with fp16 weights and arithmetic but fp32 inputs and outputs (cast
    inside), written beside the fp32 one once and recorded in the manifest ("fp16"). A strongly
    typed TensorRT network (the only kind TensorRT 11 builds) runs in the precision of its graph."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    entry = export.manifest["graphs"][modality.value]
    recorded = entry.get("fp16")
    if recorded is not None:
        path = export.directory / recorded["file"]
        if path.is_file() and sha256_file(path) == recorded["sha256"]:
            return path
    source = export.graph(modality)
    target = source.with_name(f"{modality.value}.fp16.onnx")
    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))
    entry["fp16"] = {"file": target.name, "sha256": sha256_file(target)}
    write_manifest(export)
    return target

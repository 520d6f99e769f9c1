"""ONNX Runtime backend: the exported graphs (fp32 or int8) on the CPU, CUDA or TensorRT providers."""

from __future__ import annotations

import logging
import time

import numpy as np

from socialmae_rt.model import Modality

from .base import BackendInfo, BackendOutput
from .onnx_export import MODE_INPUTS, OnnxExport

log = logging.getLogger(__name__)

VARIANTS = {"fp32": "ort", "int8": "ort-int8"}


def check_batch(name: str, array, expected: tuple[int, ...]) -> int:
    """Validate one input before it reaches the runtime; returns its batch size."""
    shape_text = f"[B, {', '.join(map(str, expected))}]"
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy float32 array {shape_text}, got {type(array).__name__}")
    if array.dtype != np.float32:
        raise TypeError(f"{name} must be float32 {shape_text}, got dtype {array.dtype}")
    if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected:
        raise ValueError(f"{name} must have shape {shape_text}, got {list(array.shape)}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has batch size 0; need at least one window")
    return array.shape[0]


def check_outputs(outputs: dict[str, np.ndarray], where: str) -> None:
    for name, value in outputs.items():
        if not np.all(np.isfinite(value)):
            raise FloatingPointError(f"{where} produced NaN or Inf in '{name}'; the result is not usable")


class OrtBackend:
    """One InferenceSession per modality, created up front (load time reported in `load_s`)."""

    def __init__(
        self,
        export: OnnxExport,
        variant: str = "fp32",
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        self.export = export
        self.model_config = export.model_config
        self.preprocess = export.preprocess
        self.input_shapes = {k: tuple(v) for k, v in export.manifest["input_shapes"].items()}
        providers = providers or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        started = time.perf_counter()
        self.sessions = {
            modality: ort.InferenceSession(str(export.graph(modality, variant)), options, providers=providers)
            for modality in MODE_INPUTS
        }
        self.load_s = time.perf_counter() - started
        used = self.sessions[Modality.AUDIOVISUAL].get_providers()[0]
        device = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda (tensorrt ep)"}.get(used, "cpu")
        self.info = BackendInfo(
            name=VARIANTS[variant],
            precision=variant,
            device=device,
            weights=export.manifest.get("source") or str(export.directory),
        )
        log.info("%s: %d sessions on %s in %.2f s", self.info.name, len(self.sessions), used, self.load_s)

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        modality = Modality.of(audio, video)
        feeds = {}
        for name, array in (("audio", audio), ("video", video)):
            if array is not None:
                feeds[name] = array
        batches = {name: check_batch(name, array, self.input_shapes[name]) for name, array in feeds.items()}
        if len(set(batches.values())) > 1:
            raise ValueError(f"audio and video must have the same batch size, got {batches}")
        for name, array in feeds.items():
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contains NaN or Inf values; check the preprocessing of this window")
        values = self.sessions[modality].run(self.export.outputs, feeds)
        outputs = dict(zip(self.export.outputs, values))
        check_outputs(outputs, f"{self.info.name} {modality.value} graph")
        embedding = outputs.pop("embedding")
        return BackendOutput(embedding=embedding, heads=outputs)

    def close(self) -> None:
        self.sessions = {}

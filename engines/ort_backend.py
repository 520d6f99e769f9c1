"""ONNX Runtime backend: the exported graphs (fp32 or int8) on the CPU, CUDA or TensorRT providers."""

from __future__ import annotations

import logging
import time

import numpy as np

from socialmae_rt.backend import MODE_INPUTS, BackendInfo, BackendOutput, check_finite, check_inputs
from socialmae_rt.engines.onnx_export import OnnxExport
from socialmae_rt.model import Modality
from socialmae_rt.util.threads import compute_threads

log = logging.getLogger(__name__)

VARIANTS = {"fp32": "ort", "int8": "ort-int8"}
# ONNX Runtime's graph optimisation levels; "all" (its own default) is ours too. For ViT-B the
# levels gave the same window time and the same load time within noise.
GRAPH_OPTIMIZATION = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OrtBackend:
    """One InferenceSession per modality, created up front (load time reported in `load_s`)."""

    def __init__(
        self,
        export: OnnxExport,
        variant: str = "fp32",
        threads: int | None = None,
        providers: list[str] | None = None,
        graph_optimization: str = "all",
    ) -> None:
        import onnxruntime as ort

        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        if graph_optimization not in GRAPH_OPTIMIZATION:
            raise ValueError(f"graph_optimization must be one of {sorted(GRAPH_OPTIMIZATION)}, got {graph_optimization!r}")
        self.export = export
        self.model_config = export.model_config
        self.preprocess = export.preprocess
        self.input_shapes = {k: tuple(v) for k, v in export.manifest["input_shapes"].items()}
        providers = providers or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[graph_optimization])
        self.threads = compute_threads(threads)
        options.intra_op_num_threads = self.threads
        # Idle pool threads would otherwise spin after each run, taking the cores that capture and
        # face detection need between windows (measured: input wait p95 160 ms -> see README).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        modality, feeds, _ = check_inputs(audio, video, self.input_shapes)
        values = self.sessions[modality].run(self.export.outputs, feeds)
        outputs = dict(zip(self.export.outputs, values))
        check_finite(outputs, f"{self.info.name} {modality.value} graph")
        embedding = outputs.pop("embedding")
        return BackendOutput(embedding=embedding, heads=outputs)

    def close(self) -> None:
        self.sessions = {}

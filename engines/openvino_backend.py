"""OpenVINO backend: the cached IR (fp32 weights run in bf16 or fp32, or int8) on the CPU.

Precision of what is not int8: "auto" (OpenVINO's choice for this CPU: bf16 where it has
AVX-512 BF16 or AMX, fp32 elsewhere), "bf16" or "fp32". Threads: `compute_threads` (every core
this process may use), not pinned to cores, so that under contention the OS can move them.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from socialmae_rt.backend import MODE_INPUTS, BackendInfo, BackendOutput, check_finite, check_inputs
from socialmae_rt.engines.onnx_export import OnnxExport
from socialmae_rt.engines.openvino_ir import OpenVinoIR
from socialmae_rt.model import Modality
from socialmae_rt.util.threads import compute_threads

log = logging.getLogger(__name__)

PRECISIONS = {"auto": None, "bf16": "bf16", "fp32": "f32"}  # ours -> INFERENCE_PRECISION_HINT


def compile_config(threads: int, precision: str) -> dict[str, object]:
    """The CPU plugin settings every compiled graph gets."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    config: dict[str, object] = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "ENABLE_CPU_PINNING": False,  # pinned threads cannot leave a core another process is busy on
    }
    if PRECISIONS[precision] is not None:
        config["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
    return config


class OpenVinoBackend:
    """One compiled model and infer request per modality, compiled up front (`load_s`)."""

    def __init__(self, export: OnnxExport, ir: OpenVinoIR, *, precision: str = "auto", threads: int | None = None) -> None:
        import openvino as ov

        self.export = export
        self.model_config = export.model_config
        self.preprocess = export.preprocess
        self.input_shapes = {k: tuple(v) for k, v in export.manifest["input_shapes"].items()}
        self.threads = compute_threads(threads)
        config = compile_config(self.threads, precision)
        core = ov.Core()
        started = time.perf_counter()
        self.compiled = {modality: core.compile_model(str(ir.xml(modality)), "CPU", config) for modality in MODE_INPUTS}
        self.requests = {modality: compiled.create_infer_request() for modality, compiled in self.compiled.items()}
        self.load_s = time.perf_counter() - started
        # What the plugin actually runs, read back: an ov.Type (f32, bf16, f16)
        hint = self.compiled[Modality.AUDIOVISUAL].get_property("INFERENCE_PRECISION_HINT")
        runs_in = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(hint.get_type_name(), hint.get_type_name())
        self.inference_precision = runs_in
        if precision == "bf16" and runs_in != "bf16":
            log.warning("ov: bf16 asked for, but this CPU has no native bf16 (AVX-512 BF16 or AMX); running %s", runs_in)
        self.info = BackendInfo(
            name="ov-int8" if ir.kind == "int8" else "ov",
            precision=f"int8+{runs_in}" if ir.kind == "int8" else runs_in,
            device="cpu",
            weights=export.manifest.get("source") or str(export.directory),
        )
        self.ir = ir
        log.info("%s (%s): %d graphs compiled in %.2f s, %d threads", self.info.name, self.info.precision,
                 len(self.compiled), self.load_s, self.threads)

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        modality, feeds, _ = check_inputs(audio, video, self.input_shapes)
        result = self.requests[modality].infer(feeds)
        # copies: the request reuses its output buffers on the next call
        outputs = {name: np.array(result[name], dtype=np.float32) for name in self.export.outputs}
        check_finite(outputs, f"{self.info.name} {modality.value} graph")
        embedding = outputs.pop("embedding")
        return BackendOutput(embedding=embedding, heads=outputs)

    def close(self) -> None:
        self.requests = {}
        self.compiled = {}

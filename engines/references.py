"""The fp32 outputs a lower-precision engine is measured against (accuracy gates)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from socialmae_rt.backend import MODE_INPUTS
from socialmae_rt.engines.int8_gate import Reference, in_chunks
from socialmae_rt.engines.onnx_export import OnnxExport, run_graph, torch_outputs
from socialmae_rt.model import Modality, SocialMAE


def fp32_reference(export: OnnxExport, model: SocialMAE | None) -> Reference:
    """Torch fp32 when the model is at hand; else the export's fp32 ONNX graph in ONNX Runtime
    (checked against torch within 1e-3 when it was exported)."""
    if model is not None:
        def torch_reference(modality: Modality, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return in_chunks(lambda chunk: torch_outputs(model, chunk, modality), feeds)

        return torch_reference

    def onnx_reference(modality: Modality, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        path = export.graph(modality)
        return in_chunks(lambda chunk: run_graph(path, chunk, MODE_INPUTS[modality], export.outputs), feeds)

    return onnx_reference

"""ONNX Runtime int8 graphs of an export: dynamic quantisation of the weights, judged on held-out clips.

Each graph's matrix products get int8 weights (7-bit: see `quantize_graph`); activations are
quantised at run time. The int8 graphs are accepted only if every output keeps the int8 gate's
bar against fp32 on the held-out suite (int8_gate.py); where fully int8 graphs miss it, the layers
of `float_ladder` stay in float step by step (`nodes_to_exclude`). Below the bar at every step
they are removed and the refusal is kept in the manifest (`int8_refused`), keyed by what the
verdict depends on, so that the next start says so at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from socialmae_rt.backend import MODE_INPUTS
from socialmae_rt.engines.int8_gate import (
    MAX_BINARY_PROB_DIFF, MIN_INT8_COSINE, FloatKeep, Int8GateRefused, Progress, ReferenceOutputs, check_accuracy,
    failures, float_ladder, gate_id, held_out_windows, hopeless, in_chunks, score, worst_per_clip)
from socialmae_rt.engines.onnx_export import MANIFEST, ExportError, OnnxExport, run_graph, sha256_file, write_manifest
from socialmae_rt.engines.references import fp32_reference
from socialmae_rt.model import Modality, SocialMAE

log = logging.getLogger(__name__)

INT8_WEIGHT_BITS = 7  # see quantize_graph


class OrtInt8Refused(ExportError, Int8GateRefused):
    """The int8 graphs stray too far from fp32; the refusal is kept in the manifest
    (`int8_refused`) so that the next start says so without quantising again."""


def has_int8(export: OnnxExport, min_cosine: float = MIN_INT8_COSINE, max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> bool:
    """True when the export holds int8 graphs of the current kind (7-bit weights; earlier 8-bit ones
    saturate on CPUs without VNNI) that passed the current gate (the held-out suite) at a bar at least
    as strict as this one."""
    entry = export.manifest["graphs"]["audiovisual"].get("int8")
    passed = export.manifest.get("int8_gate", {})
    return (entry is not None and entry.get("weight_bits") == INT8_WEIGHT_BITS and entry.get("gate") == gate_id()
            and passed.get("min_cosine", 0.0) >= min_cosine and passed.get("max_prob_diff", 1.0) <= max_prob_diff)


def quantize_export(export: OnnxExport, model: SocialMAE | None = None, min_cosine: float = MIN_INT8_COSINE,
                    progress: Progress | None = None, max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> dict[str, Any]:
    """Add int8 graphs that keep `min_cosine` against fp32 (torch `model` when given, else the
    export's fp32 graphs) on the held-out suite; returns the gate's report (also in the manifest).
    Raises OrtInt8Refused when no step of the float ladder keeps the bar."""
    say = progress or (lambda message: log.info("%s", message))
    held_out = held_out_windows(export.preprocess, progress=say)
    reference = ReferenceOutputs(fp32_reference(export, model), held_out)
    attempts = []
    for keep in float_ladder(export.model_config.modality_specific_depth):
        kept = {}
        for modality in MODE_INPUTS:
            source = export.graph(modality)
            target = source.with_name(f"{modality.value}.int8.onnx")
            started = time.perf_counter()
            say(f"quantizing the {modality.value} graph to int8 (ONNX Runtime; in float: {keep.label})")
            kept[modality.value] = quantize_graph(source, target, keep)
            export.manifest["graphs"][modality.value]["int8"] = {
                "file": target.name, "sha256": sha256_file(target), "weight_bits": INT8_WEIGHT_BITS,
                "quantize_s": round(time.perf_counter() - started, 2), "gate": gate_id(), "float_kept": keep.label,
                "float_matmuls": kept[modality.value],
            }
        say(f"checking the int8 graphs on {len(held_out)} held-out windows")
        report = score(reference, _int8_runner(export))
        below = failures(report["graphs"], min_cosine, max_prob_diff)
        attempts.append({"float": keep.label, "float_matmuls": kept, "failures": below,
                         "worst_per_clip": worst_per_clip(report["clips"])})
        if not below:
            export.manifest["int8_accuracy"] = report["graphs"]
            export.manifest["int8_gate"] = {"gate": gate_id(), "min_cosine": min_cosine, "max_prob_diff": max_prob_diff,
                                            "clips": report["clips"],
                                            "attempts": attempts, "held_out": held_out.sources}
            export.manifest.pop("int8_refused", None)
            write_manifest(export)
            return export.manifest["int8_gate"] | {"graphs": report["graphs"]}
        say(f"int8 with {keep.label} in float misses the bar: " + "; ".join(below))
        if hopeless(report["graphs"]):
            say("too far below the bar for layers kept in float to help; not trying further")
            break
    for modality in MODE_INPUTS:
        entry = export.manifest["graphs"][modality.value].pop("int8")
        (export.directory / entry["file"]).unlink(missing_ok=True)
    try:
        check_accuracy(report["graphs"], min_cosine, max_prob_diff, error=OrtInt8Refused,
                       advice="Use the ort (fp32) or ov backend")
    except OrtInt8Refused as refused:
        export.manifest["int8_refused"] = {"error": str(refused), "attempts": attempts,
                                           **_refusal_key(min_cosine, max_prob_diff)}
        write_manifest(export)
        raise
    raise AssertionError("unreachable: check_accuracy raised")


def _int8_runner(export: OnnxExport):
    def run(modality: Modality, feeds):
        path = export.graph(modality, "int8")
        return in_chunks(lambda chunk: run_graph(path, chunk, MODE_INPUTS[modality], export.outputs), feeds)

    return run


class _NoPreprocessingAdvice(logging.Filter):
    """ONNX Runtime's quantiser logs "Please consider to run pre-processing before quantization" on
    the root logger for every graph: advice for image models, noise on every first start here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocessing_advice():
    root, advice = logging.getLogger(), _NoPreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantize_graph(source: Path, target: Path, keep: FloatKeep) -> dict[str, int]:
    """int8 weights for every matrix product of `source` but those `keep` leaves in float; how many
    stayed in float, of how many."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False)
    products = [node.name for node in graph.graph.node if node.op_type in ("MatMul", "Gemm")]
    excluded = [name for name in products if keep.matches(name)]
    del graph
    with _without_preprocessing_advice():
        quantize_dynamic(
            # reduce_range: 7-bit weights. x86 CPUs without VNNI/AMX (AVX2 only) multiply u8 x s8 pairs
            # into saturating 16-bit sums; with 8-bit weights a tiny model's logits fell to cosine
            # 0.968 on a Zen 3 EPYC, with 7-bit ones 0.9998. A cached graph may move between CPUs.
            str(source), str(target), weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=excluded,
            # the exporter leaves some intermediate types to inference; they are all float32
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return {"float": len(excluded), "total": len(products)}


def _refusal_key(min_cosine: float, max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> dict[str, Any]:
    import onnxruntime

    return {"weight_bits": INT8_WEIGHT_BITS, "min_cosine": min_cosine, "max_prob_diff": max_prob_diff,
            "onnxruntime": onnxruntime.__version__, "gate": gate_id()}


def check_int8_refusal(export: OnnxExport, min_cosine: float = MIN_INT8_COSINE,
                       max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> None:
    """Raise OrtInt8Refused when this export's int8 graphs were refused before under the same
    quantisation, bar, gate and ONNX Runtime version (or by a live shadow check)."""
    refused = export.manifest.get("int8_refused")
    if refused is not None and (refused.get("live") or all(
            refused.get(k) == v for k, v in _refusal_key(min_cosine, max_prob_diff).items())):
        raise OrtInt8Refused(f"{refused['error']} (cached in {export.directory / MANIFEST}; "
                             f"`socialmae-rt export-onnx --int8` to try again)")


def refuse_live(export: OnnxExport, reason: str) -> None:
    """The live shadow check disagreed with fp32 on the robot's own input: the int8 graphs are
    marked refused so that the next start does not pick them."""
    export.manifest["int8_refused"] = {"error": f"int8 graphs refused while running: {reason}", "live": True,
                                       **_refusal_key(MIN_INT8_COSINE)}
    # The graphs stay on disk but no longer count as passed: has_int8 is false until they are made again.
    for modality in MODE_INPUTS:
        export.manifest["graphs"][modality.value].get("int8", {}).pop("gate", None)
    write_manifest(export)

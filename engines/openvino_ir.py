"""OpenVINO IR of an ONNX export: converted once, quantized to int8 once, cached beside the export.

    <export>/openvino/<kind>-<key[:16]>/
        audiovisual.xml/.bin, audio.xml/.bin, video.xml/.bin
        manifest.json   what the key was made of, file hashes, build times, and for int8 the
                        accuracy against the fp32 model on held-out windows

`kind` is "fp32" (weights as exported; the bf16 backend runs this IR with a bf16 precision
hint) or "int8" (NNCF post-training quantization calibrated on real windows, calibration.py).
The key is sha256 over the export's graph hashes, the OpenVINO version and the kind, plus for
int8 the calibration clips' hashes and the accuracy bar. Backends compile
the saved IR (never the ONNX file, whose float weights would otherwise stay resident).

An int8 IR is accepted only if every output keeps cosine >= `min_cosine` (0.999 by default)
against the fp32 model on the held-out suite, clips that share nothing with the calibration clips
(int8_gate.py; a one-value output, a binary logit, keeps its probability within 0.01 instead).
Where fully int8 graphs miss the bar, the layers of `float_ladder` stay in float step by step
(NNCF's ignored scope); below the bar at every step the IR is refused (Int8AccuracyError), and
the refusal, not the IR, is cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from socialmae_rt.backend import MODE_INPUTS
from socialmae_rt.engines.engine_cache import cache_root
from socialmae_rt.engines.int8_gate import (
    MAX_BINARY_PROB_DIFF, MIN_INT8_COSINE, Int8GateRefused, Progress, Reference, ReferenceOutputs, check_accuracy,
    failures, float_ladder, gate_id, gate_windows, graph_inputs, hopeless, in_chunks, score, worst_per_clip)
from socialmae_rt.engines.onnx_export import OnnxExport, read_manifest, sha256_file
from socialmae_rt.model import Modality
from socialmae_rt.util.machine import CpuDescription

log = logging.getLogger(__name__)

FORMAT = "socialmae_rt.openvino/1"
KINDS = ("fp32", "int8")
MANIFEST = "manifest.json"


# NNCF's SmoothQuant (on by default for transformers, alpha 0.95 on matrix products) fits its
# activation scales to the calibration clip; on clips it never saw it was the largest loss measured:
# ViT-B on a Zen 4, audiovisual graph, held-out suite: embedding cosine 0.950 and laughter
# probability off by 0.37 with it, 0.9990 and 0.020 without (scripts/measure_int8_layers.py;
# alpha 0.5: 0.987 and 0.19). So it is off. Part of the IR key.
SMOOTH_QUANT = "off"


def overflow_fix(cpu: CpuDescription) -> str:
    """NNCF's overflow fix for int8 built on `cpu`: 7-bit weights in every layer ("enable") where the
    CPU has no int8 dot products (AVX2 only: u8 x s8 pairs add into saturating 16-bit sums; with
    NNCF's default, the first layer only, a tiny model's outputs fell to cosine 0.53 on a Zen 3
    EPYC), else in the first layer only (NNCF's default). Part of the IR key."""
    return "first_layer_only" if cpu.has_int8_dot else "enable"


class OpenVinoIRError(RuntimeError):
    """An IR that is missing, corrupt, or cannot be built."""


class Int8AccuracyError(OpenVinoIRError, Int8GateRefused):
    """The int8 IR strays too far from the fp32 model; it is not used, and the refusal is cached
    (`<kind>-<key>.refused.json`) so that the next start does not spend minutes learning it again."""


@dataclass
class OpenVinoIR:
    directory: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def xml(self, modality: Modality) -> Path:
        return self.directory / self.manifest["graphs"][modality.value]["xml"]


def openvino_version() -> str:
    import openvino

    return openvino.__version__


def ir_key(export: OnnxExport, kind: str, calibration: Sequence[str] = (), min_cosine: float = MIN_INT8_COSINE,
           cpu: CpuDescription | None = None, max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> str:
    """sha256 naming an IR: the export's graphs, OpenVINO's version, the kind; for int8 also what
    it was calibrated on, the accuracy bar it passed and the overflow fix this CPU needs (`cpu`:
    this machine by default). (NNCF's version is recorded in the manifest, not keyed: a cached
    int8 IR runs without NNCF installed.)"""
    if kind not in KINDS:
        raise ValueError(f"IR kind must be one of {KINDS}, got {kind!r}")
    parts: dict[str, Any] = {
        "format": FORMAT,
        "graphs": {mode: entry["sha256"] for mode, entry in sorted(export.manifest["graphs"].items())},
        "openvino": openvino_version(),
        "kind": kind,
    }
    if kind == "int8":
        parts.update(calibration=list(calibration), min_cosine=min_cosine, max_prob_diff=max_prob_diff, gate=gate_id(),
                     overflow_fix=overflow_fix(cpu or CpuDescription.this_machine()), smooth_quant=SMOOTH_QUANT)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def ir_home(export: OnnxExport, cache_dir: str | Path | None = None) -> Path:
    """Beside the export when that folder is writable, else under the cache root."""
    beside = export.directory / "openvino"
    if os.access(export.directory, os.W_OK):
        return beside
    return Path(cache_dir or cache_root()) / "openvino" / export.manifest["weights_sha256"][:16]


def load_ir(directory: str | Path) -> OpenVinoIR:
    """A cached IR; every file present and unchanged since it was written."""
    directory = Path(directory)
    manifest = read_manifest(directory / MANIFEST, FORMAT, OpenVinoIRError,
                             f"{directory} holds no OpenVINO IR ({MANIFEST} not found)")
    for mode, entry in manifest["graphs"].items():
        for name in ("xml", "bin"):
            file = directory / entry[name]
            if not file.is_file():
                raise OpenVinoIRError(f"{directory}: {entry[name]} for {mode} is missing")
            if sha256_file(file) != entry[f"{name}_sha256"]:
                raise OpenVinoIRError(f"{file} does not match the sha256 in {MANIFEST} (corrupt or replaced)")
    return OpenVinoIR(directory, manifest)


def prepare_ir(
    export: OnnxExport,
    kind: str,
    *,
    cache_dir: str | Path | None = None,
    calibration_clips: Sequence[str | Path] | None = None,
    held_out_clips: Sequence[str | Path] = (),
    reference: Reference | None = None,
    min_cosine: float = MIN_INT8_COSINE,
    max_prob_diff: float = MAX_BINARY_PROB_DIFF,
    progress: Progress | None = None,
) -> OpenVinoIR:
    """The cached IR of this kind for this export, built first if it is not there yet.

    int8 needs `reference` (the fp32 model's outputs, for the accuracy gate). Without
    `calibration_clips`, an int8 IR already built for this export (from any clips) that passed
    at least this bar is used; if there is none, one is calibrated on the bundled sample clip.
    `held_out_clips` are scored by the gate beside the held-out suite (a site recording's later part).
    """
    say = progress or (lambda message: log.info("%s", message))
    clips = [Path(c) for c in calibration_clips or ()]
    if kind == "int8" and not clips:  # no calibration asked for: any int8 IR of this export that passed this bar
        found = _passed_int8(ir_home(export, cache_dir), export, min_cosine, max_prob_diff)
        if found is not None:
            return found
    calibration_ids = [f"{c.name} {sha256_file(c)}" for c in clips] if clips else ["bundled sample clip"]
    gated = [Path(c) for c in held_out_clips]
    # The site's gate clips are part of what the verdict depends on: keyed beside the calibration clips.
    key_ids = calibration_ids + [f"held out: {c.name} {sha256_file(c)}" for c in gated]
    key = ir_key(export, kind, key_ids, min_cosine, max_prob_diff=max_prob_diff) if kind == "int8" else ir_key(export, kind)
    directory = ir_home(export, cache_dir) / f"{kind}-{key[:16]}"
    refused = directory.with_name(directory.name + ".refused.json")
    if refused.is_file():  # the gate said no for exactly this key before: say it again at once
        raise Int8AccuracyError(json.loads(refused.read_text())["error"] + f" (cached: delete {refused} to try again)")
    try:
        return load_ir(directory)
    except OpenVinoIRError as reason:
        if directory.exists():
            log.warning("rebuilding the OpenVINO IR in %s: %s", directory, reason)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=directory.parent))
    try:
        if kind == "fp32":
            manifest = _build_fp32(export, staging, say)
        else:
            if reference is None:
                raise OpenVinoIRError("an int8 IR needs the fp32 model's outputs to check its accuracy (reference)")
            fp32 = prepare_ir(export, "fp32", cache_dir=cache_dir, progress=progress)
            try:
                manifest = _build_int8(export, fp32, staging, clips or None, reference, min_cosine, max_prob_diff, say,
                                       gated)
            except Int8AccuracyError as error:
                refused.write_text(json.dumps({"error": str(error), "key": key, "accuracy": error.accuracy}, indent=2) + "\n")
                raise
        manifest.update(format=FORMAT, kind=kind, key=key, openvino=openvino_version(),
                        export=str(export.directory), weights_sha256=export.manifest["weights_sha256"],
                        export_graphs=_graph_hashes(export))
        if kind == "int8":
            manifest["calibration_ids"] = key_ids
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return load_ir(directory)


def _graph_hashes(export: OnnxExport) -> dict[str, str]:
    return {mode: entry["sha256"] for mode, entry in sorted(export.manifest["graphs"].items())}


def _passed_int8(home: Path, export: OnnxExport, min_cosine: float,
                 max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> OpenVinoIR | None:
    """The newest int8 IR in `home` made from these graphs with this OpenVINO that passed a bar
    at least as high (e.g. one `prepare-backend --calibration-clips` built from your own clips)."""
    if not home.is_dir():
        return None
    for directory in sorted(home.glob("int8-*"), key=lambda d: d.stat().st_mtime, reverse=True):
        if not directory.is_dir() or directory.with_name(directory.name + ".refused.json").is_file():
            continue
        try:
            ir = load_ir(directory)
        except OpenVinoIRError:
            continue
        manifest = ir.manifest
        if (manifest.get("export_graphs") == _graph_hashes(export) and manifest.get("openvino") == openvino_version()
                and manifest.get("min_cosine", 0) >= min_cosine and manifest.get("gate") == gate_id()
                and manifest.get("max_prob_diff", 1.0) <= max_prob_diff
                and manifest.get("overflow_fix") == overflow_fix(CpuDescription.this_machine())
                and manifest.get("smooth_quant") == SMOOTH_QUANT):
            return ir
    return None


def _file_entry(directory: Path, xml: Path, started: float) -> dict[str, Any]:
    binary = xml.with_suffix(".bin")
    return {"xml": xml.name, "bin": binary.name, "xml_sha256": sha256_file(xml), "bin_sha256": sha256_file(binary),
            "build_s": round(time.perf_counter() - started, 2)}


def _build_fp32(export: OnnxExport, directory: Path, say: Progress) -> dict[str, Any]:
    import openvino as ov

    graphs = {}
    for modality in MODE_INPUTS:
        started = time.perf_counter()
        say(f"converting the {modality.value} graph to OpenVINO IR")
        model = ov.convert_model(str(export.graph(modality)))
        xml = directory / f"{modality.value}.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)  # fp32 weights: bf16 is a run-time hint
        graphs[modality.value] = _file_entry(directory, xml, started)
    return {"graphs": graphs}


def _build_int8(export: OnnxExport, fp32: OpenVinoIR, directory: Path, clips: Sequence[Path] | None, reference: Reference,
                min_cosine: float, max_prob_diff: float, say: Progress, held_out_clips: Sequence[Path] = ()) -> dict[str, Any]:
    try:
        import nncf
    except ImportError as err:
        raise ImportError("building the int8 OpenVINO IR needs NNCF: pip install nncf "
                          "(or the project's [int8] extra); a cached int8 IR runs without it") from err
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    nncf.set_log_level(logging.WARNING)  # its INFO lines list every node it leaves alone: thousands
    no_smoothing = AdvancedSmoothQuantParameters(matmul=-1.0, convolution=-1.0)  # a negative alpha: off
    say("cutting calibration windows from " + (", ".join(c.name for c in clips) if clips else "the bundled sample clip"))
    windows = gate_windows(export.preprocess, clips, say, held_out_clips)
    calibrate = windows.calibration
    expected = ReferenceOutputs(reference, windows.held_out)
    core = ov.Core()
    fix = overflow_fix(CpuDescription.this_machine())
    attempts = []
    for keep in float_ladder(export.model_config.modality_specific_depth):
        graphs, kept = {}, {}
        for modality in MODE_INPUTS:
            started = time.perf_counter()
            say(f"quantizing the {modality.value} graph to int8 on {len(calibrate)} windows (NNCF; in float: {keep.label})")
            items = [graph_inputs(modality, calibrate.audio[i:i + 1], calibrate.video[i:i + 1]) for i in range(len(calibrate))]
            model = core.read_model(str(fp32.xml(modality)))
            kept[modality.value] = float_matmuls(model, keep)
            ignored = nncf.IgnoredScope(patterns=[".*" + p for p in keep.patterns], validate=False)
            quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(items), ignored_scope=ignored,
                                      advanced_parameters=nncf.AdvancedQuantizationParameters(
                                          overflow_fix=nncf.OverflowFix(fix), smooth_quant_alphas=no_smoothing))
            xml = directory / f"{modality.value}.xml"
            ov.save_model(quantized, str(xml), compress_to_fp16=False)
            graphs[modality.value] = _file_entry(directory, xml, started)
        say(f"checking the int8 graphs on {len(windows.held_out)} held-out windows")
        report = score(expected, lambda modality, feeds: run_ir(directory / f"{modality.value}.xml", feeds))
        below = failures(report["graphs"], min_cosine, max_prob_diff)
        attempts.append({"float": keep.label, "float_matmuls": kept, "failures": below,
                         "worst_per_clip": worst_per_clip(report["clips"])})
        if not below:
            return {"graphs": graphs, "int8_accuracy": report["graphs"], "int8_clips": report["clips"],
                    "min_cosine": min_cosine, "max_prob_diff": max_prob_diff, "gate": gate_id(), "overflow_fix": fix,
                    "smooth_quant": SMOOTH_QUANT, "nncf": nncf.__version__,
                    "float_kept": keep.label, "float_matmuls": kept, "attempts": attempts,
                    "windows": windows.description()}
        say(f"int8 with {keep.label} in float misses the bar: " + "; ".join(below))
        if hopeless(report["graphs"]):
            say("too far below the bar for layers kept in float to help; not trying further")
            break
    check_accuracy(report["graphs"], min_cosine, max_prob_diff, error=Int8AccuracyError,
                   advice="Use the ov (bf16/fp32) backend, or calibrate on your own clips (--calibration-clips)")
    raise AssertionError("unreachable: check_accuracy raised")


def float_matmuls(model, keep) -> dict[str, int]:
    """How many of the graph's matrix products the ignored scope leaves in float, of how many."""
    names = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"]
    return {"float": sum(keep.matches(name) for name in names), "total": len(names)}


def refuse_live(ir: OpenVinoIR, reason: str) -> Path:
    """Mark a cached int8 IR as refused (the live shadow check disagreed with fp32 on the robot's own
    input): the next start does not pick it. Returns the marker written."""
    marker = ir.directory.with_name(ir.directory.name + ".refused.json")
    marker.write_text(json.dumps({"error": f"refused while running: {reason}", "key": ir.manifest.get("key"),
                                  "live": True}, indent=2) + "\n")
    return marker


def run_ir(xml: Path, feeds: Mapping[str, np.ndarray], precision: str | None = None) -> dict[str, np.ndarray]:
    """One batch through an IR on the CPU (the accuracy gate): outputs by name. `precision`: an
    OpenVINO inference precision ("f32", "bf16"); None: OpenVINO's default for this CPU, as the
    backends run int8 IRs."""
    import openvino as ov

    config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    request = compiled.create_infer_request()

    def run(chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = request.infer(chunk)
        return {output.get_any_name(): np.array(result[output], dtype=np.float32) for output in compiled.outputs}

    return in_chunks(run, feeds)

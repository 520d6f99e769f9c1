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
against the fp32 model on windows the quantizer did not see (a one-value output, a binary logit,
keeps its probability within 0.01 instead: see `cosine_report`); below that it is refused
(Int8AccuracyError), and the refusal, not the IR, is cached.
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
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from socialmae_rt.machine import CpuDescription
from socialmae_rt.model import Modality

from .base import MODE_INPUTS, Int8Refused
from .engine_cache import cache_root
from .onnx_export import OnnxExport, read_manifest, sha256_file

log = logging.getLogger(__name__)

FORMAT = "socialmae_rt.openvino/1"
KINDS = ("fp32", "int8")
MIN_INT8_COSINE = 0.999
# One-value outputs are binary logits (laughter): their sigmoid may move this much at most.
MAX_BINARY_PROB_DIFF = 0.01
MANIFEST = "manifest.json"


def overflow_fix(cpu: CpuDescription) -> str:
    """NNCF's overflow fix for int8 built on `cpu`: 7-bit weights in every layer ("enable") where the
    CPU has no int8 dot products (AVX2 only: u8 x s8 pairs add into saturating 16-bit sums; with
    NNCF's default, the first layer only, a tiny model's outputs fell to cosine 0.53 on a Zen 3
    EPYC), else in the first layer only (NNCF's default). Part of the IR key."""
    return "first_layer_only" if cpu.has_int8_dot else "enable"


# (modality, inputs) -> outputs by name, each float32 [B, ...]
Reference = Callable[[Modality, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
Progress = Callable[[str], None]


class OpenVinoIRError(RuntimeError):
    """An IR that is missing, corrupt, or cannot be built."""


class Int8AccuracyError(OpenVinoIRError, Int8Refused):
    """The int8 IR strays too far from the fp32 model; it is not used, and the refusal is cached
    (`<kind>-<key>.refused.json`) so that the next start does not spend minutes learning it again."""

    def __init__(self, message: str, accuracy: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.accuracy = dict(accuracy or {})


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
           cpu: CpuDescription | None = None) -> str:
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
        parts.update(calibration=list(calibration), min_cosine=min_cosine,
                     overflow_fix=overflow_fix(cpu or CpuDescription.this_machine()))
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


def cosine_report(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: the lowest cosine similarity and the max abs difference.

    Outputs with several values per window are compared window by window (the worst window
    counts). A one-value output is a binary logit (laughter): a cosine over one value is only its
    sign, and across windows it mostly measures how far the logits sit from 0, so such outputs
    also get `max_prob_diff`, the largest difference of sigmoid(logit), which the gate uses.
    """
    report = {}
    for name, ref in expected.items():
        ref2 = np.asarray(ref, np.float64).reshape(ref.shape[0], -1)  # [N, K]
        got2 = np.asarray(actual[name], np.float64).reshape(ref2.shape)
        binary = ref2.shape[1] == 1
        if binary:
            ref2, got2 = ref2.T, got2.T  # [1, N]: the cosine across windows, for information
        norms = np.linalg.norm(ref2, axis=1) * np.linalg.norm(got2, axis=1)
        cosine = np.where(norms > 0, (ref2 * got2).sum(1) / np.maximum(norms, 1e-30), 1.0)
        report[name] = {"min_cosine": float(cosine.min()), "max_abs": float(np.abs(ref2 - got2).max())}
        if binary:
            report[name]["max_prob_diff"] = float(np.abs(_sigmoid(ref2) - _sigmoid(got2)).max())
    return report


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def graph_inputs(modality: Modality, audio: np.ndarray, video: np.ndarray) -> dict[str, np.ndarray]:
    given = {"audio": audio, "video": video}
    return {name: given[name] for name in MODE_INPUTS[modality]}


def prepare_ir(
    export: OnnxExport,
    kind: str,
    *,
    cache_dir: str | Path | None = None,
    calibration_clips: Sequence[str | Path] | None = None,
    reference: Reference | None = None,
    min_cosine: float = MIN_INT8_COSINE,
    progress: Progress | None = None,
) -> OpenVinoIR:
    """The cached IR of this kind for this export, built first if it is not there yet.

    int8 needs `reference` (the fp32 model's outputs, for the accuracy gate). Without
    `calibration_clips`, an int8 IR already built for this export (from any clips) that passed
    at least this bar is used; if there is none, one is calibrated on the bundled sample clip.
    """
    say = progress or (lambda message: log.info("%s", message))
    clips = [Path(c) for c in calibration_clips or ()]
    if kind == "int8" and not clips:  # no calibration asked for: any int8 IR of this export that passed this bar
        found = _passed_int8(ir_home(export, cache_dir), export, min_cosine)
        if found is not None:
            return found
    calibration_ids = [f"{c.name} {sha256_file(c)}" for c in clips] if clips else ["bundled sample clip"]
    key = ir_key(export, kind, calibration_ids, min_cosine) if kind == "int8" else ir_key(export, kind)
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
                manifest = _build_int8(export, fp32, staging, clips or None, reference, min_cosine, say)
            except Int8AccuracyError as error:
                refused.write_text(json.dumps({"error": str(error), "key": key, "accuracy": error.accuracy}, indent=2) + "\n")
                raise
        manifest.update(format=FORMAT, kind=kind, key=key, openvino=openvino_version(),
                        export=str(export.directory), weights_sha256=export.manifest["weights_sha256"],
                        export_graphs=_graph_hashes(export))
        if kind == "int8":
            manifest["calibration_ids"] = calibration_ids
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


def _passed_int8(home: Path, export: OnnxExport, min_cosine: float) -> OpenVinoIR | None:
    """The newest int8 IR in `home` made from these graphs with this OpenVINO that passed a bar
    at least as high (e.g. one `prepare-backend --calibration-clips` built from your own clips)."""
    if not home.is_dir():
        return None
    for directory in sorted(home.glob("int8-*"), key=lambda d: d.stat().st_mtime, reverse=True):
        if not directory.is_dir():
            continue
        try:
            ir = load_ir(directory)
        except OpenVinoIRError:
            continue
        manifest = ir.manifest
        if (manifest.get("export_graphs") == _graph_hashes(export) and manifest.get("openvino") == openvino_version()
                and manifest.get("min_cosine", 0) >= min_cosine
                and manifest.get("overflow_fix") == overflow_fix(CpuDescription.this_machine())):
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
                min_cosine: float, say: Progress) -> dict[str, Any]:
    try:
        import nncf
    except ImportError as err:
        raise ImportError("building the int8 OpenVINO IR needs NNCF: pip install nncf "
                          "(or the project's [int8] extra); a cached int8 IR runs without it") from err
    import openvino as ov

    from .calibration import calibration_windows

    say("cutting calibration windows from " + (", ".join(c.name for c in clips) if clips else "the bundled sample clip"))
    windows = calibration_windows(clips, export.preprocess)
    calibrate, held_out = windows.halves()
    core = ov.Core()
    fix = overflow_fix(CpuDescription.this_machine())
    graphs, accuracy = {}, {}
    for modality in MODE_INPUTS:
        started = time.perf_counter()
        say(f"quantizing the {modality.value} graph to int8 on {len(calibrate)} windows (NNCF)")
        items = [graph_inputs(modality, calibrate.audio[i:i + 1], calibrate.video[i:i + 1]) for i in range(len(calibrate))]
        quantized = nncf.quantize(core.read_model(str(fp32.xml(modality))), nncf.Dataset(items),
                                  model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items),
                                  advanced_parameters=nncf.AdvancedQuantizationParameters(
                                      overflow_fix=nncf.OverflowFix(fix)))
        xml = directory / f"{modality.value}.xml"
        ov.save_model(quantized, str(xml), compress_to_fp16=False)
        graphs[modality.value] = _file_entry(directory, xml, started)
        say(f"checking the int8 {modality.value} graph on {len(held_out)} held-out windows")
        feeds = graph_inputs(modality, held_out.audio, held_out.video)
        accuracy[modality.value] = cosine_report(reference(modality, feeds), run_ir(xml, feeds))
    check_accuracy(accuracy, min_cosine)
    return {"graphs": graphs, "int8_accuracy": accuracy, "min_cosine": min_cosine, "overflow_fix": fix,
            "nncf": nncf.__version__,
            "calibration": {"sources": windows.sources, "calibration_windows": len(calibrate),
                            "held_out_windows": len(held_out)}}


def check_accuracy(accuracy: Mapping[str, Mapping[str, Mapping[str, float]]], min_cosine: float,
                   max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> None:
    """Raise Int8AccuracyError naming every graph output below the bar (NaN fails): cosine for
    outputs of several values, the sigmoid probability for one-value (binary) outputs."""
    failures = []
    for mode, outputs in accuracy.items():
        for name, stats in outputs.items():
            if "max_prob_diff" in stats:
                if not stats["max_prob_diff"] <= max_prob_diff:
                    failures.append(f"{mode} {name} probability off by {stats['max_prob_diff']:.4f}")
            elif not stats["min_cosine"] >= min_cosine:
                failures.append(f"{mode} {name} cosine {stats['min_cosine']:.5f}")
    if failures:
        raise Int8AccuracyError(f"int8 graphs refused: below cosine {min_cosine} (binary outputs: probability within "
                                f"{max_prob_diff}) against fp32 on held-out windows: " + "; ".join(failures)
                                + ". Use the ov (bf16/fp32) backend, or calibrate on your own clips "
                                "(--calibration-clips)", accuracy)


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


def in_chunks(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feeds: Mapping[str, np.ndarray],
              size: int = 4) -> dict[str, np.ndarray]:
    """`run` over batches of at most `size` windows, outputs joined: bounds the attention memory
    (ViT-B: ~120 MB of attention weights per window in the joint block)."""
    total = next(iter(feeds.values())).shape[0]
    parts = [run({name: array[i:i + size] for name, array in feeds.items()}) for i in range(0, total, size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


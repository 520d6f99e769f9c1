"""The int8 accuracy gate, one for ONNX Runtime and OpenVINO: scored on clips the quantizer never saw.

Calibration windows come from the calibration clips (the bundled sample clip, or your own); the
gate scores windows of the held-out suite (`socialmae_rt.media.heldout`: other faces, voices,
languages, laughter, tones, noise, silence, light and framing), never windows of the clips it
calibrated on. Windows 0.5 s apart in one clip share 7/8 of their content, so held-out windows of
the same clip would only measure the calibration set again.

The bar: every output of every graph keeps cosine >= MIN_INT8_COSINE against fp32 on every
held-out window; a one-value output (the binary laughter logit) keeps its probability within
MAX_BINARY_PROB_DIFF instead. The report says both sets and the worst score per held-out clip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from socialmae_rt.backend import MODE_INPUTS, Int8Refused
from socialmae_rt.engines.calibration import CalibrationSet, calibration_windows
from socialmae_rt.engines.engine_cache import cache_root
from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.media.heldout import build_suite, suite_key
from socialmae_rt.model import Modality

log = logging.getLogger(__name__)

MIN_INT8_COSINE = 0.999
# One-value outputs are binary logits (laughter): their sigmoid may move this much at most.
MAX_BINARY_PROB_DIFF = 0.01
HELD_OUT_HOP_S = 1.0  # held-out windows one second apart: 3-4 per clip
MAX_SITE_WINDOWS = 24  # at most this many held-out windows from a site recording

# (modality, inputs) -> outputs by name, each float32 [B, ...]
Reference = Callable[[Modality, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
Progress = Callable[[str], None]


def gate_id() -> str:
    """What the gate scores on, for cache keys: a changed suite re-judges every int8 model."""
    return f"held-out suite {suite_key()}"


class Int8GateRefused(Int8Refused):
    """int8 graphs below the bar on held-out clips; `accuracy` holds what was measured."""

    def __init__(self, message: str, accuracy: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.accuracy = dict(accuracy or {})


@dataclass
class GateWindows:
    """What a quantizer calibrates on and what the gate scores, sharing no clip."""

    calibration: CalibrationSet
    held_out: CalibrationSet

    def description(self) -> dict[str, Any]:
        return {"calibration": {"sources": self.calibration.sources, "windows": len(self.calibration)},
                "held_out": {"sources": self.held_out.sources, "windows": len(self.held_out)}}


def held_out_windows(preprocess: PreprocessConfig, exclude_sha256: Sequence[str] = (),
                     progress: Progress | None = None) -> CalibrationSet:
    """Windows of every clip of the held-out suite (written on first use, then cached with their
    windows under `$SOCIALMAE_RT_CACHE/heldout/`: they depend on the package, not on any weights,
    so every backend cache shares them), leaving out any clip whose sha256 is in `exclude_sha256`."""
    say = progress or (lambda message: log.info("%s", message))
    home = cache_root() / "heldout"
    key = hashlib.sha256(json.dumps([suite_key(), preprocess.to_dict(), HELD_OUT_HOP_S, sorted(exclude_sha256)],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cached = home / f"windows-{key}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as saved:
            return CalibrationSet(saved["audio"].astype(np.float32), saved["video"].astype(np.float32),
                                  [str(s) for s in saved["sources"]],
                                  [str(o) for o in saved["origins"]])
    say(f"writing the held-out suite for the int8 gate into {home} (once)")
    clips = build_suite(home)
    from socialmae_rt.engines.onnx_export import sha256_file

    kept = [c for c in clips if sha256_file(c) not in set(exclude_sha256)]
    say(f"cutting held-out windows from {len(kept)} clips")
    found = calibration_windows(kept, preprocess, hop_s=HELD_OUT_HOP_S, max_windows=10_000)
    staging = cached.with_name(f".{cached.name}.part.npz")
    # float16 on disk (half the size): both sides of the gate see the same inputs, real content either way
    found.audio, found.video = (found.audio.astype(np.float16).astype(np.float32),
                                found.video.astype(np.float16).astype(np.float32))
    np.savez(staging, audio=found.audio.astype(np.float16), video=found.video.astype(np.float16),
             sources=np.array(found.sources), origins=np.array(found.origins))
    staging.replace(cached)
    return found


def gate_windows(preprocess: PreprocessConfig, calibration_clips: Sequence[str | Path] | None = None,
                 progress: Progress | None = None, held_out_clips: Sequence[str | Path] = ()) -> GateWindows:
    """Calibration windows from `calibration_clips` (None: the bundled sample clip); held-out
    windows from the suite, without any clip that is also a calibration clip, plus those of
    `held_out_clips` (a site recording's later part: socialmae_rt.app.site_calibration)."""
    from socialmae_rt.engines.onnx_export import sha256_file

    clips = [Path(c) for c in calibration_clips or ()]
    calibration = calibration_windows(clips or None, preprocess)
    held_out = held_out_windows(preprocess, [sha256_file(c) for c in clips], progress)
    if held_out_clips:
        site = calibration_windows(held_out_clips, preprocess, hop_s=HELD_OUT_HOP_S, max_windows=MAX_SITE_WINDOWS)
        held_out = CalibrationSet(np.concatenate([held_out.audio, site.audio]), np.concatenate([held_out.video, site.video]),
                                  held_out.sources + site.sources, held_out.origins + site.origins)
    return GateWindows(calibration, held_out)


def in_chunks(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feeds: Mapping[str, np.ndarray],
              size: int = 4) -> dict[str, np.ndarray]:
    """`run` over batches of at most `size` windows, outputs joined: bounds the attention memory
    (ViT-B: ~120 MB of attention weights per window in the joint block)."""
    total = next(iter(feeds.values())).shape[0]
    parts = [run({name: array[i:i + size] for name, array in feeds.items()}) for i in range(0, total, size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def graph_inputs(modality: Modality, audio: np.ndarray, video: np.ndarray) -> dict[str, np.ndarray]:
    given = {"audio": audio, "video": video}
    return {name: given[name] for name in MODE_INPUTS[modality]}


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
            report[name]["max_prob_diff"] = float(np.abs(sigmoid(ref2) - sigmoid(got2)).max())
    return report


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


class ReferenceOutputs:
    """The fp32 outputs on the held-out windows, computed once per graph and reused by every step of
    the float ladder."""

    def __init__(self, reference: Reference, held_out: CalibrationSet) -> None:
        self.reference, self.held_out = reference, held_out
        self._outputs: dict[Modality, dict[str, np.ndarray]] = {}

    def __call__(self, modality: Modality) -> dict[str, np.ndarray]:
        if modality not in self._outputs:
            self._outputs[modality] = self.reference(modality, graph_inputs(modality, self.held_out.audio,
                                                                            self.held_out.video))
        return self._outputs[modality]


def score(reference: ReferenceOutputs, candidate: Reference) -> dict[str, Any]:
    """Every graph of `candidate` against the reference on its held-out windows:
    {"graphs": {mode: {output: stats}}, "clips": {clip: {mode: {output: stats}}}}."""
    graphs, clips = {}, {}
    held_out = reference.held_out
    origins = np.array(held_out.origins)
    for modality in MODE_INPUTS:
        feeds = graph_inputs(modality, held_out.audio, held_out.video)
        expected, got = reference(modality), candidate(modality, feeds)
        graphs[modality.value] = cosine_report(expected, got)
        for clip in dict.fromkeys(held_out.origins):  # in order, once each
            rows = origins == clip
            clips.setdefault(clip, {})[modality.value] = cosine_report(
                {k: v[rows] for k, v in expected.items()}, {k: v[rows] for k, v in got.items()})
    return {"graphs": graphs, "clips": clips}


def worst_per_clip(clips: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> dict[str, dict[str, float]]:
    """clip -> the lowest cosine over its multi-value outputs and the largest laughter probability
    difference, over every graph: one line per clip for a person to read."""
    worst = {}
    for clip, modes in clips.items():
        stats = [s for outputs in modes.values() for s in outputs.values()]
        worst[clip] = {"min_cosine": min(s["min_cosine"] for s in stats if "max_prob_diff" not in s),
                       "max_prob_diff": max((s["max_prob_diff"] for s in stats if "max_prob_diff" in s), default=0.0)}
    return worst


def failures(accuracy: Mapping[str, Mapping[str, Mapping[str, float]]], min_cosine: float = MIN_INT8_COSINE,
             max_prob_diff: float = MAX_BINARY_PROB_DIFF) -> list[str]:
    """Every graph output below the bar (NaN fails), e.g. 'audiovisual emotion cosine 0.99812'."""
    found = []
    for mode, outputs in accuracy.items():
        for name, stats in outputs.items():
            if "max_prob_diff" in stats:
                if not stats["max_prob_diff"] <= max_prob_diff:
                    found.append(f"{mode} {name} probability off by {stats['max_prob_diff']:.4f}")
            elif not stats["min_cosine"] >= min_cosine:
                found.append(f"{mode} {name} cosine {stats['min_cosine']:.5f}")
    return found


# Below these, keeping more layers in float cannot close the gap (int8 on AVX2-only CPUs in OpenVINO
# reached cosine 0.67 on a tiny model): the ladder stops there instead of quantising again.
HOPELESS_COSINE = 0.99
HOPELESS_PROB_DIFF = 0.05


def hopeless(accuracy: Mapping[str, Mapping[str, Mapping[str, float]]]) -> bool:
    """True when the int8 graphs miss the bar by so much that no step of the float ladder will help."""
    stats = [s for outputs in accuracy.values() for s in outputs.values()]
    return any(not s["max_prob_diff"] <= HOPELESS_PROB_DIFF if "max_prob_diff" in s
               else not s["min_cosine"] >= HOPELESS_COSINE for s in stats)


def check_accuracy(accuracy: Mapping[str, Mapping[str, Mapping[str, float]]], min_cosine: float = MIN_INT8_COSINE,
                   max_prob_diff: float = MAX_BINARY_PROB_DIFF, error: type[Int8GateRefused] = Int8GateRefused,
                   advice: str = "") -> None:
    """Raise `error` naming every graph output below the bar: cosine for outputs of several
    values, the sigmoid probability for one-value (binary) outputs."""
    below = failures(accuracy, min_cosine, max_prob_diff)
    if below:
        raise error(f"int8 graphs refused: below cosine {min_cosine} (binary outputs: probability within "
                    f"{max_prob_diff}) against fp32 on held-out clips: " + "; ".join(below)
                    + (f". {advice}" if advice else ""), accuracy)


def describe_report(report: Mapping[str, Any]) -> list[str]:
    """Lines for a person: what was calibrated on, what was scored, and the worst per clip."""
    lines = []
    sets = report.get("windows", {})
    if sets:
        lines.append("calibrated on " + "; ".join(sets["calibration"]["sources"]))
        lines.append(f"scored on {sets['held_out']['windows']} held-out windows of " +
                     ", ".join(s.split()[0] for s in sets["held_out"]["sources"]))
    for clip, worst in worst_per_clip(report.get("clips", {})).items():
        lines.append(f"  {clip:34s} lowest cosine {worst['min_cosine']:.5f}, laughter probability off by "
                     f"{worst['max_prob_diff']:.4f}")
    return lines


@dataclass(frozen=True)
class FloatKeep:
    """Layers left in float in an int8 graph: node-name patterns (regular expressions searched in
    our exports' node names, e.g. '/blocks_u.0/attn/qkv/MatMul')."""

    label: str
    patterns: tuple[str, ...]

    def matches(self, node_name: str) -> bool:
        return any(re.search(pattern, node_name) for pattern in self.patterns)


def float_ladder(modality_specific_depth: int) -> tuple[FloatKeep, ...]:
    """What stays in float, step by step, when int8 graphs miss the bar: nothing; then the heads and
    the joint block (every window's last layers, where an error reaches the outputs unaveraged);
    then also the patch embeddings and the first and last block of each stream."""
    last = modality_specific_depth - 1
    # The heads: ONNX names their Gemms "/mlp_head/...", "/laughter/..."; OpenVINO renames the MatMul
    # that produces an output after the output ("emotion", "laughter", "personality").
    heads = (r"/mlp_head/", r"/laughter/", r"/personality/", r"(^|/)(emotion|laughter|personality)$")
    tail = (r"/blocks_u\.", *heads, r"/norm(_a|_v)?/")
    ends = (r"/patch_embed_[av]/", rf"/blocks_[av]\.0/", rf"/blocks_[av]\.{last}/")
    return (FloatKeep("none", ()), FloatKeep("heads + joint block", tail),
            FloatKeep("heads + joint block + patch embeddings + first/last blocks", tail + ends))

"""Which layers and settings lose OpenVINO int8 accuracy: one graph quantised by NNCF in several
ways (parts kept in float, SmoothQuant's alpha, NNCF's preset), each scored against fp32 on the
held-out suite (the int8 gate's windows), with its speed.

    .venv/bin/python scripts/measure_int8_layers.py --model base [--graph audiovisual] [--cache-dir DIR]
        [--settings NAME ...] [--json PATH]

Calibrates on the bundled sample clip as the gate does. Prints the CPU, then one row per setting:
matrix products left in float, the lowest cosine of each multi-value output, the laughter
probability difference, and seconds per window (batch 1, the machine's cores). The export and
the fp32 IR are taken from the cache (built first when missing), random weights of the size given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from socialmae_rt.model.config import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADS = r"(^|/)(emotion|laughter|personality)$"  # OpenVINO names each head's MatMul after its output
TAIL = (r"/blocks_u\.", HEADS, r"/mlp_head/", r"/norm(_a|_v)?/")
EMBED = (r"/patch_embed_[av]/",)
SDPA = (r"/attn/MatMul_1$",)  # the attention itself (q·k, softmax, ·v): one ScaledDotProductAttention op


def settings(depth: int) -> dict[str, dict]:
    """name -> (patterns kept in float, NNCF keyword overrides)."""
    first = (rf"/blocks_[av]\.0/",)
    last = (rf"/blocks_[av]\.{depth - 1}/",)
    mlp = (r"/mlp/fc2/",)
    return {
        "all int8": {"float": ()},
        "heads float": {"float": (HEADS,)},
        "patch embeddings float": {"float": EMBED},
        "attention float": {"float": SDPA},
        "fc2 (MLP out) float": {"float": mlp},
        "first blocks float": {"float": first},
        "last blocks float": {"float": last},
        "heads + joint block float": {"float": TAIL},
        "ladder step 3": {"float": TAIL + EMBED + first + last},
        "no SmoothQuant": {"float": (), "smooth_quant": -1.0},
        "SmoothQuant alpha 0.5": {"float": (), "smooth_quant": 0.5},
        "preset mixed": {"float": (), "preset": "mixed"},
        "7-bit weights everywhere": {"float": (), "overflow_fix": "enable"},
        "no SmoothQuant, heads float": {"float": (HEADS,), "smooth_quant": -1.0},
        "no SmoothQuant, heads + joint block float": {"float": TAIL, "smooth_quant": -1.0},
        "no SmoothQuant, ladder step 3": {"float": TAIL + EMBED + first + last, "smooth_quant": -1.0},
        "no SmoothQuant, attention float": {"float": SDPA, "smooth_quant": -1.0},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base", choices=MODEL_NAMES)
    parser.add_argument("--graph", default="audiovisual", choices=["audiovisual", "audio", "video"])
    parser.add_argument("--cache-dir", help="export cache (default: $SOCIALMAE_RT_CACHE or ~/.cache/socialmae_rt)")
    parser.add_argument("--settings", nargs="+", help="only these settings (names as printed)")
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--calibration-clips", nargs="+", metavar="CLIP",
                        help="calibrate on these clips instead of the sample clip (a held-out clip among them "
                        "leaves the scored set, as in the gate)")
    parser.add_argument("--score-only", nargs="+", metavar="CLIP", help="score only the held-out windows of "
                        "these clips (file stems), e.g. to compare calibrations on the same windows")
    args = parser.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    print(next((line for line in cpu.splitlines() if line.startswith("Model name")), "Model name: ?"), flush=True)

    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    from socialmae_rt.app.options import DEFAULT_EXTRA_HEADS
    from socialmae_rt.engines.exports import prepare_export
    from socialmae_rt.engines.int8_gate import FloatKeep, ReferenceOutputs, cosine_report, gate_windows, graph_inputs
    from socialmae_rt.engines.openvino_ir import float_matmuls, overflow_fix, prepare_ir, run_ir
    from socialmae_rt.engines.references import fp32_reference
    from socialmae_rt.model import Modality
    from socialmae_rt.model.config import SocialMAEConfig
    from socialmae_rt.util.machine import CpuDescription

    nncf.set_log_level(30)
    config = SocialMAEConfig.variant(args.model, extra_heads=DEFAULT_EXTRA_HEADS)
    export = prepare_export(None, config, cache_dir=args.cache_dir, on_status=print)
    fp32 = prepare_ir(export, "fp32", cache_dir=args.cache_dir, progress=print)
    modality = Modality(args.graph)
    windows = gate_windows(export.preprocess, args.calibration_clips, print)
    if args.score_only:
        from socialmae_rt.engines.calibration import CalibrationSet

        rows_kept = np.isin(np.array(windows.held_out.origins), args.score_only)
        held_out = windows.held_out
        windows.held_out = CalibrationSet(held_out.audio[rows_kept], held_out.video[rows_kept], held_out.sources,
                                          [o for o, k in zip(held_out.origins, rows_kept) if k])
    expected = ReferenceOutputs(fp32_reference(export, None), windows.held_out)(modality)
    calibrate = windows.calibration
    items = [graph_inputs(modality, calibrate.audio[i:i + 1], calibrate.video[i:i + 1]) for i in range(len(calibrate))]
    held = graph_inputs(modality, windows.held_out.audio, windows.held_out.video)
    one = {name: array[:1] for name, array in held.items()}
    print(f"{args.model}, {args.graph} graph; calibrated on {len(calibrate)} windows of "
          f"{'; '.join(calibrate.sources)}, scored on {len(windows.held_out)} held-out windows of "
          f"{', '.join(dict.fromkeys(windows.held_out.origins))}", flush=True)
    core = ov.Core()
    default_fix = overflow_fix(CpuDescription.this_machine())
    chosen = settings(config.modality_specific_depth)
    rows = []
    for name, setting in chosen.items():
        if args.settings and name not in args.settings:
            continue
        keep = FloatKeep(name, tuple(setting["float"]))
        model = core.read_model(str(fp32.xml(modality)))
        kept = float_matmuls(model, keep)
        advanced = nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix(setting.get("overflow_fix", default_fix)))
        if "smooth_quant" in setting:
            advanced.smooth_quant_alphas = AdvancedSmoothQuantParameters(matmul=setting["smooth_quant"])
        extra = {"preset": nncf.QuantizationPreset.MIXED} if setting.get("preset") == "mixed" else {}
        started = time.perf_counter()
        quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(items), advanced_parameters=advanced,
                                  ignored_scope=nncf.IgnoredScope(patterns=[".*" + p for p in keep.patterns],
                                                                  validate=False), **extra)
        build_s = time.perf_counter() - started
        xml = Path(fp32.directory).parent / f".measure-{args.graph}.xml"
        ov.save_model(quantized, str(xml), compress_to_fp16=False)
        got = run_ir(xml, held)
        report = cosine_report(expected, got)
        compiled = core.compile_model(str(xml), "CPU")
        request = compiled.create_infer_request()
        request.infer(one)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            request.infer(one)
            times.append(time.perf_counter() - t0)
        row = {"setting": name, "float_matmuls": f"{kept['float']}/{kept['total']}",
               "s_per_window": float(np.median(times)), "build_s": round(build_s, 1),
               **{f"{out} cos": stats["min_cosine"] for out, stats in report.items() if "max_prob_diff" not in stats},
               **{f"{out} dP": stats["max_prob_diff"] for out, stats in report.items() if "max_prob_diff" in stats}}
        rows.append(row)
        print(" | ".join(f"{k} {v:.5f}" if isinstance(v, float) and "cos" in k else
                         f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
        for suffix in (".xml", ".bin"):
            xml.with_suffix(suffix).unlink(missing_ok=True)
    fp32_times = []
    compiled = core.compile_model(str(fp32.xml(modality)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    request.infer(one)
    for _ in range(5):
        t0 = time.perf_counter()
        request.infer(one)
        fp32_times.append(time.perf_counter() - t0)
    print(f"fp32 IR (f32 precision): {np.median(fp32_times):.3f} s per window")
    print()
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.5f}" if isinstance(row.get(k), float) and "cos" in k else
                                f"{row[k]:.4f}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu.splitlines()[:20], "model": args.model, "graph": args.graph,
                                               "fp32_s_per_window": float(np.median(fp32_times)), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

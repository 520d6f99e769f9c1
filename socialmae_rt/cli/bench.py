"""`socialmae-rt bench | bench-pipeline | bench-node | soak | bench-triton`: the benchmarks
(socialmae_rt/bench/), each printing tables and writing JSON."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from socialmae_rt.app.options import MODEL_NAMES, RunOptions
from socialmae_rt.util.options import add_flags, flag_values, from_flat


def _bench_pipeline(args: argparse.Namespace) -> int:
    from socialmae_rt.bench.pipeline import run_bench

    if not Path(args.source).is_file():
        raise FileNotFoundError(f"--source {args.source}: no such file (make one with: python -m socialmae_rt.media.sample OUT.mp4)")
    run_bench(args.source, args.models, args.soak_minutes, args.json)
    return 0


def _add_bench_pipeline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-pipeline", help="measure the streaming pipeline around the model (tables + JSON)")
    p.add_argument("--source", required=True, help="a 640x480 media file with a face and speech (e.g. the sample clip)")
    p.add_argument("--models", nargs="+", default=["tiny", "base"], choices=MODEL_NAMES,
                   help="model sizes for the overhead measurement (default: tiny base)")
    p.add_argument("--soak-minutes", type=float, default=0.0,
                   help="also run the file looped in real time this long with the first model, reporting RSS (default: 0 = skip)")
    p.add_argument("--json", default="outputs/bench_pipeline.json", help="where to write the JSON")
    p.set_defaults(handler=_bench_pipeline)


def _soak(args: argparse.Namespace) -> int:
    from socialmae_rt.bench.soak import SOAK_FLAGS, SOAK_RUN_FLAGS, SoakOptions, run_soak, soak_run_defaults

    run = from_flat(RunOptions, flag_values(args, SOAK_RUN_FLAGS), base=soak_run_defaults())
    run_soak(SoakOptions(run=run, **flag_values(args, SOAK_FLAGS)))
    return 0


def _add_soak(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.bench.soak import SOAK_FLAGS, SOAK_RUN_FLAGS, SoakOptions, soak_run_defaults

    p = sub.add_parser("soak", help="loop a file in real time for N minutes: memory, windows, records, gaps",
                       description="Loop a media file in real time through the whole run path for N minutes, sampling "
                       "resident memory and held state; print start / 1 min / end / max RSS, windows run and skipped, "
                       "records written, latency p50/p95 and any stretch without output.")
    add_flags(p, RunOptions, SOAK_RUN_FLAGS, defaults=soak_run_defaults(), required=("source",),
              helps={"source": "media file to loop (e.g. outputs/sample.mp4)",
                     "output": "the JSONL written during the soak (default: %(default)s)"})
    add_flags(p, SoakOptions, SOAK_FLAGS)
    p.set_defaults(handler=_soak)


def _bench_node(args: argparse.Namespace) -> int:
    if not Path(args.source).is_file():
        raise FileNotFoundError(f"--source {args.source}: no such file (make one with: python -m socialmae_rt.media.sample OUT.mp4)")
    try:
        from socialmae_rt.bench.node import run_bench
    except ImportError as err:
        raise ImportError(f"bench-node needs rclpy ({err}); install with: pip install -e '.[ros]'") from err
    if args.faces:
        from socialmae_rt.bench.node import run_faces_bench

        run_faces_bench(args.source, args.faces, args.models[0], args.backend, args.hop, args.seconds, args.json,
                        args.threads)
    else:
        run_bench(args.source, args.models, args.backend, args.hop, args.seconds, args.json)
    return 0


def _add_bench_node(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-node", help="the ROS node in its own process: start to first result, publish latency")
    p.add_argument("--source", required=True, help="media file played in real time into the node (e.g. the sample clip)")
    p.add_argument("--models", nargs="+", default=["tiny", "base"], choices=MODEL_NAMES)
    p.add_argument("--backend", default="torch", help="backend the node runs (default: torch)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between windows (default: 0.5)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to collect results per model (default: 20)")
    p.add_argument("--faces", nargs="+", choices=("own", "hri"),
                   help="compare where faces come from instead (first --models only, ROS topics in both): own "
                   "(a camera topic, our detector) and/or hri (a ROS4HRI detector's faces; needs hri_msgs)")
    p.add_argument("--threads", type=int, help="with --faces: the node's compute threads (default: every core)")
    p.add_argument("--json", default="outputs/bench_node.json", help="where to write the JSON")
    p.set_defaults(handler=_bench_node)


def _bench(args: argparse.Namespace) -> int:
    from socialmae_rt.bench.backends import run_bench

    if args.bundle:
        from socialmae_rt.bench.bundle import run_bundle_bench

        backend = (args.backends or ["torch"])[0]
        run_bundle_bench(args.models, backend, args.seconds, args.student, args.json.replace(".json", "_bundle.json"),
                         threads=args.threads)
        return 0
    if min(args.batches) < 1 or args.contention < 0 or args.repeats < 1:
        raise ValueError(f"--batches must be >= 1 (got {args.batches}), --contention >= 0 (got {args.contention}), "
                         f"--repeats >= 1 (got {args.repeats})")
    print("note: random weights (speed and agreement with torch fp32 do not depend on the values)")
    run_bench(args.models, args.backends, args.repeats, args.json, cache_dir=args.cache_dir, threads=args.threads,
              batches=args.batches, contention=args.contention)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.engines import available_backends

    p = sub.add_parser("bench", help="every backend x model size: latency, windows/s, memory, accuracy (table, JSON, PNG)")
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--backends", nargs="+", choices=[*available_backends(), "eager-reference"],
                   help="default: every backend available here (trt only with TensorRT and a GPU), and "
                   "eager-reference (our weights computed as the reference code does)")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4],
                   help="windows per call, i.e. faces at once (default: 1 2 4)")
    p.add_argument("--contention", type=int, default=1,
                   help="busy-loop processes beside a second batch-1 pass, for the slowdown column (default: 1; 0: skip)")
    p.add_argument("--repeats", type=int, default=10, help="interleaved repetitions per backend (default: 10)")
    p.add_argument("--threads", type=int, help="compute threads for every backend (default: every core this process may use)")
    p.add_argument("--cache-dir", help="where ONNX exports are cached (default: $SOCIALMAE_RT_CACHE or ~/.cache/socialmae_rt)")
    p.add_argument("--json", default="outputs/bench.json", help="JSON path; the chart goes beside it as .png")
    p.add_argument("--bundle", action="store_true",
                   help="instead: per-window cost of one checkpoint vs a bundle of three vs a merged student, through "
                   "the whole pipeline on a generated clip (first --backends entry, default torch; <json>_bundle.json)")
    p.add_argument("--seconds", type=float, default=8.0, help="--bundle: length of the generated clip (default: 8)")
    p.add_argument("--student", choices=MODEL_NAMES, help="--bundle: merged student size (default: the model's)")
    p.set_defaults(handler=_bench, log_level=logging.ERROR)  # the table says what matters


def _bench_triton(args: argparse.Namespace) -> int:
    from socialmae_rt.bench.triton import BenchTritonOptions, run_bench_triton

    run_bench_triton(from_flat(BenchTritonOptions, flag_values(args, args.option_names)))
    return 0


def _add_bench_triton(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.bench.triton import BenchTritonOptions

    p = sub.add_parser(
        "bench-triton", help="N simulated robots against one Triton server: throughput, latency, server batches",
        description="Each simulated robot sends one window (one row per face) every --hop seconds to the server; "
        "prints windows answered per second, request latency p50/p95, missed hop slots and the batch sizes the "
        "server formed, per robots x faces; writes JSON and a PNG. Without --url it serves a random-weights model "
        "of --model size with the bundled tritonserver on this machine (CPU).")
    p.set_defaults(handler=_bench_triton, option_names=add_flags(p, BenchTritonOptions))


SUBCOMMANDS = [_add_bench_pipeline, _add_bench_node, _add_bench, _add_soak, _add_bench_triton]

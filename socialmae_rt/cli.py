"""`socialmae-rt` command line. Each subcommand is a small function; heavy imports happen inside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from socialmae_rt import __version__
from socialmae_rt.threads import yield_idle_threads


def _info(args: argparse.Namespace) -> int:
    """Parameter count and GFLOP per window for model sizes, and optionally a checkpoint check."""
    from socialmae_rt.model import MODEL_VARIANTS, Modality, SocialMAEConfig, load_any_checkpoint
    from socialmae_rt.model.profile import count_gflops, count_parameters, profile_config

    if args.weights:
        from socialmae_rt.weights.bundle import parse_weights

        spec = parse_weights(args.weights)
        # A released .pth says nothing about its size: --model picks it (base by default).
        released = bool(spec.single) and spec.single.endswith((".pth", ".pt"))
        variant = "base" if args.model == "all" else args.model
        config = SocialMAEConfig.variant(variant, num_classes=args.num_classes) if released else None
        members = [(e.task, e.path) for e in spec.entries] or [("checkpoint", spec.single)]
        profiles = []
        for name, path in members:
            print(f"info: loading {path} and counting its FLOPs ...", file=sys.stderr, flush=True)
            model = load_any_checkpoint(path, config).model
            profiles.append((name, count_parameters(model), {m: count_gflops(model, m) for m in Modality}))
            labels = {head: model.config.head_labels.get(head) for head in model.config.head_sizes}
            print(f"{path}: loaded strictly; heads {model.config.head_sizes}; outputs {labels}")
        if len(profiles) > 1:  # a bundle: one encoder pass per checkpoint
            profiles.append(("bundle", sum(p[1] for p in profiles),
                             {m: sum(p[2][m] for p in profiles) for m in Modality}))
    else:
        names = sorted(MODEL_VARIANTS, key=lambda n: -MODEL_VARIANTS[n]["embed_dim"]) if args.model == "all" else [args.model]
        profiles = []
        for name in names:
            print(f"info: building a {name} model and counting its FLOPs ...", file=sys.stderr, flush=True)
            profile = profile_config(name, SocialMAEConfig.variant(name, num_classes=args.num_classes))
            profiles.append((name, profile.parameters, profile.gflops))
    if args.json:
        print(json.dumps(
            [{"model": n, "parameters": p, "gflops": {m.value: round(g, 3) for m, g in gf.items()}} for n, p, gf in profiles],
            indent=2,
        ))
        return 0
    print(f"{'model':<11} {'params (M)':>10} {'GFLOP AV':>9} {'GFLOP A':>8} {'GFLOP V':>8}")
    for name, params, gflops in profiles:
        print(
            f"{name:<11} {params / 1e6:>10.1f} {gflops[Modality.AUDIOVISUAL]:>9.1f} "
            f"{gflops[Modality.AUDIO]:>8.1f} {gflops[Modality.VIDEO]:>8.1f}"
        )
    print("GFLOP per 4 s window, batch 1 (multiply-add = 2 FLOP), counted by torch's FLOP counter.")
    from socialmae_rt.engines.auto import Installed, choose_backend
    from socialmae_rt.machine import CpuDescription

    from socialmae_rt.engines.adaptive import plan
    from socialmae_rt.runner import RunOptions, model_config_for

    print("info: looking at this CPU, the installed runtimes and the engine cache ...", file=sys.stderr, flush=True)
    cpu = CpuDescription.this_machine()
    installed = Installed.here()
    name, why = choose_backend(cpu, installed)
    print(f"--backend auto on this machine: {name} first ({why}); CPU: {cpu.summary()}")
    weights = " ".join(args.weights) if args.weights else None
    size = "base" if args.model == "all" else args.model
    now, later = plan(weights, model_config_for(RunOptions(weights=weights, model=size)), cpu=cpu, installed=installed)
    what = f"these weights ({weights})" if weights else f"random {size} weights"
    print(f"with {what}, from this cache: runs {now} now" + (
        f"; builds {', '.join(later)} in the background and switches to the first that passes its checks"
        if later else "; everything it needs is built"))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameter count and GFLOP per window; --weights checks a checkpoint loads")
    p.add_argument("--model", default="all", choices=["all", "base", "small", "tiny"], help="model size (default: all)")
    p.add_argument("--num-classes", type=int, default=6, help="size of the primary (emotion) head (default: 6)")
    p.add_argument("--weights", nargs="+", help="a released .pth, our .safetensors, or a bundle (folder or "
                   "task=checkpoint entries) to load strictly and profile")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_info)


def _run(args: argparse.Namespace) -> int:
    """Stream a camera (+ microphone) or a media file through the model; print and/or write JSONL."""
    from socialmae_rt.runner import RunOptions, run

    run(_options(args, RunOptions))
    return 0


def _options(args: argparse.Namespace, options_class):
    """The options dataclass from a subcommand's flags (named as its fields); warnings to stderr."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    values = {k: v for k, v in vars(args).items() if k not in ("command", "handler")}
    if isinstance(values.get("weights"), list):  # task=checkpoint entries: one string, as a ROS parameter holds it
        values["weights"] = " ".join(values["weights"])
    return options_class(**values)


def _add_perception_flags(p: argparse.ArgumentParser, d) -> None:
    """Flags `run` and `demo` share, with defaults from their options dataclass `d`."""
    p.add_argument("--mic", default=d.mic, help="microphone index or name substring for a camera source; "
                   "'none' for no audio (default: the default input). A file brings its own audio.")
    p.add_argument("--weights", nargs="+", default=d.weights, metavar="W",
                   help="a released .pth, our .safetensors, a bundle directory from `weights import`, or one "
                   "checkpoint per task: emotion=A laughter=B personality=C. Without it the model has RANDOM "
                   "weights and outputs are meaningless")
    p.add_argument("--model", default=d.model, choices=["base", "small", "tiny"],
                   help=f"model size when the weights do not say (default: {d.model})")
    p.add_argument("--backend", default=d.backend,
                   help=f"inference backend: auto | torch | torch-bf16 | ort | ort-int8 | ov | ov-int8 | trt | triton "
                   f"(default: {d.backend}: the fastest this CPU and install allow; a first start builds what it "
                   "needs once; triton: a Triton Inference Server, see --triton-url)")
    p.add_argument("--triton-url", dest="triton_url", default=d.triton_url, metavar="HOST:PORT",
                   help="--backend triton: the server (default: 127.0.0.1:8001 for grpc, :8000 for http)")
    p.add_argument("--triton-protocol", dest="triton_protocol", default=d.triton_protocol, choices=["grpc", "http"],
                   help=f"--backend triton: protocol (default: {d.triton_protocol})")
    p.add_argument("--triton-model-prefix", dest="triton_model_prefix", default=d.triton_model_prefix,
                   help=f"--backend triton: model names on the server, as given to export-triton "
                   f"(default: {d.triton_model_prefix})")
    p.add_argument("--triton-timeout", dest="triton_timeout", type=float, default=d.triton_timeout,
                   help=f"--backend triton: seconds one request may take before the server counts as down "
                   f"(default: {d.triton_timeout})")
    p.add_argument("--hop", type=float, default=d.hop, help=f"seconds between windows, 0.25..4 (default: {d.hop})")
    p.add_argument("--speakers", action="store_true", default=d.speakers,
                   help="who speaks: each face's mouth against the audio (MediaPipe face mesh, ~6 ms per face "
                   "crop); records gain `speaking`, laughter events the face that speaks (None: off camera)")
    p.add_argument("--speakers-audio", dest="speakers_audio", default=d.speakers_audio, choices=["all", "speakers"],
                   help="with --speakers: all (default: every face hears the window) or speakers (while a visible "
                   "face speaks only it hears; the others get video-only windows)")
    p.add_argument("--output", default=d.output, help="append result and event records to this JSONL file")
    p.add_argument("--fresh-output", dest="fresh_output", action="store_true",
                   help="start the --output file afresh instead of appending to it")
    p.add_argument("--width", type=int, default=d.width, help=f"camera width asked for (default: {d.width})")
    p.add_argument("--height", type=int, default=d.height, help=f"camera height asked for (default: {d.height})")
    p.add_argument("--fps", type=float, default=d.fps, help=f"camera frame rate asked for (default: {d.fps})")
    p.add_argument("--max-faces", type=int, default=d.max_faces, help=f"faces tracked at once (default: {d.max_faces})")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="compute threads of the backend (default: every core this process may use: affinity, cgroup quota)")
    p.add_argument("--shadow-check-s", dest="shadow_check_s", type=float, default=d.shadow_check_s,
                   help="an int8/bf16 backend re-runs one live window through fp32 this often, in idle time, and "
                   f"gives way to the next backend after 3 misses in a row (seconds; 0: off; default: {d.shadow_check_s:g})")
    p.add_argument("--calibrate-live", dest="calibrate_live_s", type=float, default=d.calibrate_live_s,
                   metavar="SECONDS",
                   help="at a first start where auto would build ov-int8: record this many seconds of this run's own "
                   "input, calibrate int8 on the first 60 %% and gate it on the last 40 %% (beside the held-out suite), "
                   "running a float backend meanwhile (0: off, calibrate on the bundled sample clip; default: "
                   f"{d.calibrate_live_s:g}; 60 or more recommended)")
    p.add_argument("--duration", type=float, default=d.duration, help="stop after this many seconds of input: media time for a file (an unpaced file runs faster than real time), capture time live")


def run_flag_help() -> dict[str, str]:
    """`socialmae-rt run` flag help by option name (the ROS node's parameters are those options)."""
    parser = argparse.ArgumentParser()
    _add_run(parser.add_subparsers())
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    return {action.dest: action.help for action in run._actions if action.help and action.dest != "help"}


def _add_run(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.runner import RunOptions

    d = RunOptions()
    p = sub.add_parser(
        "run",
        help="live perception from a camera + microphone, or from a media file",
        description="Stream a camera (+ microphone) or a media file through Social-MAE and print one line per "
        "window and face; --output writes the JSON records.",
    )
    p.add_argument("--source", default=d.source, help="camera index, /dev/videoN, stream URL, or a media file "
                   f"(mp4/mkv/avi/webm/flv) (default: {d.source})")
    _add_perception_flags(p, d)
    p.add_argument("--realtime", action="store_true", help="pace a file at real time, like a live stream")
    p.add_argument("--max-frame-side", dest="max_frame_side", type=int, default=d.max_frame_side,
                   help=f"scale larger frames down to this many pixels on the longest side as they are captured, "
                   f"so memory stays bounded whatever the input (default: {d.max_frame_side})")
    p.add_argument("--quiet", action="store_true", help="no per-window line")
    p.add_argument("--embedding", action="store_true", help="include the pooled embedding in records")
    p.add_argument("--status", action="store_true", help="also write status records (1 Hz) into the JSONL")
    p.add_argument("--zmq", default=d.zmq, help="publish records on this ZeroMQ PUB endpoint "
                   "(e.g. tcp://127.0.0.1:5556; multipart [topic, JSON])")
    p.add_argument("--zmq-curve-key", default=d.zmq_curve_key,
                   help="CURVE secret certificate (zmq.auth.create_certificates) to encrypt the ZeroMQ stream")
    p.add_argument("--zmq-curve-clients", default=d.zmq_curve_clients,
                   help="folder of client public certificates (*.key): only those clients may subscribe (ZAP)")
    p.set_defaults(handler=_run)


def _demo(args: argparse.Namespace) -> int:
    """The live overlay: video with face boxes, per-face bars and a status strip."""
    from socialmae_rt.demo.app import DemoOptions, run_demo

    run_demo(_options(args, DemoOptions))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.demo.app import DemoOptions

    d = DemoOptions()
    p = sub.add_parser(
        "demo",
        help="live webcam demo: the video with face boxes, emotion/laughter/personality bars and a status strip",
        description="Show what the robot perceives: an OpenCV window with each tracked face boxed, per-face bars "
        "for the six emotions, a laughter meter that flashes on onset, Big-Five bars, the modality in use, and a "
        "status strip (backend, windows/s, latencies, skipped windows, microphone level). Keys: q quits, space "
        "pauses the view, s saves a screenshot. --record writes the annotated video with its audio to an mp4; "
        "--headless draws without a window.",
    )
    p.add_argument("--camera", default=d.camera, help=f"camera index, /dev/videoN or stream URL (default: {d.camera})")
    p.add_argument("--source", default=d.source, help="a media file instead of the camera (it brings its own audio)")
    _add_perception_flags(p, d)
    p.add_argument("--record", default=d.record, help="write the annotated video and the audio to this .mp4")
    p.add_argument("--headless", action="store_true", help="no window (servers, tests): use with --record or --snapshot")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=d.realtime,
                   help="pace a file at real time (default: yes in a window; headless, as fast as it goes, every frame)")
    p.add_argument("--screenshot-dir", default=d.screenshot_dir, help="where the s key saves PNGs (default: .)")
    p.add_argument("--snapshot", default=d.snapshot, help="save the canvas drawn --snapshot-at seconds in to this PNG")
    p.add_argument("--snapshot-at", type=float, default=d.snapshot_at, help="seconds from the first frame (default: 0)")
    p.set_defaults(handler=_demo)


def _bench_pipeline(args: argparse.Namespace) -> int:
    from socialmae_rt.bench_pipeline import run_bench

    if not Path(args.source).is_file():
        raise FileNotFoundError(f"--source {args.source}: no such file (make one with: python -m socialmae_rt.sample_media OUT.mp4)")
    run_bench(args.source, args.models, args.soak_minutes, args.json)
    return 0


def _add_bench_pipeline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-pipeline", help="measure the streaming pipeline around the model (tables + JSON)")
    p.add_argument("--source", required=True, help="a 640x480 media file with a face and speech (e.g. the sample clip)")
    p.add_argument("--models", nargs="+", default=["tiny", "base"], choices=["base", "small", "tiny"],
                   help="model sizes for the overhead measurement (default: tiny base)")
    p.add_argument("--soak-minutes", type=float, default=0.0,
                   help="also run the file looped in real time this long with the first model, reporting RSS (default: 0 = skip)")
    p.add_argument("--json", default="outputs/bench_pipeline.json", help="where to write the JSON")
    p.set_defaults(handler=_bench_pipeline)


def _soak(args: argparse.Namespace) -> int:
    from socialmae_rt.soak import SoakOptions, run_soak

    run_soak(_options(args, SoakOptions))
    return 0


def _add_soak(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.soak import SoakOptions

    d = SoakOptions.__dataclass_fields__
    p = sub.add_parser("soak", help="loop a file in real time for N minutes: memory, windows, records, gaps",
                       description="Loop a media file in real time through the whole run path for N minutes, sampling "
                       "resident memory and held state; print start / 1 min / end / max RSS, windows run and skipped, "
                       "records written, latency p50/p95 and any stretch without output.")
    p.add_argument("--source", required=True, help="media file to loop (e.g. outputs/sample.mp4)")
    p.add_argument("--minutes", type=float, default=d["minutes"].default, help="how long (default: 60)")
    p.add_argument("--model", default=d["model"].default, choices=["base", "small", "tiny"])
    p.add_argument("--backend", default=d["backend"].default)
    p.add_argument("--weights", nargs="+", help="as for run (default: random weights)")
    p.add_argument("--hop", type=float, default=d["hop"].default)
    p.add_argument("--threads", type=int)
    p.add_argument("--output", default=d["output"].default, help="the JSONL written during the soak")
    p.add_argument("--json", default=d["json"].default, help="the report")
    p.add_argument("--gap-s", dest="gap_s", type=float, default=d["gap_s"].default,
                   help="no record for longer than this counts as a gap (default: 2)")
    p.set_defaults(handler=_soak)


def _bench_node(args: argparse.Namespace) -> int:
    if not Path(args.source).is_file():
        raise FileNotFoundError(f"--source {args.source}: no such file (make one with: python -m socialmae_rt.sample_media OUT.mp4)")
    try:
        from socialmae_rt.nodes.bench_node import run_bench
    except ImportError as err:
        raise ImportError(f"bench-node needs rclpy ({err}); install with: pip install -e '.[ros]'") from err
    run_bench(args.source, args.models, args.backend, args.hop, args.seconds, args.json)
    return 0


def _add_bench_node(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-node", help="the ROS node in its own process: start to first result, publish latency")
    p.add_argument("--source", required=True, help="media file played in real time into the node (e.g. the sample clip)")
    p.add_argument("--models", nargs="+", default=["tiny", "base"], choices=["base", "small", "tiny"])
    p.add_argument("--backend", default="torch", help="backend the node runs (default: torch)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between windows (default: 0.5)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to collect results per model (default: 20)")
    p.add_argument("--json", default="outputs/bench_node.json", help="where to write the JSON")
    p.set_defaults(handler=_bench_node)


def _bench(args: argparse.Namespace) -> int:
    import logging

    from socialmae_rt.engines.bench import run_bench

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.bundle:
        from socialmae_rt.engines.bench_bundle import run_bundle_bench

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
    p.add_argument("--models", nargs="+", default=["base", "small", "tiny"], choices=["base", "small", "tiny"])
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
    p.add_argument("--student", choices=["base", "small", "tiny"], help="--bundle: merged student size (default: the model's)")
    p.set_defaults(handler=_bench)


def _export_onnx(args: argparse.Namespace) -> int:
    import logging

    from socialmae_rt.engines.int8_gate import describe_report
    from socialmae_rt.engines.onnx_export import export_onnx
    from socialmae_rt.engines.ort_int8 import OrtInt8Refused, quantize_export
    from socialmae_rt.engines.torch_backend import load_model
    from socialmae_rt.runner import RunOptions, model_config_for

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    model, preprocess = load_model(args.weights, model_config_for(RunOptions(weights=args.weights, model=args.model)))
    export = export_onnx(model, args.out, preprocess, source=args.weights or "random")
    worst = max(s["max_abs"] for mode in export.manifest["verification"].values() for s in mode.values())
    print(f"exported {', '.join(export.manifest['graphs'])} graphs to {args.out}; largest difference vs torch {worst:.2e}")
    if args.int8:
        try:
            report = quantize_export(export, model, progress=lambda line: print(f"socialmae-rt: {line}", file=sys.stderr))
        except OrtInt8Refused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 1
        for mode, outputs in report["graphs"].items():
            print(f"int8 {mode}: " + ", ".join(f"{name} cosine {v['min_cosine']:.5f} max|d| {v['max_abs']:.3g}"
                                               for name, v in outputs.items()))
        print(f"int8 in float: {report['attempts'][-1]['float']}")
        print("\n".join(describe_report({"clips": report["clips"]})))
    return 0


def _add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="export the encoder + heads to ONNX (three graphs), checked against torch")
    p.add_argument("--weights", help="released .pth or our .safetensors (default: random weights)")
    p.add_argument("--model", default="base", choices=["base", "small", "tiny"], help="size for a .pth or random weights")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--int8", action="store_true", help="also write int8 graphs and report their accuracy vs torch fp32")
    p.set_defaults(handler=_export_onnx)


def _export_triton(args: argparse.Namespace) -> int:
    import logging

    from socialmae_rt.engines.triton_repository import TritonRepositoryConfig, export_triton
    from socialmae_rt.runner import RunOptions, model_config_for

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    weights = " ".join(args.weights) if args.weights else None
    config = TritonRepositoryConfig(platform=args.platform, max_batch_size=args.max_batch_size,
                                    preferred_batch_sizes=tuple(args.preferred_batch_sizes),
                                    max_queue_delay_us=args.max_queue_delay_us, instances=args.instances,
                                    instance_kind=args.instance_kind, variant=args.variant,
                                    model_prefix=args.model_prefix, threads=args.threads or 0)
    manifest = export_triton(weights, args.out, config, model_config_for(RunOptions(weights=weights, model=args.model)),
                             cache_dir=args.cache_dir, on_status=lambda message: print(message, flush=True))
    print(f"Triton model repository in {args.out} ({config.platform}, max batch {config.max_batch_size}, "
          f"preferred {list(config.preferred_batch_sizes)}, queue delay {config.max_queue_delay_us} us):")
    for name, model in manifest["models"].items():
        print(f"  {name}: {model['modality']}" + (f" ({model['task']})" if model["task"] else ""))
    if config.platform == "python":
        print(f"serve it here (CPU, the pytriton wheel's server): socialmae-rt serve-triton --repository {args.out}")
    else:
        print(f"serve it: docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -v $(realpath {args.out}):/models "
              "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models")
    return 0


def _add_export_triton(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.engines.triton_repository import INSTANCE_KINDS, PLATFORMS, TritonRepositoryConfig

    d = TritonRepositoryConfig()
    p = sub.add_parser(
        "export-triton", help="write a Triton Inference Server model repository (one model per modality graph)",
        description="Export the model (a checkpoint, an ONNX export, or a task bundle: one set of models per task) "
        "as a Triton model repository: <prefix>[_<task>]_<audiovisual|audio|video>, each with a config.pbtxt "
        "(inputs audio/video, outputs embedding and every head, dynamic batching) that records the weights' hashes "
        "and the preprocessing, which `--backend triton` checks before it trusts the server.")
    p.add_argument("--weights", nargs="+", metavar="W", help="released .pth, our .safetensors, an ONNX export "
                   "directory, a bundle directory, or task=checkpoint entries (default: random weights)")
    p.add_argument("--model", default="base", choices=["base", "small", "tiny"], help="size for a .pth or random weights")
    p.add_argument("--out", required=True, help="the repository folder (created; models in it are replaced)")
    p.add_argument("--platform", default=d.platform, choices=PLATFORMS,
                   help="onnxruntime (default: Triton's ONNX Runtime backend, GPU or CPU), tensorrt (plans built "
                   "here, for servers with this GPU model), python (our graph in Triton's Python backend: servers "
                   "without the ONNX Runtime backend, such as the pytriton wheel's)")
    p.add_argument("--max-batch-size", dest="max_batch_size", type=int, default=d.max_batch_size,
                   help=f"windows per server execution (default: {d.max_batch_size})")
    p.add_argument("--preferred-batch-sizes", dest="preferred_batch_sizes", type=int, nargs="+",
                   default=list(d.preferred_batch_sizes), help=f"dynamic batching targets (default: "
                   f"{' '.join(map(str, d.preferred_batch_sizes))})")
    p.add_argument("--max-queue-delay-us", dest="max_queue_delay_us", type=int, default=d.max_queue_delay_us,
                   help=f"how long the server may hold a request to form a batch (default: {d.max_queue_delay_us})")
    p.add_argument("--instances", type=int, default=d.instances, help=f"model instances (default: {d.instances})")
    p.add_argument("--instance-kind", dest="instance_kind", default=d.instance_kind, choices=INSTANCE_KINDS,
                   help=f"where instances run (default: {d.instance_kind}; python platform: always KIND_CPU)")
    p.add_argument("--variant", default=d.variant, choices=["fp32", "int8"],
                   help="onnxruntime/python: the fp32 graphs (default) or the int8 ones (CPU servers)")
    p.add_argument("--model-prefix", dest="model_prefix", default=d.model_prefix,
                   help=f"model name prefix (default: {d.model_prefix}); clients pass it as --triton-model-prefix")
    p.add_argument("--threads", type=int, help="python platform: onnxruntime threads per instance (default: its own)")
    p.add_argument("--cache-dir", dest="cache_dir", help="ONNX export cache (default: $SOCIALMAE_RT_CACHE or "
                   "~/.cache/socialmae_rt)")
    p.set_defaults(handler=_export_triton)


def _serve_triton(args: argparse.Namespace) -> int:
    import signal
    import threading

    from socialmae_rt.engines.triton_server import LocalTritonServer

    server = LocalTritonServer(args.repository, address=args.address, http_port=args.http_port,
                               grpc_port=args.grpc_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"starting tritonserver on {args.repository} ...", flush=True)
    with server:
        print(f"serving: grpc {server.grpc_url}, http {server.http_url}; log {server.log_path}; Ctrl-C stops",
              flush=True)
        try:
            while not stop.wait(1.0):
                if server.process.poll() is not None:
                    print(f"tritonserver exited with {server.process.returncode}:\n{server.log_tail()}", flush=True)
                    return 1
        except KeyboardInterrupt:
            pass
    print("stopped", flush=True)
    return 0


def _add_serve_triton(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-triton", help="run the tritonserver of the nvidia-pytriton wheel on a repository (CPU test server)",
        description="Serve a repository written with `export-triton --platform python` with the real Triton "
        "Inference Server binary that the nvidia-pytriton wheel ships (Python backend, CPU). For tests and CPU "
        "machines; a GPU host runs NVIDIA's tritonserver container (README, 'Many robots, one GPU server').")
    p.add_argument("--repository", required=True, help="the model repository folder")
    p.add_argument("--address", default="127.0.0.1",
                   help="where to listen (default: 127.0.0.1; 0.0.0.0 to serve robots on the network)")
    p.add_argument("--grpc-port", dest="grpc_port", type=int, default=8001, help="gRPC port (default: 8001)")
    p.add_argument("--http-port", dest="http_port", type=int, default=8000, help="HTTP port (default: 8000)")
    p.set_defaults(handler=_serve_triton)


def _bench_triton(args: argparse.Namespace) -> int:
    import logging

    from socialmae_rt.engines.bench_triton import run_bench_triton

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_bench_triton(args.url, args.protocol, args.model_prefix, args.model, args.robots, args.faces, args.seconds,
                     args.hop, args.json, max_batch_size=args.max_batch_size, max_queue_delay_us=args.max_queue_delay_us)
    return 0


def _add_bench_triton(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-triton", help="N simulated robots against one Triton server: throughput, latency, server batches",
        description="Each simulated robot sends one window (one row per face) every --hop seconds to the server; "
        "prints windows answered per second, request latency p50/p95, missed hop slots and the batch sizes the "
        "server formed, per robots x faces; writes JSON and a PNG. Without --url it serves a random-weights model "
        "of --model size with the bundled tritonserver on this machine (CPU).")
    p.add_argument("--url", help="an existing server (HOST:PORT) holding a repository from export-triton; "
                   "default: start one here")
    p.add_argument("--protocol", default="grpc", choices=["grpc", "http"], help="default: grpc")
    p.add_argument("--model-prefix", dest="model_prefix", default="socialmae", help="default: socialmae")
    p.add_argument("--model", default="tiny", choices=["base", "small", "tiny"],
                   help="size served when no --url is given (default: tiny)")
    p.add_argument("--robots", type=int, nargs="+", default=[1, 2, 4], help="robot counts (default: 1 2 4)")
    p.add_argument("--faces", type=int, nargs="+", default=[1, 4], help="faces per window (default: 1 4)")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds per scenario (default: 15)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between a robot's windows (default: 0.5)")
    p.add_argument("--max-batch-size", dest="max_batch_size", type=int, default=16,
                   help="local server: max batch (default: 16)")
    p.add_argument("--max-queue-delay-us", dest="max_queue_delay_us", type=int, default=2000,
                   help="local server: dynamic batching delay (default: 2000)")
    p.add_argument("--json", default="outputs/bench_triton.json", help="JSON path; the PNG goes beside it")
    p.set_defaults(handler=_bench_triton)


def _build_engine(args: argparse.Namespace) -> int:
    from socialmae_rt.engines.tensorrt_backend import TensorRTConfig, build_engines

    config = TensorRTConfig(precision=args.precision, max_batch=args.max_batch, workspace_mb=args.workspace_mb,
                            cache_dir=args.cache_dir, force_rebuild=args.force_rebuild)
    for mode, summary in build_engines(args.export, config).items():
        print(f"{mode}: {summary}")
    return 0


def _add_build_engine(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engine", help="build (or find in the cache) TensorRT plans for an ONNX export")
    p.add_argument("--export", required=True, help="an export directory from `socialmae-rt export-onnx`")
    p.add_argument("--precision", default="fp16", choices=["fp16", "fp32"])
    p.add_argument("--max-batch", type=int, default=4, help="largest batch (faces per window) the plan accepts")
    p.add_argument("--workspace-mb", type=int, default=2048)
    p.add_argument("--cache-dir", help="plan cache (default: $SOCIALMAE_RT_CACHE/trt or ~/.cache/socialmae_rt/trt)")
    p.add_argument("--force-rebuild", action="store_true", help="rebuild even when a matching plan is cached")
    p.set_defaults(handler=_build_engine)


def _prepare_backend(args: argparse.Namespace) -> int:
    """Build now what a backend builds on its first start (export, IR, int8 calibration), and say what it made."""
    import logging

    from socialmae_rt.engines import create_backend
    from socialmae_rt.runner import RunOptions, model_config_for, status_to_stderr

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (args.calibration_clips or args.calibrate_live) and args.backend not in ("ov-int8", "auto"):
        flag = "--calibration-clips" if args.calibration_clips else "--calibrate-live"
        raise ValueError(f"{flag} calibrates int8 OpenVINO graphs: use it with --backend ov-int8 or auto, "
                         f"not {args.backend}")
    if args.calibration_clips and args.calibrate_live:
        raise ValueError("give either --calibration-clips (your clips) or --calibrate-live SECONDS (record them now), "
                         "not both")
    for clip in args.calibration_clips or ():
        if not Path(clip).exists():
            raise FileNotFoundError(f"--calibration-clips: {clip}: no such file or folder")
    weights = " ".join(args.weights) if args.weights else None
    options = RunOptions(weights=weights, model=args.model, backend=args.backend, threads=args.threads)
    extra: dict[str, Any] = {"calibration_clips": args.calibration_clips} if args.calibration_clips else {}
    name = args.backend
    if args.calibrate_live:
        clips = record_site(args.calibrate_live, args.source, args.mic, args.site_dir)
        extra = {"calibration_clips": [str(clips.calibrate)], "held_out_clips": [str(clips.gate)]}
        name = "ov-int8"  # what a site recording calibrates (auto picks it where int8 dot products exist)
    backend = create_backend(name, weights, model_config_for(options), on_status=status_to_stderr,
                             **({"threads": args.threads} if args.threads else {}), **extra)
    for member_name, member in _members(backend):
        print(f"{member_name}{backend_summary(member)}")
    backend.close()
    return 0


def record_site(seconds: float, source: str, mic: str, directory: str | None):
    """Record `seconds` of a camera and microphone (or a file) into the two site clips."""
    from socialmae_rt.runner import RunOptions, build_sources, close_all, open_sources, start_capture, status_to_stderr
    from socialmae_rt.site_calibration import SiteCalibrationConfig, SiteRecorder, record_sources

    config = SiteCalibrationConfig(seconds=seconds, directory=directory)
    opened = open_sources(build_sources(RunOptions(source=source, mic=mic)))
    try:
        for opened_source in opened:
            length = getattr(opened_source, "duration_s", None)
            if opened_source.clock == "media" and length is not None and length < seconds:
                raise ValueError(f"--calibrate-live {seconds:g}: {source} is only {length:.1f} s long")
        sources = start_capture(opened)
        status_to_stderr(f"site calibration: recording {seconds:g} s from {source}"
                         + ("" if len(sources) == 1 else f" and microphone {mic}"))
        return record_sources(sources, SiteRecorder(config, on_status=status_to_stderr))
    finally:
        close_all(opened)


def _members(backend) -> list:
    members = getattr(backend, "members", None)
    if members:
        return [(f"{m.task}: ", m.backend) for m in members]
    return [("", backend)]


def gate_figures(outputs: dict[str, dict[str, float]]) -> str:
    """What the int8 gate judged, per output: the lowest cosine, or for a binary output (one
    logit) the largest probability difference."""
    return ", ".join(f"{name} max prob diff {figures['max_prob_diff']:.4f}" if "max_prob_diff" in figures
                     else f"{name} cos >= {figures['min_cosine']:.5f}" for name, figures in outputs.items())


def backend_summary(backend) -> str:
    """One line per backend: what it is and what it was built into; the int8 gate's figures."""
    info = backend.info
    line = f"{info.name} ({info.precision}, {info.device}), weights {info.weights}"
    from socialmae_rt.engines.int8_gate import describe_report

    ir = getattr(backend, "ir", None)
    export = getattr(backend, "export", None)
    if ir is not None:
        line += f"\n  OpenVINO IR: {ir.directory}"
        gate = {"windows": ir.manifest.get("windows", {}), "clips": ir.manifest.get("int8_clips", {})}
        accuracy, kept = ir.manifest.get("int8_accuracy", {}), ir.manifest.get("float_kept")
    elif export is not None:
        line += f"\n  ONNX export: {export.directory}"
        int8 = export.manifest.get("int8_gate", {}) if info.precision == "int8" else {}
        gate, accuracy = {"clips": int8.get("clips", {})}, export.manifest.get("int8_accuracy", {}) if int8 else {}
        kept = int8["attempts"][-1]["float"] if int8 else None
    else:
        return line
    for mode, outputs in accuracy.items():
        line += f"\n  int8 {mode} vs fp32 on held-out clips: {gate_figures(outputs)}"
    if kept is not None:
        line += f"\n  left in float: {kept}"
    for text in describe_report(gate):
        line += f"\n  {text}"
    return line


def _cache(args: argparse.Namespace) -> int:
    """List what the engine cache holds, with sizes; `prune` removes what no backend will load."""
    from socialmae_rt.engines.cache_admin import format_size, prune, size_of, survey
    from socialmae_rt.engines.engine_cache import cache_root

    root = Path(args.cache_dir) if args.cache_dir else cache_root()
    try:
        import openvino

        version = openvino.__version__
    except ImportError:
        version = None
    entries = survey(root, args.unused_days, version)
    if not entries:
        print(f"{root}: empty")
        return 0
    for entry in entries:
        mark = f"  <- {'removed' if args.action == 'prune' else 'prune would remove'}: {entry.remove_why}" \
            if entry.remove_why else ""
        print(f"{format_size(entry.bytes):>10}  {entry.path.relative_to(root)}  {entry.what}{mark}")
    total = size_of(root)
    if args.action == "prune":
        freed = prune(entries)
        print(f"{root}: {format_size(total)} before, {format_size(freed)} freed, {format_size(size_of(root))} now")
    else:
        marked = sum(e.bytes for e in entries if e.remove_why)
        print(f"{root}: {format_size(total)} in all; `socialmae-rt cache prune` would free {format_size(marked)}")
    return 0


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list the engine cache (exports, OpenVINO IR, int8 graphs, plans) with sizes; "
                       "prune what no backend will load",
                       description="List what $SOCIALMAE_RT_CACHE (default ~/.cache/socialmae_rt) holds, with sizes. "
                       "`prune` removes leftovers of interrupted builds, refused int8 graphs and IRs, older int8 IRs "
                       "of an export, IRs of other OpenVINO versions and, with --unused-days, exports not used lately.")
    p.add_argument("action", nargs="?", default="list", choices=["list", "prune"], help="list (default) or prune")
    p.add_argument("--unused-days", type=float, help="also remove exports not used for this many days")
    p.add_argument("--cache-dir", help="the cache folder (default: $SOCIALMAE_RT_CACHE or ~/.cache/socialmae_rt)")
    p.set_defaults(handler=_cache)


def _add_prepare_backend(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-backend", help="build what a backend needs before the first run (export, OpenVINO IR, int8 calibration)",
        description="Build now, with progress, what a backend would otherwise build on its first start: the ONNX "
        "export, the OpenVINO IR, the int8 graphs (calibrated on the bundled sample clip or on your own clips, "
        "checked against fp32 on the held-out suite: other faces, voices, sounds and light), TensorRT plans. Later runs with the same weights load them in "
        "seconds. Prints where they are and, for int8, how close they stay to fp32.")
    p.add_argument("--backend", default="auto", help="auto (default), ov-int8, ov, ort-int8, ort, trt, ...")
    p.add_argument("--weights", nargs="+", metavar="W", help="as for run (default: random weights)")
    p.add_argument("--model", default="base", choices=["base", "small", "tiny"], help="size when the weights do not say")
    p.add_argument("--calibration-clips", nargs="+", metavar="CLIP",
                   help="ov-int8: calibrate on these clips or folders of clips (a face and speech, >= 4 s each) "
                   "instead of the sample clip; the gate still scores the held-out suite")
    p.add_argument("--calibrate-live", type=float, metavar="SECONDS",
                   help="ov-int8: record this many seconds of the robot's own camera and microphone (or of "
                   "--source FILE), calibrate on the first 60 %% and gate on the last 40 %% as well as on the held-out "
                   "suite; the result is cached and later runs with these weights use it (60 or more recommended; "
                   "ROS topics: the node's calibrate_live_s parameter)")
    p.add_argument("--source", default="0", help="--calibrate-live: camera index, /dev/videoN, URL or a media file "
                   "(default: 0)")
    p.add_argument("--mic", default="default", help="--calibrate-live with a camera: microphone index or name "
                   "(default: the system default)")
    p.add_argument("--site-dir", help="--calibrate-live: where the two recorded clips go (default: "
                   "$SOCIALMAE_RT_CACHE/site/<date-time>)")
    p.add_argument("--threads", type=int, help="compute threads (default: every core this process may use)")
    p.set_defaults(handler=_prepare_backend)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info, _add_run, _add_demo, _add_bench_pipeline, _add_bench_node, _add_bench, _add_soak, _add_export_onnx,
    _add_export_triton, _add_serve_triton, _add_bench_triton,
    _add_build_engine, _add_prepare_backend, _add_cache,
]


def _training_subcommands() -> tuple:
    from socialmae_rt.training.cli import SUBCOMMANDS as TRAINING

    return TRAINING


def _add_weights(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.weights.cli import add_weights

    add_weights(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socialmae-rt",
        description="Real-time Social-MAE perception: emotion, laughter and personality from camera + microphone.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (*SUBCOMMANDS, _add_weights, *_training_subcommands()):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    yield_idle_threads()  # before any subcommand imports torch
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:  # SIGINT/SIGTERM before the pipeline ran (e.g. while the model loaded)
        print(f"socialmae-rt {args.command}: interrupted before it started; nothing was written", file=sys.stderr)
        return 130
    except (FileNotFoundError, FileExistsError, ValueError, TypeError, ImportError) as err:
        return _one_line(args.command, err)  # bad input, missing library (with its install hint)
    except RuntimeError as err:
        if type(err).__module__.startswith("socialmae_rt"):  # ours: SourceError, ExportError, ...
            return _one_line(args.command, err)
        raise  # anything else is a bug and keeps its traceback


def _one_line(command: str, err: Exception) -> int:
    """Expected failures: one clear line naming what went wrong, no traceback, exit code 2."""
    print(f"socialmae-rt {command}: error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

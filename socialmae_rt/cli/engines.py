"""`socialmae-rt export-onnx | export-triton | serve-triton | build-engine | prepare-backend | cache`:
what a backend is built from and where it is kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from socialmae_rt.app.options import MODEL_NAMES


def _export_onnx(args: argparse.Namespace) -> int:
    from socialmae_rt.app.options import RunOptions, model_config_for
    from socialmae_rt.engines.int8_gate import describe_report
    from socialmae_rt.engines.onnx_export import export_onnx
    from socialmae_rt.engines.ort_int8 import OrtInt8Refused, quantize_export
    from socialmae_rt.engines.torch_backend import load_model

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
    p.add_argument("--model", default="base", choices=MODEL_NAMES, help="size for a .pth or random weights")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--int8", action="store_true", help="also write int8 graphs and report their accuracy vs torch fp32")
    p.set_defaults(handler=_export_onnx)


def _export_triton(args: argparse.Namespace) -> int:
    from socialmae_rt.app.options import RunOptions, model_config_for
    from socialmae_rt.engines.triton_repository import TritonRepositoryConfig, export_triton

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
    p.add_argument("--model", default="base", choices=MODEL_NAMES, help="size for a .pth or random weights")
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
    from socialmae_rt.app.assemble import status_to_stderr
    from socialmae_rt.app.options import RunOptions, model_config_for
    from socialmae_rt.engines import create_backend

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
    from socialmae_rt.app.assemble import build_sources, close_all, open_sources, start_capture, status_to_stderr
    from socialmae_rt.app.options import RunOptions
    from socialmae_rt.app.site_calibration import SiteCalibrationConfig, SiteRecorder, record_sources

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
    p.add_argument("--model", default="base", choices=MODEL_NAMES, help="size when the weights do not say")
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


SUBCOMMANDS = [_add_export_onnx, _add_export_triton, _add_serve_triton, _add_build_engine, _add_prepare_backend,
               _add_cache]

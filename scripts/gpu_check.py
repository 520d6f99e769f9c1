"""One command for a machine with an NVIDIA GPU: build the TensorRT plans, check them against torch
fp32, time them, print a table.

    .venv/bin/python scripts/gpu_check.py [--model base] [--precision fp16] [--batches 1 8 32] [--repeats 20]

Steps: export the model (random weights of the given size, or --weights), build (or load cached)
TensorRT plans for every modality with a batch profile up to the largest batch, compare every
output with torch fp32 on the same inputs (cosine and max abs difference; fp16 tolerance:
cosine >= 0.999), then time the audiovisual engine at each batch (median of --repeats, after
warm-up) beside torch fp32 on the same GPU. Exits 2 with the reason where TensorRT or a GPU is
missing; 1 when a check fails. Paste the table into the README with the GPU named.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from socialmae_rt.model.config import MODEL_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", choices=MODEL_NAMES)
    parser.add_argument("--weights", help="a checkpoint instead of random weights")
    parser.add_argument("--precision", default="fp16", choices=["fp16", "fp32"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cache-dir", help="export and plan cache (default: $SOCIALMAE_RT_CACHE or ~/.cache/socialmae_rt)")
    args = parser.parse_args(argv)

    from socialmae_rt.engines.tensorrt_backend import tensorrt_unavailable_reason

    why = tensorrt_unavailable_reason()
    if why is not None:
        print(f"gpu_check: cannot run here: {why}", file=sys.stderr)
        return 2

    import tensorrt
    import torch

    from socialmae_rt.bench.backends import bench_config
    from socialmae_rt.engines.engine_cache import cache_root
    from socialmae_rt.engines.exports import export_and_model
    from socialmae_rt.engines.onnx_export import compare_outputs, example_inputs
    from socialmae_rt.engines.references import fp32_reference
    from socialmae_rt.engines.tensorrt_backend import TensorRTBackend, TensorRTConfig
    from socialmae_rt.model import Modality

    config = None if args.weights else bench_config(args.model)
    export, model = export_and_model(args.weights, config, cache_dir=args.cache_dir)
    if model is None:  # a cached export: the reference needs the torch model itself
        from socialmae_rt.engines.torch_backend import load_model

        model, _ = load_model(args.weights, config, 0)
    largest = max(args.batches)
    plans = str(Path(args.cache_dir or cache_root()) / "trt")
    started = time.perf_counter()
    backend = TensorRTBackend(export, TensorRTConfig(precision=args.precision, max_batch=largest, opt_batch=1,
                                                     cache_dir=plans), on_status=print)
    gpu = torch.cuda.get_device_name(0)
    print(f"TensorRT {tensorrt.__version__} on {gpu}: plans ready in {time.perf_counter() - started:.1f} s")

    reference = fp32_reference(export, model)
    inputs = example_inputs(model.config, batch=2, seed=5)
    failed = False
    print("\nparity with torch fp32 (batch 2): lowest cosine / max |d| per output")
    for modality, names in (("audiovisual", ("audio", "video")), ("audio", ("audio",)), ("video", ("video",))):
        feeds = {n: inputs[n] for n in names}
        expected = reference(Modality(modality), feeds)
        out = backend.infer(feeds.get("audio"), feeds.get("video"))
        got = {"embedding": out.embedding, **out.heads}
        stats = compare_outputs(expected, got)
        worst = min(s["min_cosine"] for s in stats.values())
        failed |= not worst >= 0.999
        print(f"  {modality:<12} " + ", ".join(f"{k} {v['min_cosine']:.5f}/{v['max_abs']:.2g}" for k, v in stats.items()))

    model = model.cuda().eval()
    print(f"\naudiovisual window, {args.repeats} timed runs each (median ms per batch / per window)")
    print(f"{'batch':>5} {'tensorrt ' + args.precision:>22} {'torch fp32 cuda':>22} {'speed-up':>8}")
    for batch in args.batches:
        feeds = example_inputs(model.config, batch=batch, seed=6)
        times = {"trt": [], "torch": []}
        audio_gpu = torch.from_numpy(feeds["audio"]).cuda()
        video_gpu = torch.from_numpy(feeds["video"]).cuda()
        for _ in range(3):
            backend.infer(feeds["audio"], feeds["video"])
            with torch.no_grad():
                model.predict(audio_gpu, video_gpu)
        torch.cuda.synchronize()
        for _ in range(args.repeats):
            t = time.perf_counter()
            backend.infer(feeds["audio"], feeds["video"])
            times["trt"].append(time.perf_counter() - t)
            t = time.perf_counter()
            with torch.no_grad():
                model.predict(audio_gpu, video_gpu)
            torch.cuda.synchronize()
            times["torch"].append(time.perf_counter() - t)
        trt_ms, torch_ms = (float(np.median(times[k])) * 1e3 for k in ("trt", "torch"))
        print(f"{batch:>5} {trt_ms:>11.2f} / {trt_ms / batch:>7.2f} {torch_ms:>11.2f} / {torch_ms / batch:>7.2f} "
              f"{torch_ms / trt_ms:>7.2f}x")
    print(f"\n{gpu}, TensorRT {tensorrt.__version__}, torch {torch.__version__}, model {args.model}"
          f"{'' if not args.weights else ' ' + args.weights}")
    backend.close()
    if failed:
        print("gpu_check: FAILED: an output fell below cosine 0.999 against torch fp32", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

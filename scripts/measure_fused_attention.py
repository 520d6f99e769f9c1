"""Does ONNX Runtime's fused attention op pay on this CPU? ViT-B audiovisual graph exported plain
and with com.microsoft::MultiHeadAttention (engines/fused_attention.py), run interleaved by ONNX
Runtime on 2 threads (spinning off, as the backend runs): output agreement and median s/window.

    .venv/bin/python scripts/measure_fused_attention.py [REPEATS]   (graphs go to /tmp/fa)
"""
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from socialmae_rt.engines.fused_attention import with_fused_attention
from socialmae_rt.engines.onnx_export import _ModeGraph, example_inputs
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig

cfg = SocialMAEConfig(extra_heads={"laughter": 1, "personality": 5})
torch.manual_seed(0)
model = SocialMAE(cfg).eval()
inputs = example_inputs(cfg, batch=1, seed=2)
feeds = (torch.from_numpy(inputs["audio"]), torch.from_numpy(inputs["video"]))
OUT = Path("/tmp/fa")
OUT.mkdir(exist_ok=True)
paths = {}
for name, m in (("plain", model), ("fused", with_fused_attention(model))):
    path = str(OUT / f"{name}.onnx")
    with torch.no_grad():
        torch.onnx.export(_ModeGraph(m, Modality.AUDIOVISUAL), feeds, path, dynamo=False, opset_version=17,
                          input_names=["audio", "video"], output_names=["embedding", "emotion", "laughter", "personality"],
                          custom_opsets={"com.microsoft": 1}, dynamic_axes={"audio": {0: "batch"}, "video": {0: "batch"}})
    paths[name] = path
    print("exported", name, flush=True)
sessions = {}
for name, path in paths.items():
    so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions[name] = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
outs = {n: s.run(None, inputs) for n, s in sessions.items()}
for i, o in enumerate(["embedding", "emotion", "laughter", "personality"]):
    a, b = outs["plain"][i].ravel(), outs["fused"][i].ravel()
    print(o, "cos", float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), "maxabs", float(np.abs(a - b).max()))
times = {n: [] for n in sessions}
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 7):
    for n, s in sessions.items():
        t = time.perf_counter(); s.run(None, inputs); times[n].append(time.perf_counter() - t)
for n, t in times.items():
    print(f"{n}: median {np.median(t):.3f} s/window  min {min(t):.3f}  runs {len(t)}")

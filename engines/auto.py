"""`--backend auto`: the fastest backend this CPU and this install allow, by a fixed rule.

The rule follows measured rankings (docs/backends.md, "Backend speed"; 2 cores, ViT-B, batch 1). On an AMX Xeon
OpenVINO int8 ran a window 3.2x faster than torch fp32, OpenVINO bf16 2.4x, ONNX Runtime int8
2.1x, torch bf16 1.7x. On a Zen 3 EPYC (AVX2 only: no int8 dot products, no bf16) ONNX Runtime
int8 ran 2.1x, ONNX Runtime fp32 1.4x, OpenVINO fp32 1.3x, and OpenVINO int8 failed its gate.
In order:

1. `trt`      TensorRT is installed and a CUDA GPU is present
2. `ov-int8`  OpenVINO and NNCF are installed and the CPU has int8 dot products (VNNI or AMX)
3. `ort-int8` ONNX Runtime is installed and the CPU has neither int8 dot products nor bf16
              (AVX2 only: OpenVINO runs fp32 there, ONNX Runtime int8 with 7-bit weights)
4. `ov`       OpenVINO is installed (bf16 where the CPU has it, else fp32)
5. `ort-int8` (where not already tried) ONNX Runtime is installed
6. `torch-bf16`  the CPU has native bf16 (AVX-512 BF16 or AMX)
7. `ort`      ONNX Runtime is installed
8. `torch`

A candidate whose int8 graphs fail their accuracy gate is skipped for the next one.
The same CPU description and install always give the same order (`candidates`), and a refused
int8 build is remembered beside the IR, so a later start skips it at once.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Callable

from socialmae_rt.util.machine import CpuDescription

log = logging.getLogger(__name__)

# The options each backend takes; `auto` hands each candidate only its own.
_COMMON = {"threads", "seed", "on_status"}
BACKEND_OPTIONS = {
    "trt": _COMMON | {"cache_dir"},
    "ov-int8": _COMMON | {"cache_dir", "precision", "calibration_clips", "held_out_clips", "min_cosine",
                          "max_prob_diff"},
    "ov": _COMMON | {"cache_dir", "precision"},
    "ort-int8": _COMMON | {"cache_dir", "min_cosine", "max_prob_diff"},
    "torch-bf16": _COMMON,
    "ort": _COMMON | {"cache_dir"},
    "torch": _COMMON,
}


@dataclass(frozen=True)
class Installed:
    """Which optional runtimes can be used here."""

    openvino: bool
    nncf: bool
    onnxruntime: bool
    tensorrt_gpu: bool

    @classmethod
    def here(cls) -> "Installed":
        def present(module: str) -> bool:
            return importlib.util.find_spec(module) is not None

        return cls(openvino=present("openvino"), nncf=present("nncf"), onnxruntime=present("onnxruntime"),
                   tensorrt_gpu=present("tensorrt") and _cuda_available())


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def candidates(cpu: CpuDescription, installed: Installed) -> list[tuple[str, str]]:
    """(backend, why), best first; always ends with torch."""
    found: list[tuple[str, str]] = []
    if installed.tensorrt_gpu:
        found.append(("trt", "TensorRT and a CUDA GPU"))
    if installed.openvino and installed.nncf and (cpu.has_vnni or cpu.has_amx):
        found.append(("ov-int8", f"OpenVINO + NNCF, int8 dot products ({'AMX' if cpu.has_amx else 'VNNI'})"))
    plain_avx2 = not cpu.has_int8_dot and not cpu.has_bf16
    if installed.onnxruntime and plain_avx2:
        found.append(("ort-int8", "ONNX Runtime int8 (7-bit weights); no int8 dot products or bf16 for OpenVINO"))
    if installed.openvino:
        found.append(("ov", "OpenVINO, " + ("bf16 (native on this CPU)" if cpu.has_bf16 else "fp32")))
    if installed.onnxruntime and not plain_avx2:
        found.append(("ort-int8", "ONNX Runtime int8"))
    if cpu.has_bf16:
        found.append(("torch-bf16", "native bf16 on this CPU"))
    if installed.onnxruntime:
        found.append(("ort", "ONNX Runtime fp32"))
    found.append(("torch", "PyTorch fp32"))
    return found


def choose_backend(cpu: CpuDescription, installed: Installed) -> tuple[str, str]:
    """The first candidate: what `auto` tries first here."""
    return candidates(cpu, installed)[0]


def create_auto_backend(create: Callable[..., Any], weights, config, *, cpu: CpuDescription | None = None,
                        installed: Installed | None = None, **options: Any):
    """The first candidate that can be built; an int8 refusal moves on to the next one."""
    from socialmae_rt.backend import Int8Refused

    cpu = cpu or CpuDescription.this_machine()
    installed = installed or Installed.here()
    order = candidates(cpu, installed)
    say = options.get("on_status") or (lambda message: log.info("%s", message))
    for index, (name, why) in enumerate(order):
        say(f"auto: {name} ({why}; {cpu.summary()})")
        try:
            return create(name, weights, config, **{k: v for k, v in options.items() if k in BACKEND_OPTIONS[name]})
        except Int8Refused as refused:
            log.warning("auto: %s refused (%s); trying %s", name, refused, order[index + 1][0])
    raise AssertionError("unreachable: torch is always a candidate")

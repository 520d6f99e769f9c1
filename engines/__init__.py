"""Inference backends behind one protocol (`Backend.infer(audio, video) -> BackendOutput`).

Imported as `socialmae_rt.engines`. `create_backend(name, weights, config)` picks one by name and
imports its library only then (torch, onnxruntime, openvino, tensorrt, tritonclient).
"""

from socialmae_rt.backend import Backend, BackendInfo, BackendOutput
from socialmae_rt.engines.factory import available_backends, create_backend

__all__ = ["Backend", "BackendInfo", "BackendOutput", "available_backends", "create_backend"]

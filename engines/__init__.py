"""Inference backends (torch, ONNX Runtime, TensorRT) behind one protocol; ONNX export and engine builds.

Imported as `socialmae_rt.engines`. Backends arrive with the engines issue.
"""

"""A task bundle behind the one backend protocol: one encoder per checkpoint, one record for all.

The released checkpoints were fine-tuned separately, so each is its own encoder. The pipeline
preprocesses a window once and hands the same arrays to `BundleBackend.infer`, which runs every
member (all faces of the window batched, in each member's own backend: torch, ort, ort-int8 or
trt, each with its own export cache) and keeps from each the head of the task it serves.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from socialmae_rt.backend import Backend, BackendInfo, BackendOutput
from socialmae_rt.model import SocialMAEConfig
from socialmae_rt.stream.postprocess import Postprocessor
from socialmae_rt.weights.bundle import WeightsSpec

log = logging.getLogger(__name__)

EXPORT_MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle whose checkpoints cannot serve their tasks together; nothing stays loaded."""


@dataclasses.dataclass
class BundleMember:
    task: str
    weights: str
    backend: Backend


def check_member_file(task: str, path: str) -> None:
    """A bundle entry must be one of our checkpoints (its task and labels recorded) or an export of one."""
    where = Path(path)
    if where.suffix in (".pth", ".pt"):
        raise BundleError(f"{task}={path}: a released .pth says nothing about its head; import it once with "
                          f"`socialmae-rt weights import {path} --task {task}` and give the .safetensors it writes")
    if where.is_dir() and not (where / EXPORT_MANIFEST).is_file():
        raise BundleError(f"{task}={path}: a directory without {EXPORT_MANIFEST} (not an ONNX export); "
                          "give a .safetensors checkpoint, an export directory, or a bundle directory alone")
    if not where.exists():
        raise FileNotFoundError(f"{task}={path}: no such checkpoint")
    if where.is_file() and where.suffix != ".safetensors":
        raise BundleError(f"{task}={path}: expected one of our .safetensors checkpoints or an ONNX export directory")


def member_config(path: str) -> SocialMAEConfig:
    """The model config a bundle entry carries, read without loading any weights: the checkpoint's
    JSON sidecar, or the export's manifest."""
    if Path(path).is_dir():
        from socialmae_rt.engines.onnx_export import load_export

        return load_export(path).model_config
    from socialmae_rt.model.checkpoint import read_checkpoint_config

    return read_checkpoint_config(path)[0]


def check_member_head(task: str, weights: str, config: SocialMAEConfig) -> None:
    """The entry's checkpoint must have a head for its task that means what the task reads."""
    sizes = config.head_sizes
    if task not in sizes:
        heads = ", ".join(f"{name} ({size} outputs)" for name, size in sizes.items())
        raise BundleError(f"{task}={weights}: the checkpoint has no {task!r} head "
                          f"(its heads: {heads}); expected {_expected(task)}")
    labels = {task: config.head_labels[task]} if task in config.head_labels else {}
    try:
        Postprocessor().check_heads({task: sizes[task]}, labels)
    except ValueError as err:
        raise BundleError(f"{task}={weights}: {err}; expected {_expected(task)}") from err


def _expected(task: str) -> str:
    return {"emotion": "an emotion head of 6 outputs (anger, disgust, fear, happy, neutral, sad)",
            "personality": "a personality head of 5 outputs (O, C, E, A, N)",
            "laughter": "a laughter head (1 sigmoid output, or classes with one named 'laughter')"}[task]


class BundleBackend:
    """Several checkpoints, one per task, answering as one backend with one head per task."""

    def __init__(self, members: list[BundleMember]) -> None:
        if not members:
            raise BundleError("a bundle needs at least one task=checkpoint entry")
        self.members = members
        first, *others = members
        preprocess = first.backend.preprocess.to_dict()
        for member in members:
            check_member_head(member.task, member.weights, member.backend.model_config)
            differences = _differences(preprocess, member.backend.preprocess.to_dict())
            if differences:
                raise BundleError(
                    f"{member.task}={member.weights} was trained with other preprocessing than "
                    f"{first.task}={first.weights} ({differences}); "
                    "one window is preprocessed once for every checkpoint, so they must agree"
                )
        self.preprocess = first.backend.preprocess
        sizes = {m.task: m.backend.model_config.head_sizes[m.task] for m in members}
        labels = {m.task: m.backend.model_config.head_labels[m.task] for m in members
                  if m.task in m.backend.model_config.head_labels}
        # The encoder geometry of the first member; the heads of every member, under their tasks.
        self.model_config = dataclasses.replace(
            first.backend.model_config, primary_head=first.task, num_classes=sizes[first.task],
            extra_heads={m.task: sizes[m.task] for m in others}, head_labels=labels)
        info = first.backend.info
        self.tasks = {m.task: m.weights for m in members}
        self.info = BackendInfo(name=info.name, precision=info.precision, device=info.device,
                                weights=" ".join(f"{task}={path}" for task, path in self.tasks.items()))
        self.last_inference_ms: dict[str, float] = {}

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        heads, embedding, timings = {}, None, {}
        for member in self.members:
            start = time.perf_counter()
            out = member.backend.infer(audio, video)
            timings[member.task] = (time.perf_counter() - start) * 1e3
            heads[member.task] = out.heads[member.task]
            if embedding is None:  # the pooled embedding of the first task's encoder
                embedding = out.embedding
        self.last_inference_ms = timings
        return BackendOutput(embedding=embedding, heads=heads)

    def close(self) -> None:
        for member in self.members:
            member.backend.close()


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> str:
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            inner = _differences(x, y, f"{prefix}{key}.")
            if inner:
                found.append(inner)
        elif x != y:
            found.append(f"{prefix}{key} {x!r} vs {y!r}")
    return "; ".join(found)


def check_bundle_entries(spec: WeightsSpec) -> None:
    """Every entry's file and head, read from the files before anything loads or builds (an int8
    build per checkpoint takes minutes: a wrong file must not wait for it)."""
    for entry in spec.entries:
        check_member_file(entry.task, entry.path)
        check_member_head(entry.task, entry.path, member_config(entry.path))


def create_bundle_backend(spec: WeightsSpec, make: Callable[[str], Backend]) -> BundleBackend:
    """Every member through `make(path)` (a backend of the chosen kind); if one fails, the ones
    already loaded are closed and the error names the entry."""
    check_bundle_entries(spec)
    members: list[BundleMember] = []
    try:
        for entry in spec.entries:
            log.info("loading %s checkpoint %s", entry.task, entry.path)
            members.append(BundleMember(entry.task, entry.path, make(entry.path)))
        return BundleBackend(members)
    except BaseException:
        for member in members:
            member.backend.close()
        raise

"""On-disk cache of TensorRT plans: cache keys, sidecars, atomic writes, load-or-build.

Pure Python (no TensorRT import): everything here runs and is tested on machines without a GPU.

A plan is only valid for the exact ONNX graph, TensorRT version, GPU architecture, precision
and batch profile it was built with, so all five go into its key:

    <cache_dir>/<key>.plan   the serialized engine
    <cache_dir>/<key>.json   the sidecar: every key part, plus how and from what it was built

A plan counts as cached only when its sidecar exists, parses and repeats every key part. The
sidecar is written after the plan, each through a temporary file and os.replace, so a crash
mid-write leaves either nothing or a plan without a sidecar, and both mean "rebuild".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "socialmae_rt.trt_plan/1"
PRECISIONS = ("fp16", "fp32")
CACHE_ENV = "SOCIALMAE_RT_CACHE"

Engine = TypeVar("Engine")


class EngineCacheError(RuntimeError):
    """A plan that cannot be built, written, or loaded even after one rebuild."""


@dataclass(frozen=True)
class BatchProfile:
    """The optimisation profile on the batch dimension: TensorRT tunes for `opt`, accepts min..max."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(
                f"batch profile needs 1 <= min <= opt <= max, got min={self.min}, opt={self.opt}, max={self.max}"
            )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class CacheKeyParts:
    """Everything a plan depends on; any change means a different plan."""

    onnx_sha256: str
    trt_version: str
    compute_capability: str  # "8.9": plans are specific to a GPU architecture
    precision: str  # "fp16" or "fp32" as requested; the effective flags follow from the GPU
    profile: BatchProfile
    # Two cards of one compute capability may still differ (SM count, memory): TensorRT warns and
    # may fail on another model's plan. The workspace limit changes which tactics the build picks.
    gpu_name: str = ""
    workspace_mb: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "onnx_sha256": self.onnx_sha256,
            "trt_version": self.trt_version,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "profile": self.profile.as_dict(),
            "gpu_name": self.gpu_name,
            "workspace_mb": self.workspace_mb,
        }

    @property
    def key(self) -> str:
        return cache_key(self.onnx_sha256, self.trt_version, self.compute_capability, self.precision, self.profile,
                         self.gpu_name, self.workspace_mb)


def cache_key(
    onnx_sha256: str, trt_version: str, compute_capability: str, precision: str, profile: BatchProfile,
    gpu_name: str = "", workspace_mb: int = 0,
) -> str:
    """sha256 hex digest of the canonical JSON (sorted keys, no spaces) of every key part."""
    parts = {
        "onnx_sha256": onnx_sha256,
        "trt_version": trt_version,
        "compute_capability": compute_capability,
        "precision": precision,
        "profile": profile.as_dict(),
        "gpu_name": gpu_name,
        "workspace_mb": workspace_mb,
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_root() -> Path:
    """Where exports and engines are cached: $SOCIALMAE_RT_CACHE when set, else ~/.cache/socialmae_rt."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "socialmae_rt"


def default_cache_dir() -> Path:
    """TensorRT plans: $SOCIALMAE_RT_CACHE/trt when set, else ~/.cache/socialmae_rt/trt."""
    return cache_root() / "trt"


def plan_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.plan"


def sidecar_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.json"


def sidecar_for(key_parts: CacheKeyParts, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar document: format, key, every key part, then build details (`extra`).

    `extra` cannot override the key parts: a sidecar must always describe the plan it sits beside.
    """
    document: dict[str, Any] = dict(extra or {})
    document.update({"format": SIDECAR_FORMAT, "key": key_parts.key, "key_parts": key_parts.as_dict()})
    return document


def _read_sidecar(path: Path) -> dict[str, Any] | str:
    """The parsed sidecar, or why it cannot be used."""
    if not path.is_file():
        return f"sidecar {path} is missing (an interrupted write?)"
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        return f"sidecar {path} cannot be read: {err}"
    except json.JSONDecodeError as err:
        return f"sidecar {path} is not valid JSON ({err})"
    if not isinstance(document, dict) or not isinstance(document.get("key_parts"), dict):
        return f"sidecar {path} has no key_parts"
    return document


def sidecar_mismatch(document: Mapping[str, Any], key_parts: CacheKeyParts) -> str | None:
    """The first key part where the sidecar disagrees with what we need, or None when all match."""
    if document.get("format") != SIDECAR_FORMAT:
        return f"format {document.get('format')!r} != {SIDECAR_FORMAT!r}"
    recorded = document["key_parts"]
    for name, wanted in key_parts.as_dict().items():
        if recorded.get(name) != wanted:
            return f"{name} {recorded.get(name)!r} != {wanted!r}"
    return None


def find_plan(cache_dir: str | Path, key_parts: CacheKeyParts) -> Path | None:
    """The cached plan for these key parts, or None (reason logged) when it must be (re)built."""
    key = key_parts.key
    plan = plan_path(cache_dir, key)
    if not plan.is_file():
        log.info("no cached TensorRT plan %s", plan)
        return None
    if plan.stat().st_size == 0:
        log.warning("cached TensorRT plan %s is empty (an interrupted write?); rebuilding", plan)
        return None
    document = _read_sidecar(sidecar_path(cache_dir, key))
    if isinstance(document, str):
        log.warning("ignoring cached TensorRT plan %s: %s; rebuilding", plan, document)
        return None
    mismatch = sidecar_mismatch(document, key_parts)
    if mismatch is not None:
        log.warning("ignoring cached TensorRT plan %s: its sidecar does not match (%s); rebuilding", plan, mismatch)
        return None
    return plan


def _write_atomically(target: Path, data) -> None:
    """Write through a temporary file in the same directory, then os.replace (atomic on POSIX).

    The temporary file is removed when anything fails, so no partial file is ever left under
    `target`'s name or beside it.
    """
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    replaced = False
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600: a shared cache must be readable by its group
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, target)
        replaced = True
    finally:  # whatever interrupted us (even KeyboardInterrupt) propagates; the partial file does not stay
        if not replaced:
            Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_plan(
    cache_dir: str | Path, key_parts: CacheKeyParts, plan_bytes, extra: Mapping[str, Any] | None = None
) -> Path:
    """Store a plan (bytes or any buffer, e.g. TensorRT's IHostMemory) and its sidecar; return the plan path.

    Plan first, sidecar last: the sidecar is what makes a plan count, so a first write only counts
    once the plan beside it is complete. A rewrite (same key, so same inputs) replaces the plan
    atomically; if it fails, the previous plan and sidecar stay as they were, still valid.
    """
    if memoryview(plan_bytes).nbytes == 0:
        raise EngineCacheError("refusing to cache an empty TensorRT plan")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = key_parts.key
    plan = plan_path(cache_dir, key)
    sidecar = sidecar_path(cache_dir, key)
    _write_atomically(plan, plan_bytes)
    document = sidecar_for(key_parts, extra)
    _write_atomically(sidecar, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    log.info("cached TensorRT plan %s (%.1f MB)", plan, plan.stat().st_size / 1e6)
    return plan


def remove_plan(cache_dir: str | Path, key_parts: CacheKeyParts, reason: str) -> None:
    """Delete a plan and its sidecar, saying why."""
    key = key_parts.key
    log.warning("deleting cached TensorRT plan %s: %s", plan_path(cache_dir, key), reason)
    plan_path(cache_dir, key).unlink(missing_ok=True)
    sidecar_path(cache_dir, key).unlink(missing_ok=True)


@dataclass(frozen=True)
class BuildDecision:
    build: bool
    reason: str


def should_build(cached_plan: Path | None, force_rebuild: bool) -> BuildDecision:
    """Build when asked to, or when no valid cached plan exists; otherwise load the cached one."""
    if force_rebuild:
        return BuildDecision(True, "force_rebuild is set")
    if cached_plan is None:
        return BuildDecision(True, "no valid cached plan")
    return BuildDecision(False, f"cached plan {cached_plan}")


@dataclass(frozen=True)
class PlanReport:
    """What obtaining one engine did: for logs and `build_engines` summaries."""

    key: str
    plan: Path
    built: bool
    seconds: float
    reason: str

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "plan": str(self.plan), "action": "built" if self.built else "loaded",
                "seconds": round(self.seconds, 3), "reason": self.reason}


@dataclass
class LoadedEngine(Generic[Engine]):
    engine: Engine
    report: PlanReport


def load_or_build(
    cache_dir: str | Path,
    key_parts: CacheKeyParts,
    *,
    force_rebuild: bool,
    build: Callable[[], tuple[Any, Mapping[str, Any]]],
    deserialize: Callable[[Any], Engine | None],
    on_build: Callable[[str], None] | None = None,
) -> LoadedEngine[Engine]:
    """Load the cached plan, or build, cache and load a new one.

    `build()` returns (plan bytes, sidecar extras); `deserialize(plan)` returns an engine, or None
    when the plan cannot be loaded (built for another GPU or TensorRT, truncated ...). A cached
    plan that fails is deleted and rebuilt once; a freshly built plan that fails raises.
    `on_build(reason)` is called before each build: building can take minutes.
    """
    started = time.perf_counter()
    plan = find_plan(cache_dir, key_parts)
    decision = should_build(plan, force_rebuild)
    if not decision.build:
        engine = deserialize(plan.read_bytes())
        if engine is not None:
            report = PlanReport(key_parts.key, plan, False, time.perf_counter() - started, decision.reason)
            return LoadedEngine(engine, report)
        remove_plan(cache_dir, key_parts, "TensorRT could not deserialize it (built for another GPU or "
                                          "TensorRT version, or truncated)")
        decision = BuildDecision(True, "the cached plan failed to deserialize")
    if on_build is not None:
        on_build(decision.reason)
    plan_bytes, extra = build()
    plan = write_plan(cache_dir, key_parts, plan_bytes, extra)
    engine = deserialize(plan_bytes)
    if engine is None:
        remove_plan(cache_dir, key_parts, "a freshly built plan failed to deserialize")
        raise EngineCacheError(
            f"TensorRT built a plan for key {key_parts.key} but cannot load it (see the TensorRT errors logged "
            "above); check that the driver, CUDA and TensorRT versions match, or set precision='fp32'"
        )
    return LoadedEngine(engine, PlanReport(key_parts.key, plan, True, time.perf_counter() - started, decision.reason))

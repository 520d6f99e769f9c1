"""The ONNX export a backend is built from: a directory as given, or the cached export of a
checkpoint (found by the checkpoint file's hash, so a start with everything built never loads the
torch model), made once per set of weights; int8 graphs quantized and gated when asked for."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from socialmae_rt.backend import RANDOM_WEIGHTS, StatusCallback
from socialmae_rt.engines.engine_cache import cache_root
from socialmae_rt.model.config import SocialMAEConfig

log = logging.getLogger(__name__)


def prepare_export(weights: str | Path | None, config: SocialMAEConfig | None, *, int8: bool = False,
                   cache_dir: str | Path | None = None, seed: int = 0, on_status: StatusCallback | None = None):
    """An ONNX export for these weights: an export directory as given, or a cached export of the
    checkpoint (or of the seeded random model), written once and reused while the weights match."""
    return export_and_model(weights, config, int8=int8, cache_dir=cache_dir, seed=seed, on_status=on_status)[0]


def source_key(weights, config: SocialMAEConfig | None, seed: int) -> str:
    """sha256 naming what a model is built from, without building it: the checkpoint file's bytes
    (and its JSON sidecar), or the config, seed and torch version of a random model."""
    import torch

    from socialmae_rt.engines.onnx_export import sha256_file

    digest = hashlib.sha256()
    if weights is None or Path(weights).suffix in (".pth", ".pt"):  # sized by the config given
        digest.update(json.dumps((config or SocialMAEConfig()).to_dict(), sort_keys=True).encode())
    if weights is None:
        digest.update(f"random seed {seed} torch {torch.__version__}".encode())
    else:
        path = Path(weights)
        digest.update(sha256_file(path).encode())
        if path.with_suffix(".json").is_file():
            digest.update(sha256_file(path.with_suffix(".json")).encode())
    return digest.hexdigest()


def export_and_model(weights, config, *, int8: bool = False, cache_dir=None, seed: int = 0, on_status=None,
                      bars: dict[str, float] | None = None):
    """(export, the torch model it came from; None when the model was not needed: an export
    directory, or a checkpoint whose export is cached already).

    Cached exports are found by the checkpoint file's hash (`onnx/sources/`), so a start with
    everything built never loads the torch model: faster, and its fp32 weights never take memory.
    """
    from socialmae_rt.engines.onnx_export import MANIFEST, ExportError, export_onnx, load_export, weights_fingerprint
    from socialmae_rt.engines.ort_int8 import check_int8_refusal, has_int8, quantize_export
    from socialmae_rt.engines.torch_backend import RANDOM_WEIGHTS_WARNING, load_model

    if weights is not None and (Path(weights) / MANIFEST).is_file():
        export = load_export(weights)
        if int8 and not has_int8(export, **(bars or {})):
            raise ExportError(f"{weights} has no int8 graphs with 7-bit weights that passed the held-out gate (older exports "
                              f"which saturate on CPUs without VNNI); make them with `socialmae-rt export-onnx --int8`")
        return export, None
    root = Path(cache_dir or cache_root()) / "onnx"
    source = root / "sources" / source_key(weights, config, seed)[:32]
    if source.is_file():
        try:
            export = load_export(root / source.read_text().strip())
        except ExportError as reason:
            log.warning("cached export for %s unusable (%s); exporting again", weights or "random weights", reason)
        else:
            if int8:
                check_int8_refusal(export, **(bars or {}))
            if not int8 or has_int8(export, **(bars or {})):
                if weights is None:
                    log.warning(RANDOM_WEIGHTS_WARNING)
                return export, None
    model, preprocess = load_model(weights, config, seed)
    directory = root / weights_fingerprint(model)[:16]
    try:
        export = load_export(directory)
    except ExportError as reason:
        log.warning("exporting ONNX graphs to %s (once per set of weights): %s", directory, reason)
        if on_status is not None:
            on_status(f"exporting ONNX graphs to {directory} (once per set of weights)")
        export = export_onnx(model, directory, preprocess, source=str(weights) if weights else RANDOM_WEIGHTS)
    # Recorded before int8 is tried: a refused int8 build still leaves a findable fp32 export.
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(directory.name + "\n")
    if int8 and not has_int8(export, **(bars or {})):
        check_int8_refusal(export, **(bars or {}))
        if on_status is not None:
            on_status("quantizing the ONNX graphs to int8 (once per set of weights)")
        report = quantize_export(export, model, progress=on_status, **(bars or {}))
        log.info("int8 accuracy vs torch fp32 on held-out clips: %s", report["graphs"])
    return export, model

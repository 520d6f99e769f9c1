"""Checkpoints: released `.pth` files (strict, explicit key map) and our safetensors + JSON pair."""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.config import SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.util.documents import read_versioned_json

FORMAT_NAME = "socialmae_rt"
FORMAT_VERSION = 1
DATA_PARALLEL_PREFIX = "module."
# Keys of the released *pretraining* checkpoint that belong to the MAE decoder, not the encoder.
_DECODER_KEY_PREFIXES = ("decoder_", "mask_token")
# Wrappers some training scripts put around a state dict; the released files are bare.
_STATE_DICT_WRAPPERS = ("state_dict", "model")
HEAD_PREFIXES = ("mlp_head.", "extra_heads.")
# metadata["task"] of a checkpoint that holds only an encoder (the released pretrained one, imported).
ENCODER_ONLY_TASK = "encoder"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the requested model; the message lists why."""


@dataclass
class KeyReport:
    """How a checkpoint's tensors line up with a model's parameters."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatches)

    def describe(self, limit: int = 20) -> str:
        lines = []
        for title, items in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("shape mismatches", self.shape_mismatches),
        ):
            if items:
                shown = ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
                lines.append(f"  {title} ({len(items)}): {shown}")
        return "\n".join(lines)


def official_key_to_model_key(key: str) -> str:
    """Released key -> our parameter name. The layouts agree once DataParallel's prefix is gone."""
    return key[len(DATA_PARALLEL_PREFIX) :] if key.startswith(DATA_PARALLEL_PREFIX) else key


def _read_torch_file(path: Path) -> Any:
    with open(path, "rb") as handle:
        head = handle.read(4)
    # torch.save writes a zip (PK..) or, in its legacy format, a pickle (protocol >= 2 starts with 0x80).
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        what = "is empty" if not head else f"starts with {head!r}"
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: the file {what} (a text or HTML page saved "
                              "under a .pth name? an interrupted download?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError,
            IndexError) as err:
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint (truncated download or not a .pth file?): {err}"
        ) from err


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for wrapper in _STATE_DICT_WRAPPERS:
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a non-empty state dict (name -> tensor)")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path} is not a state dict: expected every value to be a tensor, but {len(not_tensors)} are not "
            f"(e.g. {not_tensors[:5]})"
        )
    return dict(obj)


def describe_state_dict(state: Mapping[str, torch.Tensor]) -> str:
    """A one-line guess of the size a state dict was saved from, for error messages."""
    parts = []
    if "modality_a" in state:
        parts.append(f"embed_dim={state['modality_a'].shape[-1]}")
    depth = {int(k.split(".")[1]) for k in state if k.startswith("blocks_a.")}
    if depth:
        parts.append(f"modality_specific_depth={max(depth) + 1}")
    if "mlp_head.1.weight" in state:
        parts.append(f"num_classes={state['mlp_head.1.weight'].shape[0]}")
    return ", ".join(parts) or "no recognisable Social-MAE keys"


def compare_keys(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> KeyReport:
    expected = model.state_dict()
    report = KeyReport(
        missing=sorted(set(expected) - set(state)),
        unexpected=sorted(set(state) - set(expected)),
    )
    for name in sorted(set(expected) & set(state)):
        if tuple(state[name].shape) != tuple(expected[name].shape):
            report.shape_mismatches.append(
                f"{name}: checkpoint {list(state[name].shape)} vs model {list(expected[name].shape)}"
            )
    return report


def check_finite_tensors(state: Mapping[str, torch.Tensor], source: str) -> None:
    """A NaN or Inf weight would make every output NaN: refuse the checkpoint, naming the tensors."""
    bad = [f"{name} ({int((~torch.isfinite(t)).sum())} of {t.numel()} values)" for name, t in state.items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad) - 5} more)" if len(bad) > 5 else "")
        raise CheckpointError(f"{source} holds NaN/Inf values in {shown}: a damaged or diverged checkpoint")


def load_state_strictly(model: SocialMAE, state: Mapping[str, torch.Tensor], source: str) -> SocialMAE:
    """Copy `state` into `model` only if every name and shape matches; otherwise raise, loading nothing."""
    report = compare_keys(model, state)
    if not report.ok:
        raise CheckpointError(
            f"{source} does not match SocialMAEConfig({_config_summary(model.config)}); "
            f"the checkpoint looks like {describe_state_dict(state)}.\n{report.describe()}"
        )
    check_finite_tensors(state, source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _config_summary(config: SocialMAEConfig) -> str:
    return (
        f"embed_dim={config.embed_dim}, num_heads={config.num_heads}, "
        f"modality_specific_depth={config.modality_specific_depth}, num_classes={config.num_classes}, "
        f"extra_heads={config.extra_heads}"
    )


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A released `.pth` as a state dict in our names (DataParallel's `module.` removed), unchecked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = _unwrap_state_dict(_read_torch_file(path), path)
    return {official_key_to_model_key(k): v for k, v in state.items()}


def encoder_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a fine-tuned or pretraining state dict (decoder and heads set aside)."""
    return {k: v for k, v in state.items() if not k.startswith(_DECODER_KEY_PREFIXES + HEAD_PREFIXES)}


def load_official_checkpoint(
    path: str | Path, config: SocialMAEConfig | None = None, *, encoder_only: bool = False
) -> SocialMAE:
    """Load a released Social-MAE `.pth` strictly.

    Fine-tuned checkpoints (keys may start with `module.`) load into `SocialMAE(config)` with
    every key and shape checked. `encoder_only=True` takes just the encoder from a fine-tuned
    or pretraining checkpoint: the MAE decoder and the released head are set aside by name,
    the heads of `config` start fresh, and every encoder key must still be present and match.
    """
    path = Path(path)
    state = read_official_state(path)
    model = SocialMAE(config or SocialMAEConfig())
    if encoder_only:
        state = encoder_state(state)
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(HEAD_PREFIXES)})
    return load_state_strictly(model, state, f"official checkpoint {path}")


# Our own format -------------------------------------------------------------------------------


def config_path_for(weights_path: str | Path) -> Path:
    """The JSON that travels beside a `.safetensors` file: same stem, `.json`."""
    return Path(weights_path).with_suffix(".json")


def check_preprocess_matches(config: SocialMAEConfig, preprocess: PreprocessConfig) -> None:
    pairs = {
        "audio frames (audio_length vs audio.target_length)": (config.audio_length, preprocess.audio.target_length),
        "mel bins (num_mel_bins vs audio.num_mel_bins)": (config.num_mel_bins, preprocess.audio.num_mel_bins),
        "image size (image_size vs video.image_size)": (config.image_size, preprocess.video.image_size),
        "frames per window (num_frames vs video.num_frames)": (config.num_frames, preprocess.video.num_frames),
    }
    wrong = [f"{what}: model {m} != preprocessing {p}" for what, (m, p) in pairs.items() if m != p]
    if wrong:
        raise CheckpointError("model and preprocessing configs disagree: " + "; ".join(wrong))


def save_checkpoint(
    model: SocialMAE,
    path: str | Path,
    preprocess: PreprocessConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    encoder_only: bool = False,
) -> Path:
    """Write `path` (.safetensors weights) and its `.json` (model + preprocessing config).

    `encoder_only` leaves the heads out (metadata task "encoder"): such a file initialises
    fine-tuning or distillation (`load_encoder`), it cannot perceive anything by itself."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {path}")
    preprocess = preprocess or PreprocessConfig()
    check_preprocess_matches(model.config, preprocess)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = dict(metadata or {})
    if encoder_only:
        state = encoder_state(state)
        metadata["task"] = ENCODER_ONLY_TASK
    save_file(state, str(path), metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "preprocess": preprocess.to_dict(),
        "metadata": metadata,
    }
    config_path_for(path).write_text(json.dumps(document, indent=2) + "\n")
    return path


@dataclass
class LoadedCheckpoint:
    model: SocialMAE
    preprocess: PreprocessConfig
    metadata: dict[str, Any]


def read_checkpoint_config(path: str | Path) -> tuple[SocialMAEConfig, PreprocessConfig, dict[str, Any]]:
    """Parse and validate the JSON beside a `.safetensors` checkpoint."""
    json_path = config_path_for(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {json_path} (it must sit beside {Path(path).name})")
    document = read_versioned_json(json_path, FORMAT_NAME, FORMAT_VERSION, CheckpointError, "checkpoint config")
    for section in ("model", "preprocess"):
        if section not in document:
            raise CheckpointError(f"{json_path} lacks its '{section}' section")
    config = SocialMAEConfig.from_dict(document["model"])
    preprocess = PreprocessConfig.from_dict(document["preprocess"])
    check_preprocess_matches(config, preprocess)
    return config, preprocess, dict(document.get("metadata") or {})


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a checkpoint written by `save_checkpoint`; strict on names and shapes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    config, preprocess, metadata = read_checkpoint_config(path)
    if metadata.get("task") == ENCODER_ONLY_TASK:
        raise CheckpointError(
            f"{path} is an encoder without task heads (the pretrained checkpoint): it can start fine-tuning "
            "(finetune --init) or distillation (distill --init), but cannot perceive anything by itself"
        )
    model = load_state_strictly(SocialMAE(config), _read_safetensors(path), f"checkpoint {path}")
    return LoadedCheckpoint(model, preprocess, metadata)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise CheckpointError(f"cannot read {path} as safetensors (truncated or corrupt?): {err}") from err


def load_encoder(path: str | Path, config: SocialMAEConfig) -> tuple[SocialMAE, PreprocessConfig]:
    """`SocialMAE(config)` with the encoder of `path` (a released .pth, pretrained or fine-tuned, or
    any of our .safetensors, encoder-only included) and the fresh heads of `config`. Strict on
    every encoder name and shape."""
    path = Path(path)
    if path.suffix in (".pth", ".pt"):
        return load_official_checkpoint(path, config, encoder_only=True), PreprocessConfig()
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: expected a released .pth or one of our .safetensors checkpoints")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    saved_config, preprocess, _ = read_checkpoint_config(path)
    model = SocialMAE(config)
    state = encoder_state(_read_safetensors(path))
    state.update({k: v for k, v in model.state_dict().items() if k.startswith(HEAD_PREFIXES)})
    return load_state_strictly(model, state, f"encoder of {path} (saved as {_config_summary(saved_config)})"), preprocess


def load_any_checkpoint(path: str | Path, config: SocialMAEConfig | None = None) -> LoadedCheckpoint:
    """`.safetensors` (ours, config from its JSON) or `.pth`/`.pt` (released, config as given)."""
    suffix = Path(path).suffix
    if suffix == ".safetensors":
        if config is not None:
            raise ValueError(f"{path} carries its own config in {config_path_for(path).name}; do not pass one")
        return load_checkpoint(path)
    if suffix in (".pth", ".pt"):
        return LoadedCheckpoint(load_official_checkpoint(path, config), PreprocessConfig(), {"source": str(path)})
    raise ValueError(f"unknown checkpoint type {suffix!r} for {path}; expected .safetensors (ours) or .pth (released)")

"""`weights import`: a released `.pth` -> our `<task>.safetensors` + `.json` in a bundle folder.

The released file is read strictly: its size (base/small/tiny) and head width come from the
tensors, every key is checked against that model, and nothing is written unless all of it
loads. The head is rewritten into the order the pipeline reads (rows of the final Linear
permuted, an 'interview' output dropped), so the written checkpoint needs no `--model`, no
`--task` and no label guess ever again; the JSON records the source file's sha256, the output
order it was read in and whether that order was given or assumed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import torch

from socialmae_rt.features.config import PreprocessConfig
from socialmae_rt.model.checkpoint import (
    CheckpointError, encoder_state, load_state_strictly, read_official_state, save_checkpoint)
from socialmae_rt.model.config import MODEL_VARIANTS, SocialMAEConfig
from socialmae_rt.model.social_mae import SocialMAE
from socialmae_rt.tasks import LAUGHING_LABEL
from socialmae_rt.weights.bundle import write_bundle_entry
from socialmae_rt.weights.released import CREMA_D_CODES, ENCODER_TASK, HEAD_MEANINGS, INTERVIEW, check_task

HEAD_WEIGHT = "mlp_head.1.weight"
SHA256_SUFFIX = ".sha256"


@dataclass
class ImportResult:
    task: str
    checkpoint: Path  # the written .safetensors
    model: str  # size name
    source_sha256: str
    source_labels: tuple[str, ...] | None  # the head's outputs as read (None: encoder)
    labels: tuple[str, ...] | None  # what the written head outputs
    assumed: bool  # the output order is this project's assumption, not given by the user

    def describe(self) -> str:
        lines = [f"{self.task}: {self.checkpoint} ({self.model}, source sha256 {self.source_sha256[:16]}...)"]
        if self.source_labels is not None:
            how = "ASSUMED (the release does not record it; pass --labels if you know it)" if self.assumed else "as given"
            lines.append(f"  head outputs read as: {', '.join(self.source_labels)} [{how}]")
            lines.append(f"  written as:           {', '.join(self.labels)}")
        return "\n".join(lines)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def recorded_sha256(path: Path) -> str | None:
    """The hash `weights download` recorded beside a file (`<file>.sha256`, sha256sum format)."""
    sidecar = path.with_name(path.name + SHA256_SUFFIX)
    if not sidecar.is_file():
        return None
    return sidecar.read_text().split()[0].lower()


def infer_config(state: Mapping[str, torch.Tensor], where: str) -> tuple[str, SocialMAEConfig]:
    """(size name, config) of a state dict in our names: width, depths and head width from the tensors."""
    if "modality_a" not in state or "blocks_a.0.norm1.weight" not in state:
        raise CheckpointError(f"{where} is not a Social-MAE checkpoint: no modality_a / blocks_a tensors")
    width = int(state["modality_a"].shape[-1])
    size = next((name for name, v in MODEL_VARIANTS.items() if v["embed_dim"] == width), None)
    if size is None:
        known = ", ".join(f"{n} ({v['embed_dim']})" for n, v in MODEL_VARIANTS.items())
        raise CheckpointError(f"{where} has width {width}, which is none of the known sizes: {known}")
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks_a."))
    joint = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks_u.")), default=-1)
    if joint < 1:
        raise CheckpointError(f"{where} has no shared block (blocks_u): not a Social-MAE encoder")
    heads = int(state[HEAD_WEIGHT].shape[0]) if HEAD_WEIGHT in state else 1
    return size, SocialMAEConfig.variant(size, modality_specific_depth=depth, joint_depth=joint, num_classes=heads)


def _normalise(label: str) -> str:
    label = label.strip().lower()
    return CREMA_D_CODES.get(label.upper(), label)


def head_order(task: str, width: int, labels: Sequence[str] | None,
               laughing_class: int | None) -> tuple[tuple[str, ...], list[int], tuple[str, ...], bool]:
    """How to read a released head of `width` outputs for `task`:
    -> (its output labels, rows to keep in the written order, the written labels, assumed?)."""
    meaning = HEAD_MEANINGS[task]
    assumed = labels is None and laughing_class is None
    if labels is not None:
        source = tuple(_normalise(label) for label in labels)
        if len(source) != width:
            raise ValueError(f"--labels names {len(source)} outputs but the {task} head has {width}: {list(source)}")
    elif task == "laughter" and laughing_class is not None:
        if not 0 <= laughing_class < width or width == 1:
            raise ValueError(f"--laughing-class {laughing_class}: the laughter head has {width} output(s); "
                             f"expected a class index 0..{width - 1} of a head with 2 or more outputs")
        source = tuple(LAUGHING_LABEL if i == laughing_class else f"class_{i}" for i in range(width))
    elif width in meaning.default_source_labels:
        source = meaning.default_source_labels[width]
    else:
        known = ", ".join(str(w) for w in meaning.default_source_labels)
        raise ValueError(f"a released {task} head has {known} outputs; this one has {width}. "
                         f"Pass --labels with one name per output")
    if len(set(source)) != len(source):
        raise ValueError(f"--labels must be distinct, got {list(source)}")
    if meaning.pipeline_labels is None:  # laughter: kept as it is, the laughing class named
        if LAUGHING_LABEL not in source:
            raise ValueError(f"the laughter head's labels {list(source)} name no {LAUGHING_LABEL!r} class; "
                             "say which output means laughing (--laughing-class N, or 'laughter' in --labels)")
        return source, list(range(width)), source, assumed
    wanted = meaning.pipeline_labels
    extra = set(source) - set(wanted) - {INTERVIEW if task == "personality" else ""}
    missing = [label for label in wanted if label not in source]
    if missing or extra:
        raise ValueError(f"a {task} head must output exactly {list(wanted)}"
                         + (" (and optionally 'interview')" if task == "personality" else "")
                         + f"; the labels {list(source)} lack {missing} and add {sorted(extra)}")
    return source, [source.index(label) for label in wanted], wanted, assumed


def import_released(path: str | Path, task: str, out_dir: str | Path, *, labels: Sequence[str] | None = None,
                    laughing_class: int | None = None, force: bool = False) -> ImportResult:
    """Read a released `.pth` strictly and write `<out_dir>/<task>.safetensors` (+ JSON, + bundle.json)."""
    path, out_dir = Path(path), Path(out_dir)
    check_task(task, "--task: ")
    if task == ENCODER_TASK and (labels or laughing_class is not None):
        raise ValueError("--labels / --laughing-class describe a task head; the encoder has none")
    if task != "laughter" and laughing_class is not None:
        raise ValueError(f"--laughing-class is for --task laughter, not {task}")
    target = out_dir / f"{task}.safetensors"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to replace it")
    sha256 = file_sha256(path) if path.is_file() else None
    state = read_official_state(path)
    expected = recorded_sha256(path)
    if expected is not None and expected != sha256:
        raise CheckpointError(f"{path}: sha256 {sha256} differs from the one recorded when it was downloaded "
                              f"({expected}); the file changed or is damaged: download it again")
    size, config = infer_config(state, str(path))
    has_head = HEAD_WEIGHT in state
    if task == ENCODER_TASK:
        model = SocialMAE(config)
        state = encoder_state(state)
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("mlp_head.")})
        load_state_strictly(model, state, f"encoder of {path}")
        source_labels = written = None
        assumed = False
    else:
        if not has_head:
            raise CheckpointError(f"{path} has no task head (mlp_head): it is the pretrained encoder; "
                                  f"import it with --task encoder, not --task {task}")
        width = config.num_classes
        source_labels, rows, written, assumed = head_order(task, width, labels, laughing_class)
        loaded = load_state_strictly(SocialMAE(config), state, f"released {task} checkpoint {path}")
        config = replace(config, primary_head=task, num_classes=len(rows), head_labels={task: list(written)})
        model = SocialMAE(config)
        kept = dict(loaded.state_dict())
        index = torch.tensor(rows)
        kept["mlp_head.1.weight"] = kept["mlp_head.1.weight"][index]  # [len(rows), D]: written order
        kept["mlp_head.1.bias"] = kept["mlp_head.1.bias"][index]
        load_state_strictly(model, kept, f"rewritten {task} head of {path}")
    metadata = {
        "task": task,
        "labels": None if written is None else list(written),
        "source": {
            "file": path.name,
            "sha256": sha256,
            "format": "released .pth (HuBohy/SocialMAE)",
            "head_outputs": None if source_labels is None else list(source_labels),
            "order": None if source_labels is None else ("assumed" if assumed else "given"),
            "dropped_outputs": [] if source_labels is None else [s for s in source_labels if s not in written],
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so a failure leaves the old file or none.
    tmp = out_dir / f".{task}.importing.safetensors"
    save_checkpoint(model, tmp, PreprocessConfig(), metadata, encoder_only=task == ENCODER_TASK)
    os.replace(tmp.with_suffix(".json"), target.with_suffix(".json"))
    os.replace(tmp, target)
    write_bundle_entry(out_dir, task, target.name)
    return ImportResult(task, target, size, sha256, source_labels, written, assumed)

"""Training configurations from YAML recipes (training/recipes/*.yaml) plus command-line overrides.

A recipe is the dataclass config written out: top-level fields of the task's config and a
`train:` section for TrainConfig. Unknown keys are an error that lists the valid ones, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import yaml

from socialmae_rt.features.config import dataclass_from_dict
from socialmae_rt.training.trainer import TrainConfig

RECIPES_DIR = Path(__file__).parent / "recipes"


def recipe_path(name_or_path: str) -> Path:
    """A file path, or the name of a bundled recipe (`cremad_emotion` -> recipes/cremad_emotion.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES_DIR / f"{name_or_path}.yaml"
    if bundled.is_file():
        return bundled
    available = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"recipe {name_or_path!r}: no such file and no bundled recipe of that name "
                            f"(bundled: {available})")


def read_recipe(name_or_path: str | None) -> dict[str, Any]:
    if name_or_path is None:
        return {}
    path = recipe_path(name_or_path)
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"recipe {path}: expected a mapping of settings, got {type(document).__name__}")
    return document


def build_config(cls, recipe: Mapping[str, Any], overrides: Mapping[str, Any], where: str):
    """`cls` from recipe values, then non-None overrides; `train` keys go to TrainConfig
    (`train.epochs` style override keys, or plain TrainConfig field names)."""
    values = {k: v for k, v in recipe.items() if k not in ("train", "data", "tasks")}
    train_values = dict(recipe.get("train") or {})
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    own_fields = {f.name for f in dataclasses.fields(cls)}
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("train."):
            train_values[key.removeprefix("train.")] = value
        elif key in own_fields:
            values[key] = value
        elif key in train_fields:
            train_values[key] = value
        else:
            raise ValueError(f"{where}: unknown setting {key!r}")
    values["train"] = dataclass_from_dict(TrainConfig, train_values, f"{where} (train)")
    return dataclass_from_dict(cls, values, where)

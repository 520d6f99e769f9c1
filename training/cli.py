"""`socialmae-rt prepare-data | pretrain | finetune | distill | evaluate`.

Each command reads a bundled or given YAML recipe (training/recipes/) into its config dataclass;
flags override single settings. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from socialmae_rt.model.config import MODEL_NAMES

READERS = ("manifest", "crema_d", "first_impressions", "voxceleb2", "ndc_me", "folder")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", help="YAML recipe: a path or a bundled name (see training/recipes/)")
    p.add_argument("--out-dir", dest="out_dir", help="run folder (checkpoints, metrics.csv, curves)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--grad-accumulation", dest="grad_accumulation", type=int)
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--num-workers", dest="num_workers", type=int)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", dest="max_steps_per_epoch", type=int)
    p.add_argument("--save-every-steps", dest="save_every_steps", type=int,
                   help="also checkpoint every N optimiser steps inside an epoch (resume continues from that batch)")
    p.add_argument("--no-resume", dest="resume", action="store_false", default=None,
                   help="start afresh even if the run folder has a checkpoint")


TRAIN_FLAGS = ("out_dir", "epochs", "batch_size", "grad_accumulation", "precision", "num_workers", "device", "seed",
               "max_steps_per_epoch", "save_every_steps", "resume")


def _overrides(args: argparse.Namespace, own: tuple[str, ...]) -> dict:
    return {name: getattr(args, name) for name in (*own, *TRAIN_FLAGS) if getattr(args, name, None) is not None}


# prepare-data ------------------------------------------------------------------------------------
def _read_items(args: argparse.Namespace):
    from socialmae_rt.training import data

    split = data.SplitConfig(seed=args.split_seed)
    if args.reader == "crema_d":
        return data.read_crema_d(args.root, split=split)
    if args.reader == "first_impressions":
        if not args.annotations:
            raise ValueError("--reader first_impressions needs --annotations (annotation_*.pkl or a CSV)")
        return data.read_first_impressions(args.root, args.annotations)
    if args.reader == "voxceleb2":
        return data.read_voxceleb2(args.root)
    if args.reader == "ndc_me":
        return data.read_ndc_me(args.root)
    if args.reader == "folder":
        return data.read_video_folder(args.root, split=split)
    return data.read_manifest(args.root, tasks=args.tasks or ())


def _prepare_data(args: argparse.Namespace) -> int:
    from socialmae_rt.training.data import PrepareConfig, prepare_data

    items = _read_items(args)
    report = prepare_data(items, args.cache, PrepareConfig(crop=args.crop, workers=args.workers,
                                                           keep_video_only=args.keep_video_only,
                                                           keep_audio_only=args.keep_audio_only))
    return 0 if report.prepared + report.cached > 0 else 2


def _add_prepare_data(sub) -> None:
    p = sub.add_parser("prepare-data", help="decode clips once into a training cache (face crops at 2 fps + 16 kHz audio)")
    p.add_argument("--reader", choices=READERS, default="manifest", help="dataset layout (default: manifest)")
    p.add_argument("--root", required=True, help="dataset folder, or the manifest file (CSV/JSONL) for manifest/ndc_me; "
                   "folder: any folder of videos, unlabelled (for distillation), speakers = sub-folders")
    p.add_argument("--annotations", help="First Impressions: annotation pickle or CSV")
    p.add_argument("--tasks", nargs="+", help="manifest: label columns to read as tasks (e.g. emotion laughter)")
    p.add_argument("--cache", required=True, help="cache folder to write")
    p.add_argument("--crop", choices=["face", "full"], default="face",
                   help="face: live face tracking and crops; full: whole frames (what the reference did for CREMA-D)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--keep-video-only", action="store_true", help="keep clips without audio as video-only")
    p.add_argument("--keep-audio-only", action="store_true",
                   help="keep clips without video or a face as audio-only (default: skip them, counted in the report)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the speaker-independent split")
    p.set_defaults(handler=_prepare_data)


# finetune / evaluate ---------------------------------------------------------------------------------
def _datasets(cache: str, tasks, splits=("train", "val", "test")):
    from socialmae_rt.training.data import WindowDataset

    made = {}
    for split in splits:
        mode = "random" if split == "train" else "center"
        try:
            made[split] = WindowDataset(cache, split, tasks, mode=mode)
        except ValueError as err:
            if split == "test" and "no prepared clips in split" in str(err):
                made[split] = None  # a cache without a test split: train and validate only
            else:
                raise
    return made


def _finetune(args: argparse.Namespace) -> int:
    from socialmae_rt.training.data import collate, resolve_tasks
    from socialmae_rt.training.finetune import FinetuneConfig, finetune
    from socialmae_rt.training.recipes import build_config, read_recipe

    recipe = read_recipe(args.recipe)
    config = build_config(FinetuneConfig, recipe, _overrides(args, ("model", "init", "backbone_lr", "head_lr",
                                                                    "freeze_backbone", "modality")), "finetune")
    tasks = resolve_tasks(args.tasks or recipe.get("tasks") or [])
    if not tasks:
        raise ValueError("finetune needs --tasks (e.g. emotion) or a recipe that lists them")
    data = _datasets(args.cache, tasks)
    summary = finetune(config, tasks, data["train"], data["val"], data["test"], collate=collate)
    print(json.dumps({k: summary[k] for k in ("best", "test") if k in summary}, indent=2))
    print(f"best checkpoint: {Path(config.train.out_dir) / 'best.safetensors'}")
    return 0


def _add_finetune(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune task heads on an encoder (best checkpoint, test metrics, curves)")
    p.add_argument("--cache", required=True, help="prepared cache (socialmae-rt prepare-data)")
    p.add_argument("--tasks", nargs="+", help="tasks to train: emotion, laughter, smile_laughter, personality")
    p.add_argument("--init", help="released .pth (pretrained or fine-tuned) or our .safetensors; default: random")
    p.add_argument("--model", choices=MODEL_NAMES)
    p.add_argument("--backbone-lr", dest="backbone_lr", type=float)
    p.add_argument("--head-lr", dest="head_lr", type=float)
    p.add_argument("--freeze-backbone", dest="freeze_backbone", action="store_true", default=None)
    p.add_argument("--modality", choices=["audiovisual", "audio", "video"])
    _add_train_flags(p)
    p.set_defaults(handler=_finetune)


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from socialmae_rt.model.checkpoint import load_any_checkpoint
    from socialmae_rt.model.config import SocialMAEConfig
    from socialmae_rt.training.data import WindowDataset, collate, resolve_tasks
    from socialmae_rt.training.finetune import evaluate_tasks, plot_confusions

    config = SocialMAEConfig.variant(args.model) if args.weights.endswith((".pth", ".pt")) else None
    loaded = load_any_checkpoint(args.weights, config)
    tasks = resolve_tasks(args.tasks or [t["name"] for t in loaded.metadata.get("tasks", [])] or
                          [loaded.model.config.primary_head])
    missing = [t.name for t in tasks if t.name not in loaded.model.config.head_sizes]
    if missing:
        raise ValueError(f"{args.weights} has no head for {missing}; its heads: {list(loaded.model.config.head_sizes)}")
    data = WindowDataset(args.cache, args.split, tasks, mode="center", preprocess=loaded.preprocess)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, collate_fn=collate)
    result = evaluate_tasks(loaded.model, loader, tasks, args.modality)
    # default: beside the checkpoint (a run folder), never an outputs/ folder in whatever the cwd is
    out = Path(args.out) if args.out else Path(args.weights).with_name(f"{Path(args.weights).stem}.{args.split}.evaluate.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"weights": args.weights, "split": args.split, "clips": len(data), **result}, indent=2))
    png = plot_confusions(result, tasks, out.with_suffix(".png"))
    for name, metrics in result["tasks"].items():
        shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
        print(f"{name}: {shown}")
    print(f"wrote {out}" + (f" and {png}" if png else ""))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="the paper's metrics on a prepared split: JSON + confusion-matrix PNG")
    p.add_argument("--weights", required=True, help="released .pth or our .safetensors")
    p.add_argument("--cache", required=True, help="prepared cache")
    p.add_argument("--split", default="test")
    p.add_argument("--tasks", nargs="+", help="default: the tasks recorded in the checkpoint (or its primary head)")
    p.add_argument("--model", default="base", choices=MODEL_NAMES, help="size of a released .pth")
    p.add_argument("--modality", default="audiovisual", choices=["audiovisual", "audio", "video"])
    p.add_argument("--batch-size", dest="batch_size", type=int, default=8)
    p.add_argument("--out", help="JSON path; the confusion matrices go beside it as .png (default: beside the "
                   "weights, <name>.<split>.evaluate.json)")
    p.set_defaults(handler=_evaluate)


# pretrain / distill -----------------------------------------------------------------------------------
def _pretrain(args: argparse.Namespace) -> int:
    from socialmae_rt.training.data import WindowDataset, collate
    from socialmae_rt.training.pretrain import PretrainRunConfig, pretrain
    from socialmae_rt.training.recipes import build_config, read_recipe

    config = build_config(PretrainRunConfig, read_recipe(args.recipe), _overrides(args, ("model", "lr")), "pretrain")
    train = WindowDataset(args.cache, args.train_split, mode="random")
    val = WindowDataset(args.cache, args.val_split, mode="center") if args.val_split else None
    summary = pretrain(config, train, val, collate=collate)
    print(f"pretrained encoder + decoder: {summary['checkpoint']} (fine-tune with --init)")
    return 0


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="MAE + contrastive pretraining on unlabelled clips (released checkpoint layout)")
    p.add_argument("--cache", required=True, help="prepared cache (socialmae-rt prepare-data --reader voxceleb2 ...)")
    p.add_argument("--train-split", dest="train_split", default=None, help="split to train on (default: every clip)")
    p.add_argument("--val-split", dest="val_split", help="split for a validation loss (default: none)")
    p.add_argument("--model", choices=MODEL_NAMES)
    p.add_argument("--lr", type=float)
    _add_train_flags(p)
    p.set_defaults(handler=_pretrain)


def _distill(args: argparse.Namespace) -> int:
    from socialmae_rt.training.data import WindowDataset, collate, resolve_tasks
    from socialmae_rt.training.distill import DistillConfig, distill
    from socialmae_rt.training.recipes import build_config, read_recipe

    if args.teachers:
        args.teachers = " ".join(args.teachers)  # task=checkpoint entries: one string, as recipes hold it
    config = build_config(DistillConfig, read_recipe(args.recipe),
                          _overrides(args, ("teacher", "teachers", "teacher_model", "student", "student_depth", "init",
                                            "temperature", "label_weight")), "distill")
    tasks = resolve_tasks(args.tasks or [])
    train = WindowDataset(args.cache, args.train_split, tasks, mode="random")
    val = _held_out(args.cache, args.val_split, tasks)
    summary = distill(config, train, tasks, val_data=val, collate=collate)
    for stage in ("untrained", "trained"):
        for head, metrics in summary.get("agreement", {}).get(stage, {}).items():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            print(f"agreement with the {head} teacher, {stage} student: {shown}")
    print(f"student: {summary['student']}")
    return 0


def _held_out(cache: str, split: str | None, tasks):
    """The clips agreement is measured on: --val-split, else the cache's 'val' split when it has one."""
    from socialmae_rt.training.data import WindowDataset

    if split == "none":
        return None
    try:
        return WindowDataset(cache, split or "val", tasks, mode="center")
    except ValueError as err:
        if split is None and "no prepared clips in split" in str(err):
            return None
        raise


def _add_distill(sub) -> None:
    p = sub.add_parser("distill", help="train a small/tiny student from a fine-tuned teacher, or merge one "
                       "teacher per task (a bundle) into one multi-head model")
    p.add_argument("--cache", required=True, help="prepared cache (labelled or not: prepare-data --reader folder)")
    p.add_argument("--teacher", help="released fine-tuned .pth or our .safetensors")
    p.add_argument("--teachers", nargs="+", help="one teacher per task: emotion=A laughter=B personality=C, or a "
                   "bundle folder from `weights import` (its pretrained encoder starts the student when sizes match)")
    p.add_argument("--teacher-model", dest="teacher_model", choices=MODEL_NAMES)
    p.add_argument("--student", choices=MODEL_NAMES)
    p.add_argument("--student-depth", dest="student_depth", type=int, help="blocks per stream (default: 11)")
    p.add_argument("--init", help="encoder to start the student from (e.g. the imported pretrained encoder)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--label-weight", dest="label_weight", type=float, help="> 0: also learn from labels (--tasks)")
    p.add_argument("--tasks", nargs="+")
    p.add_argument("--train-split", dest="train_split", default=None)
    p.add_argument("--val-split", dest="val_split", default=None,
                   help="held-out clips for the agreement report (default: 'val' when the cache has it; none: skip)")
    _add_train_flags(p)
    p.set_defaults(handler=_distill)


def _make_dataset(args: argparse.Namespace) -> int:
    from socialmae_rt.training.data.synthetic import SyntheticConfig, make_synthetic_dataset

    config = SyntheticConfig(num_classes=args.classes, clips_per_class=args.clips_per_class, picture=args.picture,
                             num_speakers=args.speakers, label_as=args.label_as, seed=args.seed)
    data = make_synthetic_dataset(args.out, config)
    task = data.task.name
    print(f"wrote {len(data.items)} clips ({config.num_classes} classes x {config.clips_per_class}) and {data.manifest}")
    print("try training on it:")
    print(f"  socialmae-rt prepare-data --root {data.manifest} --tasks {task} --cache {args.out}/cache --crop full")
    print(f"  socialmae-rt finetune --cache {args.out}/cache --tasks {task} --model tiny --epochs 5 "
          f"--out-dir {args.out}/run")
    print(f"  socialmae-rt evaluate --weights {args.out}/run/best.safetensors --cache {args.out}/cache --split test")
    return 0


def _add_make_dataset(sub) -> None:
    p = sub.add_parser(
        "make-dataset", help="generate a small labelled audio-visual dataset (to try training without one)",
        description="Write generated clips whose class is both seen (background colour) and heard (tone pitch), "
        "with a manifest (labels, speakers, speaker-independent splits) that prepare-data reads. Learnable in "
        "minutes on a CPU; for trying the training commands, not for a useful model.")
    p.add_argument("--out", required=True, help="folder to write (clips/, manifest.csv)")
    p.add_argument("--classes", type=int, default=3, help="2..6 classes (default: 3)")
    p.add_argument("--clips-per-class", dest="clips_per_class", type=int, default=8, help="default: 8")
    p.add_argument("--speakers", type=int, default=4, help="speakers the clips are spread over (default: 4)")
    p.add_argument("--picture", choices=["shape", "face", "none"], default="shape",
                   help="shape: a drawn head (default); face: a real photograph (for --crop face); none: no face")
    p.add_argument("--label-as", dest="label_as", choices=["emotion", "synthetic"], default="emotion",
                   help="emotion (default): class k labelled as the k-th emotion, so finetune takes --tasks emotion")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_make_dataset)


SUBCOMMANDS = (_add_make_dataset, _add_prepare_data, _add_pretrain, _add_finetune, _add_distill, _add_evaluate)

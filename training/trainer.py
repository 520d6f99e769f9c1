"""One training loop for pretraining, fine-tuning and distillation.

What every run gets: one process on CPU or a GPU, or several under `torchrun`
(DistributedDataParallel + DistributedSampler, gloo on CPU, nccl on GPUs); bf16/fp16 autocast;
gradient accumulation; a checkpoint with optimiser, scheduler, scaler and RNG state after every
epoch (and every `save_every_steps` optimiser steps) and exact resume from it, mid-epoch
included; a progress bar; metrics in CSV (and TensorBoard when installed); learning curves as
PNG; and a stop with a clear message, keeping the last good checkpoint, when the loss stops
being finite.

A task plugs in two functions: `step(model, batch) -> (loss, {name: float})` and
`evaluate(model, loader) -> {name: float, ...}` whose `key_metric` picks the best epoch.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import pickle
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
STATE_FILE = "state.pt"


@dataclass
class TrainConfig:
    out_dir: str = "runs/train"
    epochs: int = 10
    batch_size: int = 8
    grad_accumulation: int = 1  # optimiser step every N batches (effective batch = N x batch_size x ranks)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16 needs CUDA)
    num_workers: int = 0
    seed: int = 0
    max_steps_per_epoch: int | None = None  # cap batches per epoch (smoke runs, tests)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    resume: bool = True  # continue from out_dir/state.pt when it exists
    save_every_steps: int = 0  # also checkpoint every N optimiser steps inside an epoch (0: at epoch ends only)
    tensorboard: bool = True  # also write TensorBoard events when tensorboard is installed
    progress: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "grad_accumulation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.save_every_steps < 0:
            raise ValueError(f"save_every_steps must be >= 0 (0: only at epoch ends), got {self.save_every_steps}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch must be >= 1, got {self.max_steps_per_epoch}")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; a plain `python` run is one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available (use --device cpu)")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values only, so `state.pt` loads with
    weights_only=True (no pickled objects, so nothing in the file can run code)."""
    version, internal, gauss_next = random.getstate()
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    np.random.set_state((npy["name"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())  # torch.load(map_location=cuda) may have moved it
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class SkipFirst(Sampler):
    """A sampler's order without its first `count` indices: the rest of an interrupted epoch."""

    def __init__(self, sampler: Sampler, count: int) -> None:
        self.sampler, self.count = sampler, count

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.count, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.count)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class MetricsLog:
    """metrics.csv (epoch, step, split, metric, value), TensorBoard when available, curves PNG."""

    def __init__(self, out_dir: Path, tensorboard: bool, resumed_step: int | None = None) -> None:
        self.path = out_dir / "metrics.csv"
        self.png = out_dir / "learning_curves.png"
        if resumed_step is not None and self.path.exists():
            self._drop_rows_after(resumed_step)
        new = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(["epoch", "step", "split", "metric", "value"])
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed: metrics go to %s only", self.path)

    def _drop_rows_after(self, step: int) -> None:
        """Rows logged after the checkpoint a run resumes from are logged again: keep one copy."""
        with self.path.open(newline="") as file:
            rows = list(csv.reader(file))
        kept = rows[:1] + [row for row in rows[1:] if int(row[1]) <= step]
        if len(kept) < len(rows):
            with self.path.open("w", newline="") as file:
                csv.writer(file).writerows(kept)

    def write(self, epoch: int, step: int, split: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._csv.writerow([epoch, step, split, name, f"{value:.6g}"])
                if self._tb is not None:
                    self._tb.add_scalar(f"{split}/{name}", value, step)
        self._file.flush()

    def plot(self, key_metric: str | None) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = list(csv.DictReader(self.path.open()))
        train = [(int(r["step"]), float(r["value"])) for r in rows if r["split"] == "train" and r["metric"] == "loss"]
        val = [(int(r["epoch"]), float(r["value"])) for r in rows if r["split"] == "val" and r["metric"] == key_metric]
        fig, axes = plt.subplots(1, 2 if val else 1, figsize=(10 if val else 5, 3.5), squeeze=False)
        if train:
            axes[0][0].plot(*zip(*train), lw=1)
        axes[0][0].set(xlabel="optimiser step", ylabel="training loss", title="training loss")
        if val:
            axes[0][1].plot(*zip(*val), marker="o")
            axes[0][1].set(xlabel="epoch", ylabel=key_metric, title=f"validation {key_metric}")
        fig.tight_layout()
        fig.savefig(self.png, dpi=100)
        plt.close(fig)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
        train_data: Dataset,
        config: TrainConfig,
        step: Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]],
        collate: Callable | None = None,
        val_data: Dataset | None = None,
        evaluate: Callable[[nn.Module, DataLoader], dict[str, Any]] | None = None,
        key_metric: str | None = None,
        make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        on_best: Callable[[nn.Module, dict[str, Any]], None] | None = None,
        find_unused_parameters: bool = False,
    ) -> None:
        """`find_unused_parameters`: some batches leave parameters without a gradient (e.g. an
        audio-only batch never reaches the video encoder); DistributedDataParallel must know."""
        if (val_data is None) != (evaluate is None) or (evaluate is not None and key_metric is None):
            raise ValueError("validation needs val_data, evaluate and key_metric together")
        self.config = config
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = init_distributed(self.device)
        seed_everything(config.seed)
        self.model = model.to(self.device)
        self.optimizer = make_optimizer(self.model)
        self.scheduler = make_scheduler(self.optimizer) if make_scheduler is not None else None
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA GPU; on CPU use bf16 or fp32")
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                             find_unused_parameters=find_unused_parameters)
        self.train_data, self.val_data = train_data, val_data
        self.step_fn, self.evaluate_fn, self.key_metric = step, evaluate, key_metric
        self.collate, self.on_best = collate, on_best
        # One sampler for every world size: the same shuffled order per epoch, split by rank.
        self.sampler = DistributedSampler(train_data, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                          shuffle=True, seed=config.seed, drop_last=self.dist.world_size > 1)
        self.epoch = 0  # epochs completed
        self.global_step = 0  # optimiser steps taken
        self.resumed = False
        # Set when state.pt was written inside an epoch: where that epoch goes on from.
        self._mid_epoch: dict[str, Any] | None = None
        self.best: dict[str, Any] = {"value": -math.inf, "epoch": None}
        self.state_path = self.out_dir / STATE_FILE
        if config.resume and self.state_path.exists():
            self._load_state()

    # Checkpoints -----------------------------------------------------------------------------
    def _save_state(self, batches_done: int = 0, running: dict[str, float] | None = None) -> None:
        """Every rank calls this (their RNG states are gathered); rank 0 writes.

        `batches_done` > 0: a checkpoint inside the current epoch, after that many batches."""
        rng = [_rng_state()]
        if self.dist.world_size > 1 and batches_done:
            import torch.distributed as dist

            rng = [None] * self.dist.world_size
            dist.all_gather_object(rng, _rng_state())
        if not self.dist.is_main:
            return
        state = {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "rng": rng,  # one per rank for a mid-epoch checkpoint; epoch ends reseed anyway
            "batches_done": batches_done,
            "running": running or {},
            "world_size": self.dist.world_size,
            "config": asdict(self.config),
        }
        partial = self.state_path.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.state_path)  # a crash mid-write never leaves a broken checkpoint

    def _load_state(self) -> None:
        try:  # tensors and plain containers only: a crafted state.pt cannot run code on resume
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"{self.state_path} holds objects other than tensors and plain values, so it was not loaded (loading "
                "it could run code). A state from before this version, or not made by this trainer: delete it or "
                f"start afresh with --no-resume. ({str(err).splitlines()[0]})") from err
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step, self.best = state["epoch"], state["global_step"], state["best"]
        self.resumed = True
        if state.get("batches_done"):
            if state["world_size"] != self.dist.world_size:
                raise ValueError(
                    f"{self.state_path} was saved inside epoch {self.epoch + 1} by {state['world_size']} process(es); "
                    f"this run has {self.dist.world_size}. Resume with {state['world_size']}, or delete the file "
                    "to start over (epoch-end checkpoints resume with any number).")
            self._mid_epoch = {"batches_done": state["batches_done"], "running": state["running"],
                               "rng": state["rng"][self.dist.rank]}
        if self.dist.is_main:
            done = state.get("batches_done", 0)
            where = f"inside epoch {self.epoch + 1} after batch {done}" if done else f"after epoch {self.epoch}"
            log.warning("resuming from %s: %s (step %d)", self.state_path, where, self.global_step)

    # Loop ---------------------------------------------------------------------------------------
    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _loader(self, data: Dataset, sampler=None, shuffle: bool = False) -> DataLoader:
        return DataLoader(data, batch_size=self.config.batch_size, sampler=sampler, shuffle=shuffle,
                          num_workers=self.config.num_workers, collate_fn=self.collate)

    def fit(self) -> dict[str, Any]:
        metrics = None
        if self.dist.is_main:
            metrics = MetricsLog(self.out_dir, self.config.tensorboard,
                                 resumed_step=self.global_step if self.resumed else None)
        result = None
        try:
            while self.epoch < self.config.epochs:
                self._train_epoch(self.epoch, metrics)
                self.epoch += 1
                result = self._validate(self.epoch, metrics)
                if self.scheduler is not None:
                    self.scheduler.step()
                self._save_state()
                if metrics is not None:
                    metrics.plot(self.key_metric)
        finally:
            if metrics is not None:
                metrics.close()
        return {"epochs": self.epoch, "steps": self.global_step, "best": self.best,
                "last": result, "out_dir": str(self.out_dir)}

    def _train_epoch(self, epoch: int, metrics: MetricsLog | None) -> None:
        # Everything random in an epoch follows from (seed, epoch, rank): resuming at an epoch
        # boundary replays exactly what an uninterrupted run would have done. Inside an epoch, the
        # sampler skips the batches already done and the RNG state saved there is put back.
        seed_everything(self.config.seed + 1000 * epoch + self.dist.rank)
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_data, "set_epoch"):
            self.train_data.set_epoch(epoch)
        resume, self._mid_epoch = self._mid_epoch, None
        start = resume["batches_done"] if resume else 0
        batches = math.ceil(len(self.sampler) / self.config.batch_size)
        total = batches if self.config.max_steps_per_epoch is None else min(batches, self.config.max_steps_per_epoch)
        sampler = SkipFirst(self.sampler, start * self.config.batch_size) if start else self.sampler
        batch_iter = iter(self._loader(self.train_data, sampler=sampler))  # draws a worker seed from the RNG
        running: dict[str, float] = dict(resume["running"]) if resume else {}
        if resume:
            _set_rng_state(resume["rng"])
        self.model.train()
        bar = None
        if self.config.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch",
                       leave=False)
        accumulate = self.config.grad_accumulation
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(batch_iter, start=start):
            if index >= total:
                break
            with self._autocast():
                loss, values = self.step_fn(self.model, batch)
            if not torch.isfinite(loss.detach()):
                kept = self.state_path if self.state_path.exists() else "none yet (diverged in the first epoch)"
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, batch {index + 1} (step {self.global_step}); "
                    f"stopped. Last good checkpoint: {kept}. Lower the learning rate or check the data.")
            self.scaler.scale(loss / accumulate).backward()
            last_of_group = (index + 1) % accumulate == 0 or index + 1 == total
            if last_of_group:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.global_step += 1
            values = {"loss": float(loss.detach()), **values}
            for name, value in values.items():
                running[name] = running.get(name, 0.0) + value
            if metrics is not None and last_of_group:
                metrics.write(epoch + 1, self.global_step, "train", values)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.4f}")
            every = self.config.save_every_steps
            if last_of_group and every and self.global_step % every == 0 and index + 1 < total:
                self._save_state(batches_done=index + 1, running=running)
        if bar is not None:
            bar.close()
        if metrics is not None and total:
            averaged = {f"epoch_{k}": v / total for k, v in running.items()}
            metrics.write(epoch + 1, self.global_step, "train", averaged)
            log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in averaged.items()))

    def _validate(self, epoch: int, metrics: MetricsLog | None) -> dict[str, Any] | None:
        if self.evaluate_fn is None:
            return None
        result = None
        if self.dist.is_main:  # the whole validation set on rank 0; the others wait
            self.model.eval()
            with torch.no_grad(), self._autocast():
                result = self.evaluate_fn(unwrap(self.model), self._loader(self.val_data))
            if self.key_metric not in result:
                raise KeyError(f"evaluate() returned no {self.key_metric!r}; it returned {sorted(result)}")
            if metrics is not None:
                metrics.write(epoch, self.global_step, "val", result)
            if result[self.key_metric] > self.best["value"]:
                self.best = {"value": float(result[self.key_metric]), "epoch": epoch}
                if self.on_best is not None:
                    self.on_best(unwrap(self.model), result)
        if self.dist.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
        return result

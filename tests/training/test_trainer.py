"""The shared training loop on a small linear task: resume, torchrun DDP, NaN stop, logs."""

import csv
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from socialmae_rt.training.trainer import TrainConfig, Trainer, TrainingDiverged


def linear_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = x @ torch.arange(1.0, 7.0) + 0.1 * torch.randn(n, generator=g)
    return TensorDataset(x, y)


def step(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x).squeeze(-1), y), {}


def evaluate(model, loader):
    losses = [nn.functional.mse_loss(model(x).squeeze(-1), y).item() for x, y in loader]
    return {"neg_mse": -sum(losses) / len(losses)}


def make_trainer(out_dir, epochs, **overrides):
    torch.manual_seed(0)
    config = TrainConfig(out_dir=str(out_dir), epochs=epochs, batch_size=8, progress=False, **overrides)
    return Trainer(nn.Linear(6, 1), lambda m: torch.optim.Adam(m.parameters(), lr=0.05), linear_data(), config, step,
                   val_data=linear_data(32, seed=1), evaluate=evaluate, key_metric="neg_mse",
                   make_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.7))


def test_training_learns_and_writes_state_metrics_and_curves(tmp_path):
    summary = make_trainer(tmp_path, epochs=4).fit()
    assert summary["epochs"] == 4 and summary["steps"] == 4 * 8
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    val = [float(r["value"]) for r in rows if r["split"] == "val"]
    assert len(val) == 4 and val[-1] > val[0]  # neg MSE rises: it learns
    assert summary["best"]["epoch"] == 4
    assert (tmp_path / "state.pt").exists() and (tmp_path / "learning_curves.png").stat().st_size > 5000


def test_resume_after_an_interrupted_run_continues_exactly(tmp_path):
    straight = make_trainer(tmp_path / "straight", epochs=3)
    straight.fit()
    first = make_trainer(tmp_path / "resumed", epochs=1)
    first.fit()
    second = make_trainer(tmp_path / "resumed", epochs=3)  # same out_dir: picks up state.pt
    assert second.epoch == 1
    second.fit()
    for a, b in zip(straight.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    assert second.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]


def test_gradient_accumulation_steps_once_per_group(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, grad_accumulation=3)
    trainer.fit()
    assert trainer.global_step == 3  # 8 batches: steps after 3, 6 and the last (8)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    good = torch.load(tmp_path / "state.pt", weights_only=False)["model"]
    poisoned = make_trainer(tmp_path, epochs=2)
    poisoned.step_fn = lambda model, batch: (model(batch[0]).sum() * float("nan"), {})
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, batch 1.*Last good checkpoint: .*state.pt"):
        poisoned.fit()
    kept = torch.load(tmp_path / "state.pt", weights_only=False)
    assert kept["epoch"] == 1 and all(torch.equal(good[k], kept["model"][k]) for k in good)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        make_trainer("/tmp/unused-socialmae-fp16", epochs=1, precision="fp16", device="cpu")


def test_torchrun_two_processes_keep_identical_weights_and_resume_inside_an_epoch(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(f"""
        import os, torch
        from torch import nn
        from socialmae_rt.training.trainer import TrainConfig, Trainer
        from torch.utils.data import TensorDataset
        rank = os.environ["RANK"]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 6, generator=g); y = x @ torch.arange(1.0, 7.0)
        class Interrupted(Exception):
            pass
        def stepper(die_after):
            calls = [0]
            def step(model, batch):
                calls[0] += 1
                if calls[0] > die_after:
                    raise Interrupted
                # dropout: each rank's RNG matters, so a resume must restore every rank's state
                out = nn.functional.dropout(model(batch[0]), 0.3)
                return nn.functional.mse_loss(out.squeeze(-1), batch[1]), {{}}
            return step
        def run(name, die_after=10**6):
            torch.manual_seed(int(rank))  # different starts: DDP must broadcast rank 0's
            config = TrainConfig(out_dir={str(tmp_path)!r} + "/" + name, epochs=2, batch_size=8, progress=False,
                                 save_every_steps=3)
            trainer = Trainer(nn.Linear(6, 1), lambda m: torch.optim.SGD(m.parameters(), lr=0.01),
                              TensorDataset(x, y), config, stepper(die_after))
            trainer.fit()
            return trainer
        straight = run("straight")
        torch.save(straight.model.module.state_dict(), {str(tmp_path)!r} + f"/straight{{rank}}.pt")
        try:
            run("resumed", die_after=6)  # 4 batches per rank and epoch: dies in epoch 2 after step 6
        except Interrupted:
            pass
        resumed = run("resumed")
        torch.save(resumed.model.module.state_dict(), {str(tmp_path)!r} + f"/resumed{{rank}}.pt")
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_"))}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(29500 + os.getpid() % 1000), str(script)],
                         env=env, capture_output=True, text=True, timeout=180,
                         # its own process group: the elastic agent signals its group when it shuts down
                         start_new_session=True)
    assert run.returncode == 0, run.stderr[-3000:]
    weights = {f"{name}{r}": torch.load(tmp_path / f"{name}{r}.pt") for name in ("straight", "resumed") for r in (0, 1)}
    for key in ("straight1", "resumed0", "resumed1"):
        for name, value in weights["straight0"].items():
            assert torch.equal(value, weights[key][name]), key
    # Each rank saw half the data: 2 epochs x 4 batches of 8.
    assert torch.load(tmp_path / "straight" / "state.pt", weights_only=False)["global_step"] == 8


def test_bf16_autocast_on_cpu_trains(tmp_path):
    summary = make_trainer(tmp_path, epochs=2, precision="bf16").fit()
    rows = [r for r in csv.DictReader((tmp_path / "metrics.csv").open()) if r["split"] == "val"]
    assert summary["epochs"] == 2 and float(rows[-1]["value"]) > float(rows[0]["value"])


class Interrupted(Exception):
    pass


def interrupt_after(batches):
    """A step function that dies on batch number `batches + 1`, like a killed job."""
    calls = {"n": 0}

    def dying_step(model, batch):
        calls["n"] += 1
        if calls["n"] > batches:
            raise Interrupted
        x, y = batch
        # Dropout makes the loss depend on the RNG: resume must restore it exactly.
        return nn.functional.mse_loss(nn.functional.dropout(model(x), 0.3).squeeze(-1), y), {}

    return dying_step


def test_resume_inside_an_epoch_continues_exactly(tmp_path):
    def trainer(out_dir, step_fn, **overrides):
        torch.manual_seed(0)
        config = TrainConfig(out_dir=str(out_dir), epochs=2, batch_size=8, progress=False, save_every_steps=3,
                             **overrides)
        return Trainer(nn.Linear(6, 1), lambda m: torch.optim.Adam(m.parameters(), lr=0.05), linear_data(), config,
                       step_fn, make_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.7))

    straight = trainer(tmp_path / "straight", interrupt_after(10**6))
    straight.fit()
    # 8 batches per epoch; checkpoints at steps 3, 6, 8 (epoch end), 9, 12; the run dies in batch 15.
    with pytest.raises(Interrupted):
        trainer(tmp_path / "resumed", interrupt_after(14)).fit()
    state = torch.load(tmp_path / "resumed" / "state.pt", weights_only=False)
    assert (state["epoch"], state["batches_done"], state["global_step"]) == (1, 4, 12)
    rows_before = list(csv.DictReader((tmp_path / "resumed" / "metrics.csv").open()))
    assert max(int(r["step"]) for r in rows_before) == 14  # logged past the checkpoint before dying

    resumed = trainer(tmp_path / "resumed", interrupt_after(10**6))
    assert (resumed.epoch, resumed.global_step) == (1, 12)
    resumed.fit()
    assert resumed.global_step == straight.global_step == 16
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "resumed" / "metrics.csv").open())
             if r["split"] == "train" and r["metric"] == "loss"]
    assert steps == list(range(1, 17))  # the rows after the checkpoint are not doubled


def test_mid_epoch_checkpoint_refuses_another_world_size(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), epochs=1, batch_size=8, progress=False, save_every_steps=2)
    with pytest.raises(Interrupted):
        Trainer(nn.Linear(6, 1), lambda m: torch.optim.SGD(m.parameters(), lr=0.01), linear_data(), config,
                interrupt_after(3)).fit()
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    state["world_size"] = 2
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="saved inside epoch 1 by 2 process"):
        Trainer(nn.Linear(6, 1), lambda m: torch.optim.SGD(m.parameters(), lr=0.01), linear_data(), config, step)


def test_tensorboard_events_hold_the_logged_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_trainer(tmp_path, epochs=2).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "val/neg_mse"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 17))
    rows = [r for r in csv.DictReader((tmp_path / "metrics.csv").open()) if r["split"] == "val"]
    assert [round(e.value, 4) for e in events.Scalars("val/neg_mse")] == [round(float(r["value"]), 4) for r in rows]


class _Payload:
    """What a crafted state.pt would carry: unpickling it runs `touch <marker>`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_state_file_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    make_trainer(tmp_path, epochs=1).fit()  # a real state.pt loads (tensors and plain values only)
    assert make_trainer(tmp_path, epochs=2).resumed
    marker = tmp_path / "pwned"
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    state["best"] = _Payload(marker)
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="holds objects other than tensors and plain values, so it was not loaded"):
        make_trainer(tmp_path, epochs=2)
    assert not marker.exists()

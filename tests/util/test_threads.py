"""Idle compute threads sleep instead of spinning; pools are sized to the usable cores."""

import os
import subprocess
import sys

import pytest

from socialmae_rt.util.machine import usable_cores
from socialmae_rt.util.threads import IDLE_THREAD_SETTINGS, compute_threads

PROBE = (
    "import os, sys\n"
    "{before}"
    "from socialmae_rt.util.threads import yield_idle_threads, idle_threads_spin\n"
    "yield_idle_threads()\n"
    "import torch\n"
    "print(os.environ['OMP_WAIT_POLICY'], os.environ['KMP_BLOCKTIME'], idle_threads_spin())\n"
)


def run_probe(before: str = "", **env_extra) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in IDLE_THREAD_SETTINGS}
    env.update(env_extra)
    result = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    return result.stdout.split()


def test_settings_are_in_place_before_torch_loads():
    assert run_probe() == ["PASSIVE", "0", "False"]


def test_too_late_after_torch_is_reported():
    assert run_probe(before="import torch\n") == ["PASSIVE", "0", "True"]


def test_the_users_own_settings_win():
    assert run_probe(OMP_WAIT_POLICY="ACTIVE", KMP_BLOCKTIME="200") == ["ACTIVE", "200", "True"]


def test_the_cli_sets_them_before_any_subcommand(monkeypatch, capsys):
    from socialmae_rt.cli import main

    for name in IDLE_THREAD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert main(["info", "--model", "tiny"]) == 0
    assert {name: os.environ[name] for name in IDLE_THREAD_SETTINGS} == IDLE_THREAD_SETTINGS


def test_compute_threads_defaults_to_the_usable_cores():
    assert compute_threads(None) == usable_cores()
    assert compute_threads(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            compute_threads(bad)


def test_torch_and_ort_backends_size_their_pools(tmp_path):
    import torch

    from socialmae_rt.engines import create_backend
    from socialmae_rt.model import SocialMAEConfig

    tiny = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1)
    before = torch.get_num_threads()
    try:
        backend = create_backend("torch", None, tiny, threads=1)
        assert backend.threads == 1 and torch.get_num_threads() == 1
        create_backend("torch", None, tiny)
        assert torch.get_num_threads() == usable_cores()
    finally:
        torch.set_num_threads(before)
    ort = create_backend("ort", None, tiny, cache_dir=tmp_path)
    options = ort.sessions[next(iter(ort.sessions))].get_session_options()
    assert options.intra_op_num_threads == usable_cores() == ort.threads
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

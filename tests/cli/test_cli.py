"""The installed `socialmae-rt` console script, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint
from socialmae_rt.model.profile import count_parameters

SCRIPT = Path(sys.executable).with_name("socialmae-rt")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_info_json_for_tiny():
    result = run_cli("info", "--model", "tiny", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["model"] == "tiny"
    assert row["parameters"] == count_parameters(SocialMAE(SocialMAEConfig.variant("tiny")))
    assert row["gflops"]["audiovisual"] > row["gflops"]["video"] > row["gflops"]["audio"] > 0


def test_info_checks_a_checkpoint(tmp_path):
    config = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1})
    path = save_checkpoint(SocialMAE(config), tmp_path / "m.safetensors")
    result = run_cli("info", "--weights", str(path))
    assert result.returncode == 0, result.stderr
    assert "loaded strictly; heads {'emotion': 6, 'laughter': 1}" in result.stdout
    assert "checkpoint" in result.stdout
    # says what it does while it loads, then what runs now and what may replace it
    assert f"info: loading {path} and counting its FLOPs" in result.stderr
    assert "info: looking at this CPU, the installed runtimes and the engine cache" in result.stderr
    assert f"with these weights ({path}), from this cache: runs " in result.stdout


def test_bad_checkpoint_is_one_clear_line(tmp_path):
    path = tmp_path / "broken.pth"
    torch.save([1, 2], path)
    result = run_cli("info", "--weights", str(path))
    assert result.returncode == 2
    assert "error:" in result.stderr and "expected a non-empty state dict" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("info", "--weights", str(tmp_path / "nope.pth"))
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr


def test_our_runtime_errors_are_one_line_too(tmp_path, tone_wav):
    result = run_cli("run", "--source", "7", "--mic", "none")  # no camera 7 here: SourceError
    assert result.returncode == 2
    assert "socialmae-rt run: error: no source could be opened: camera 7" in result.stderr
    assert "Traceback" not in result.stderr
    broken = tmp_path / "export"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    clip = tone_wav(5.0, amplitude=0)  # a real file, so the run gets as far as the backend
    result = run_cli("run", "--source", str(clip), "--backend", "ort", "--weights", str(broken))
    assert result.returncode == 2, result.stderr[-1000:]
    assert "manifest.json is not valid JSON" in result.stderr and "Traceback" not in result.stderr


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(stream, wanted: str, timeout_s: float = 120.0) -> str:
    import select
    import time

    deadline, seen = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.5)
        if ready:
            line = stream.readline()
            seen += line
            if wanted in line:
                return seen
    raise AssertionError(f"no line with {wanted!r} within {timeout_s} s; got:\n{seen[-2000:]}")


def test_sigterm_while_running_stops_cleanly_with_the_summary(tone_wav):
    import signal

    process = _start("run", "--source", str(tone_wav(8.0)), "--model", "tiny", "--realtime")
    try:
        _wait_for_line(process.stdout, "audio  A")  # the first record line
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)  # generous: a background build may be stopping
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-2000:]
    assert "done: " in stdout and "Traceback" not in stderr


def test_sigint_while_the_model_loads_is_one_line_not_a_traceback(tone_wav):
    import signal

    process = _start("run", "--source", str(tone_wav(8.0)), "--model", "base")
    try:
        _wait_for_line(process.stderr, "NO WEIGHTS GIVEN")  # logged as the (slow) base model is built
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "socialmae-rt run: interrupted before it started; nothing was written" in stderr


def test_options_are_checked_before_anything_loads(tmp_path, tone_wav):
    for args, message in ((["--hop", "0"], "hop must be between 0.25 s"), (["--threads", "0"], "threads must be >= 1"),
                          (["--output", str(tmp_path)], "cannot write there (Is a directory)")):
        result = run_cli("run", "--source", str(tone_wav(5.0)), "--model", "base", *args)
        assert result.returncode == 2 and message in result.stderr and "NO WEIGHTS GIVEN" not in result.stderr
    result = run_cli("run", "--source", str(tone_wav(0.5)), "--model", "tiny")
    assert result.returncode == 2
    assert "clip tone.wav is 0.5 s, shorter than the 4 s window: no window can be formed" in result.stderr


def test_prepare_backend_builds_the_openvino_ir_and_says_where(tmp_path):
    pytest.importorskip("openvino")
    env = {**os.environ, "SOCIALMAE_RT_CACHE": str(tmp_path)}
    result = subprocess.run([str(SCRIPT), "prepare-backend", "--backend", "ov", "--model", "tiny"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ov (")
    assert "exporting ONNX graphs" in result.stderr
    ir_line = next(line for line in result.stdout.splitlines() if "OpenVINO IR:" in line)
    assert (Path(ir_line.split("OpenVINO IR:")[1].strip()) / "audiovisual.xml").is_file()


def test_prepare_backend_refuses_calibration_clips_for_other_backends(tmp_path):
    result = run_cli("prepare-backend", "--backend", "ort", "--calibration-clips", str(tmp_path / "a.mp4"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "socialmae-rt prepare-backend: error: --calibration-clips calibrates int8 OpenVINO graphs: use it with "
        "--backend ov-int8 or auto, not ort"]


def test_every_subcommand_has_help_and_loads_nothing_heavy_for_it():
    """`socialmae-rt SUB --help` for every subcommand in one process (argparse exits 0 after printing),
    and building the parser imports neither torch nor MediaPipe (help and argument errors stay fast)."""
    code = (
        "import sys, contextlib, io\n"
        "from socialmae_rt.cli import build_parser, main\n"
        "import argparse\n"
        "names = [n for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction) for n in a.choices]\n"
        "assert 'torch' not in sys.modules and 'mediapipe' not in sys.modules, 'parser build imported torch'\n"
        "for name in names:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main([name, '--help'])\n"
        "        except SystemExit as done:\n"
        "            assert done.code == 0, (name, done.code)\n"
        "    assert out.getvalue().startswith('usage: socialmae-rt ' + name), name\n"
        "print(len(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip()) >= 20

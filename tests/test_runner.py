"""The run path's order: a backend that may build is made before capture starts, and says so."""

import pytest

from socialmae_rt.runner import LOAD_ONLY_BACKENDS, RunOptions, backend_before_capture, run


def test_load_only_backends_wait_for_the_first_window():
    assert backend_before_capture(RunOptions(backend="torch")) is None
    assert set(LOAD_ONLY_BACKENDS) == {"torch", "torch-bf16"}


def test_a_building_backend_is_made_up_front_with_its_progress(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("SOCIALMAE_RT_CACHE", str(tmp_path))
    said = []
    backend = backend_before_capture(RunOptions(backend="ov", model="tiny"), on_status=said.append)
    assert backend.info.name == "ov"
    assert any(message.startswith("exporting ONNX graphs") for message in said)
    assert any("converting the audiovisual graph to OpenVINO IR" in message for message in said)
    # the second start finds everything built: no progress to report
    said.clear()
    backend_before_capture(RunOptions(backend="ov", model="tiny"), on_status=said.append)
    assert said == []


def test_run_names_the_backend_it_built(tmp_path, monkeypatch, tone_wav, capsys):
    pytest.importorskip("openvino")
    monkeypatch.setenv("SOCIALMAE_RT_CACHE", str(tmp_path))
    import io

    out = io.StringIO()
    status = run(RunOptions(source=str(tone_wav(5.0)), backend="ov", model="tiny", quiet=True), out)
    assert out.getvalue().startswith("socialmae-rt: ov (")
    assert status["results"] >= 1
    assert "exporting ONNX graphs" in capsys.readouterr().err

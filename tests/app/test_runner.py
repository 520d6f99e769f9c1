"""The run path's order: a backend that may build is made before capture starts, and says so."""

import pytest

from socialmae_rt.app.assemble import LOAD_ONLY_BACKENDS, backend_before_capture
from socialmae_rt.app.options import RunOptions
from socialmae_rt.app.runner import run


def test_load_only_backends_wait_for_the_first_window():
    assert backend_before_capture(RunOptions(backend="torch")) is None
    assert set(LOAD_ONLY_BACKENDS) == {"torch", "torch-bf16"}


@pytest.fixture(scope="module")
def built_ort_cache(tmp_path_factory):
    """One first start of `ort` for the tiny model (the ONNX export): the cache and what it said."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOCIALMAE_RT_CACHE", str(cache))
        said = []
        backend = backend_before_capture(RunOptions(backend="ort", model="tiny"), on_status=said.append)
        backend.close()
    return cache, backend.info.name, said


def test_a_building_backend_is_made_up_front_with_its_progress(built_ort_cache, monkeypatch):
    cache, name, said = built_ort_cache
    assert name == "ort"
    assert any(message.startswith("exporting ONNX graphs") for message in said)
    # the second start finds everything built: no progress to report
    monkeypatch.setenv("SOCIALMAE_RT_CACHE", str(cache))
    said = []
    backend_before_capture(RunOptions(backend="ort", model="tiny"), on_status=said.append).close()
    assert said == []


def test_run_names_the_backend_it_built(built_ort_cache, monkeypatch, tone_wav):
    monkeypatch.setenv("SOCIALMAE_RT_CACHE", str(built_ort_cache[0]))
    import io

    out = io.StringIO()
    status = run(RunOptions(source=str(tone_wav(5.0)), backend="ort", model="tiny", quiet=True), out)
    assert out.getvalue().startswith("socialmae-rt: ort (")
    assert status.results >= 1


def test_duration_is_seconds_of_input_for_an_unpaced_file_too(tone_wav):
    """`run --duration` used to be ignored for a file read as fast as possible; it means media time
    there, as `demo --duration` does."""
    import io

    wav = tone_wav(9.0)
    whole = run(RunOptions(source=str(wav), backend="torch", model="tiny", quiet=True), io.StringIO())
    cut = run(RunOptions(source=str(wav), backend="torch", model="tiny", quiet=True, duration=5.0), io.StringIO())
    assert whole.windows == 11  # windows ending 4.0, 4.5, ..., 9.0
    assert 2 <= cut.windows <= 4  # windows ending 4.0 .. 5.0 (+ the one the last read completed)

"""From the released files to records carrying every task: `weights import` three times, then
`socialmae-rt run --weights <bundle>` on a clip with a face and speech (MediaPipe, PyAV), each
task equal to what its own checkpoint gives alone on the same windows."""

from __future__ import annotations

import json

import pytest

from socialmae_rt.cli import main
from socialmae_rt.media.sample import build_sample_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # 0-3.2 s face + speech, 3.2-4.8 s no face, 4.8-6.4 s face + silence, 6.4-8 s face + speech.
    return build_sample_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=8.0, fps=10, width=320,
                             height=240).path


def _records(path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["window_end_ns"], r["face_id"]): r for r in rows if r.get("schema") == "socialmae_rt.result/1"}


def _run(clip, weights, out) -> dict:
    # torch: the bundle is under test here, not the backend choice (auto would build int8 per file)
    assert main(["run", "--source", str(clip), "--weights", *weights, "--backend", "torch", "--output", str(out),
                 "--quiet"]) == 0
    return _records(out)


def test_import_then_run_gives_every_task_as_each_checkpoint_alone(clip, released_files, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    for task in ("emotion", "laughter", "personality"):
        assert main(["weights", "import", str(released_files[task]), "--task", task, "--out", str(bundle)]) == 0
    printed = capsys.readouterr()
    assert "ASSUMED" in printed.out and f"run it: socialmae-rt run --weights {bundle}" in printed.out
    together = _run(clip, [str(bundle)], tmp_path / "bundle.jsonl")
    assert f"emotion <- {bundle / 'emotion.safetensors'}" in capsys.readouterr().out
    modalities = {r["modality"] for r in together.values()}
    assert {"audiovisual", "audio"} <= modalities  # faces and the no-face stretch
    for record in together.values():
        assert record["emotion"] and record["laughter"] and record["personality"]
        assert record["random_weights"] is False
    alone = {task: _run(clip, [str(bundle / f"{task}.safetensors")], tmp_path / f"{task}.jsonl")
             for task in ("emotion", "laughter", "personality")}
    for key, record in together.items():
        assert alone["emotion"][key]["laughter"] is None  # a single task checkpoint answers only its task
        for label, value in record["emotion"].items():
            assert value == pytest.approx(alone["emotion"][key]["emotion"][label], abs=1e-5)
        assert record["laughter"]["probability"] == pytest.approx(
            alone["laughter"][key]["laughter"]["probability"], abs=1e-5)
        for trait, value in record["personality"].items():
            assert value == pytest.approx(alone["personality"][key]["personality"][trait], abs=1e-5)
    # task=checkpoint entries give the same records as the bundle folder.
    entries = [f"{task}={bundle / (task + '.safetensors')}" for task in ("personality", "emotion", "laughter")]
    assert _run(clip, entries, tmp_path / "entries.jsonl").keys() == together.keys()


def test_bad_bundles_fail_before_any_model_loads(clip, released_files, tmp_path, capsys):
    assert main(["run", "--source", str(clip), "--weights", "emotion=a.safetensors", "emotion=b.safetensors"]) == 2
    assert "two checkpoints for emotion" in capsys.readouterr().err
    bundle = tmp_path / "b"
    main(["weights", "import", str(released_files["personality"]), "--task", "personality", "--out", str(bundle)])
    capsys.readouterr()
    code = main(["run", "--source", str(clip), "--weights", f"emotion={bundle / 'personality.safetensors'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "has no 'emotion' head" in err
    code = main(["weights", "import", str(released_files["personality"]), "--task", "emotion", "--out", str(bundle)])
    assert code == 2 and "a released emotion head has 6 outputs; this one has 5" in capsys.readouterr().err


def test_info_profiles_each_checkpoint_of_a_bundle_and_their_sum(bundle_dir, capsys):
    assert main(["info", "--weights", str(bundle_dir), "--json"]) == 0
    out = capsys.readouterr().out
    profiles = json.loads(out[out.index("[\n"):])
    assert [p["model"] for p in profiles] == ["emotion", "laughter", "personality", "bundle"]
    assert profiles[-1]["parameters"] == sum(p["parameters"] for p in profiles[:-1])
    assert "'laughter': ['neutral', 'smile', 'laughter']" in out

"""`--weights` values: one checkpoint, task=checkpoint entries, a bundle directory; bad ones named."""

from __future__ import annotations

import json

import pytest

from socialmae_rt.weights.bundle import BundleEntry, parse_weights, read_bundle, write_bundle_entry


def test_nothing_means_random_and_one_path_is_a_single_checkpoint(tmp_path):
    assert parse_weights(None).single is None and not parse_weights("  ").is_bundle
    spaced = tmp_path / "my weights.safetensors"
    spaced.write_bytes(b"x")
    assert parse_weights(str(spaced)).single == str(spaced)  # a single path may hold spaces
    assert parse_weights(["ft.pth"]).single == "ft.pth"


def test_entries_come_back_in_record_order_from_a_string_or_a_list():
    spec = parse_weights("personality=fi.safetensors emotion=cremad.safetensors laughter=ndc.safetensors")
    assert [e.task for e in spec.entries] == ["emotion", "laughter", "personality"]
    assert spec.tasks == {"emotion": "cremad.safetensors", "laughter": "ndc.safetensors",
                          "personality": "fi.safetensors"}
    assert parse_weights(["laughter=a.safetensors", "emotion=b.safetensors"]).entries == (
        BundleEntry("emotion", "b.safetensors"), BundleEntry("laughter", "a.safetensors"))


def test_a_bundle_directory_lists_its_tasks_and_its_encoder(tmp_path):
    write_bundle_entry(tmp_path, "personality", "personality.safetensors")
    write_bundle_entry(tmp_path, "encoder", "encoder.safetensors")
    write_bundle_entry(tmp_path, "emotion", "emotion.safetensors")
    spec = parse_weights(str(tmp_path))
    assert spec.tasks == {"emotion": str(tmp_path / "emotion.safetensors"),
                          "personality": str(tmp_path / "personality.safetensors")}
    assert spec.encoder == str(tmp_path / "encoder.safetensors")
    assert list(json.loads((tmp_path / "bundle.json").read_text())["tasks"]) == ["emotion", "personality", "encoder"]


@pytest.mark.parametrize("value, message", [
    ("emotion=a.safetensors emotion=b.safetensors", "two checkpoints for emotion"),
    ("smile=a.safetensors", "unknown task 'smile'; expected one of emotion, laughter, personality"),
    ("emotion=a.safetensors b.safetensors", "mix of task=checkpoint entries and plain paths"),
    ("emotion=", "no checkpoint after 'emotion='"),
    (["a.safetensors", "b.safetensors"], "2 checkpoints given without tasks"),
])
def test_bad_specs_are_one_clear_error(value, message):
    with pytest.raises(ValueError, match=message):
        parse_weights(value)


def test_a_bundle_file_that_is_not_ours_or_lists_no_task(tmp_path):
    (tmp_path / "bundle.json").write_text('{"tasks": {}}')
    with pytest.raises(ValueError, match="is not a socialmae_rt.bundle file"):
        read_bundle(tmp_path)
    write_bundle_entry(tmp_path / "b", "encoder", "encoder.safetensors")
    with pytest.raises(ValueError, match="lists no perception task yet"):
        read_bundle(tmp_path / "b")

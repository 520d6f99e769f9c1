"""`socialmae-rt cache`: what the engine cache holds, with sizes, and pruning what no backend loads."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from socialmae_rt.cli import main
from socialmae_rt.engines.onnx_export import export_onnx
from socialmae_rt.model import SocialMAE, SocialMAEConfig

pytest.importorskip("openvino")

from socialmae_rt.engines.openvino_ir import prepare_ir  # noqa: E402

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1)


def test_list_then_prune_removes_only_what_no_backend_loads(tmp_path, capsys):
    torch.manual_seed(0)
    export = export_onnx(SocialMAE(TINY).eval(), tmp_path / "onnx" / "abc123", source="w.safetensors")
    fp32 = prepare_ir(export, "fp32")
    home = fp32.directory.parent
    refused = home / "int8-0123456789abcdef"  # an int8 IR a live shadow check refused
    shutil.copytree(fp32.directory, refused)
    manifest = json.loads((refused / "manifest.json").read_text())
    (refused / "manifest.json").write_text(json.dumps({**manifest, "kind": "int8"}))
    refused.with_name(refused.name + ".refused.json").write_text('{"error": "refused while running"}')
    (home / ".int8-staging").mkdir()  # an interrupted build
    (home / ".int8-staging" / "audio.bin").write_bytes(b"x" * 1000)
    (tmp_path / "onnx" / "sources").mkdir()
    (tmp_path / "onnx" / "sources" / "deadbeef").write_text("gone\n")  # a link to an export no longer there

    assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "ONNX export of w.safetensors" in listed and "OpenVINO fp32 IR" in listed
    assert "prune would remove: refused (gate or live shadow check)" in listed
    assert "prune would remove: left by an interrupted build" in listed
    assert "prune would remove: its export gone is gone" in listed
    assert listed.rstrip().splitlines()[-1].startswith(f"{tmp_path}: ") and "would free" in listed
    assert refused.is_dir()  # listing changes nothing

    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    assert "freed" in capsys.readouterr().out
    assert not refused.exists() and not (home / ".int8-staging").exists()
    assert not (tmp_path / "onnx" / "sources" / "deadbeef").exists()
    assert fp32.directory.is_dir() and (export.directory / "audiovisual.onnx").is_file()  # what backends load stays
    assert refused.with_name(refused.name + ".refused.json").is_file()  # the marker spares a rebuild
    prepare_ir(export, "fp32")  # still loads from the cache

    assert main(["cache", "prune", "--unused-days", "-1", "--cache-dir", str(tmp_path)]) == 0
    assert not export.directory.exists()  # not used "for -1 days": everything of that export goes


def test_an_empty_cache_says_so(tmp_path, capsys):
    assert main(["cache", "--cache-dir", str(tmp_path / "none")]) == 0
    assert capsys.readouterr().out.strip().endswith(": empty")

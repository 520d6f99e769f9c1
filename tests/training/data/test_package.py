"""The package's public names load lazily and all resolve."""

from __future__ import annotations

import subprocess
import sys

import socialmae_rt.training.data as data


def test_every_exported_name_resolves():
    for name in data.__all__:
        assert getattr(data, name) is not None, name


def test_reading_a_manifest_does_not_import_torch_or_mediapipe():
    code = (
        "import sys; import socialmae_rt.training; heavy = ('torch', 'mediapipe'); "
        "before = {m for m in heavy if m in sys.modules}; "
        "from socialmae_rt.training.data import read_manifest, read_crema_d, read_first_impressions, SplitConfig; "
        "print(sorted(m for m in heavy if m in sys.modules and m not in before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

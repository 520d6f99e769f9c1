"""Every source keeps the Source contract the pipeline relies on (attributes included)."""

import pytest

from socialmae_rt.capture.base import Source
from socialmae_rt.capture.camera import CameraConfig, CameraSource
from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.capture.microphone import MicConfig, MicSource


@pytest.mark.parametrize(
    "make, video, audio, clock",
    [
        (lambda p: CameraSource(CameraConfig(device=0)), True, False, "monotonic"),
        (lambda p: MicSource(MicConfig()), False, True, "monotonic"),
        (lambda p: MediaFileSource(MediaFileConfig(str(p))), False, False, "media"),  # tracks known after open()
        (lambda p: MediaFileSource(MediaFileConfig(str(p), realtime=True)), False, False, "monotonic"),
    ],
)
def test_sources_keep_the_contract(tmp_path, make, video, audio, clock):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"")
    source = make(path)
    assert isinstance(source, Source)
    assert (source.has_video, source.has_audio, source.clock) == (video, audio, clock)
    source.close()  # closing a never-opened source is fine
    source.close()

"""MicSource on real PyAudio streams: a PulseAudio null sink's monitor, seen through ALSA.

There is no sound card on our machines, so the tests start their own PulseAudio server (a user
process with its own runtime dir) with null sinks, and captures a sink's `.monitor` through
PortAudio's ALSA host and the ALSA `pulse` plugin. Tones played into the sink with `pacat` come
back through MicSource in real time, as from a microphone.

PortAudio reads the ALSA configuration once, when PyAudio() initialises, so each scenario runs in
a subprocess whose HOME holds our `.asoundrc`: this file, run as a script, is that subprocess.
It prints one `MIC_RESULT {json}` line that the test asserts on.

Why not an ALSA `file` device: it has no clock (capture ran ~1000x real time here) and, past the
end of its input file, it keeps returning stale buffer contents, so neither timing nor length
could be tested. A null sink with a stream playing into it delivers on a real clock.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libasound2-plugins (scripts/install_system_deps.sh)"
ALSA_PULSE_PLUGIN = "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"
RESULT_MARKER = "MIC_RESULT "
SCENARIO_TIMEOUT_S = 30.0  # a scenario normally takes 1-3 s; this only stops a hung one

TONE_RATE = 48000  # what pacat plays into the sink
OUTPUT_RATE = 16000
LEAD_S = 0.15  # silence around the tones: PulseAudio may drop a few ms as a stream starts
TONE_S = 0.3  # each tone's length
TONES_HZ = (440.0, 1000.0)
LEFT_GAIN, RIGHT_GAIN = 0.6, 0.2  # different per channel, so the mono mix shows it averaged (0.4)

MIC_PCM = "testmic_monitor"
DECOY_PCM = "testmic_speaker"  # output only, listed before MIC_PCM: name matching must skip it
STALL_PCM = "stallmic"

ASOUNDRC = f"""
# Test microphones: monitors of PulseAudio null sinks (tests/capture/test_microphone.py).
pcm.{DECOY_PCM} {{
    type asym
    playback.pcm "null"
    hint {{ show on description "output-only decoy" }}
}}
pcm.{MIC_PCM} {{
    type pulse
    device "micsink.monitor"
    hint {{ show on description "test microphone: monitor of null sink micsink" }}
}}
pcm.{STALL_PCM} {{
    type pulse
    device "stallsink.monitor"
    hint {{ show on description "test microphone: monitor of null sink stallsink" }}
}}
"""

NO_INPUT_ASOUNDRC = f"""
pcm.{DECOY_PCM} {{
    type asym
    playback.pcm "null"
    hint {{ show on description "output-only decoy" }}
}}
"""

missing_tools = [tool for tool in ("pulseaudio", "pacat", "pactl") if shutil.which(tool) is None]
if not glob.glob(ALSA_PULSE_PLUGIN):
    missing_tools.append("the ALSA pulse plugin")
needs_pulse = pytest.mark.skipif(bool(missing_tools), reason=f"missing {', '.join(missing_tools)}: {INSTALL_HINT}")


# -- the test side: ALSA config and subprocess runner (the PulseAudio server: tests/conftest.py) ----


@pytest.fixture(scope="module")
def pulse(tmp_path_factory, pulse_audio):
    server = pulse_audio.PulseServer(tmp_path_factory.mktemp("pulse"), sinks=("micsink", "stallsink"), asoundrc=ASOUNDRC)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture()
def private_pulse(tmp_path, pulse_audio):
    """A server of its own, for a test that kills it."""
    server = pulse_audio.PulseServer(tmp_path / "pulse", sinks=("stallsink",), asoundrc=ASOUNDRC)
    try:
        yield server.start()
    finally:
        server.stop()


def run_scenario(name: str, env: dict[str, str], **args) -> dict:
    """Run `name` below in a subprocess with `env`; its MIC_RESULT json."""
    completed = subprocess.run(
        [sys.executable, __file__, name, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert completed.returncode == 0 and lines, (
        f"scenario {name} failed (exit {completed.returncode})\nstdout:\n{completed.stdout[-3000:]}\n"
        f"stderr:\n{completed.stderr[-3000:]}"
    )
    return json.loads(lines[-1][len(RESULT_MARKER) :])


def write_tone_file(path: Path) -> Path:
    """LEAD_S silence, 440 Hz, 1 kHz, LEAD_S silence: int16 stereo at TONE_RATE, channels at
    different gains."""
    t = np.arange(int(TONE_S * TONE_RATE)) / TONE_RATE
    silence = np.zeros(int(LEAD_S * TONE_RATE))
    mono = np.concatenate([silence, *(np.sin(2 * np.pi * hz * t) for hz in TONES_HZ), silence])
    stereo = np.stack([LEFT_GAIN * mono, RIGHT_GAIN * mono], axis=1)  # [frames, 2]
    (stereo * 32767).round().astype("<i2").tofile(path)
    return path


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.shape[0])))
    return float(np.fft.rfftfreq(samples.shape[0], 1.0 / rate)[np.argmax(spectrum)])


# -- capturing tones ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tone_capture(pulse, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    result = run_scenario(
        "capture_tones",
        pulse.env,
        device=MIC_PCM,
        channels=2,
        tone_file=str(write_tone_file(folder / "tones.raw")),
        samples_out=str(folder / "captured.npy"),
    )
    result["samples"] = np.load(folder / "captured.npy")
    return result


def tone_region(samples: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample louder than the silence around the tones."""
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    assert loud.size, "no tone captured at all"
    return int(loud[0]), int(loud[-1]) + 1


@needs_pulse
def test_captured_tones_come_out_at_16k_in_order(tone_capture):
    samples = tone_capture["samples"]
    assert samples.dtype == np.float32 and tone_capture["sample_rates"] == [OUTPUT_RATE]
    start, stop = tone_region(samples)
    half = (stop - start) // 2
    margin = half // 8  # keep the transitions out of each spectrum
    first = samples[start + margin : start + half - margin]
    second = samples[start + half + margin : stop - margin]
    assert dominant_hz(first, OUTPUT_RATE) == pytest.approx(TONES_HZ[0], abs=5)
    assert dominant_hz(second, OUTPUT_RATE) == pytest.approx(TONES_HZ[1], abs=5)


@needs_pulse
def test_stereo_is_averaged_to_mono(tone_capture):
    samples = tone_capture["samples"]
    start, stop = tone_region(samples)
    peak = float(np.max(np.abs(samples[start:stop])))
    assert peak == pytest.approx((LEFT_GAIN + RIGHT_GAIN) / 2, abs=0.03)


@needs_pulse
def test_all_the_audio_arrives(tone_capture):
    samples = tone_capture["samples"]
    start, stop = tone_region(samples)
    played = int(len(TONES_HZ) * TONE_S * OUTPUT_RATE)
    assert abs((stop - start) - played) <= 64  # 4 ms; one lost 32 ms buffer would be 512 samples
    # against the clock: what was yielded covers the time from the first stamp to close(), less
    # what was still on its way (PulseAudio + PortAudio buffers, the resampler's filter)
    audio_s = samples.shape[0] / OUTPUT_RATE
    wall_s = (tone_capture["closed_ns"] - tone_capture["stamps_ns"][0]) / 1e9
    assert 0.0 <= wall_s - audio_s < 0.3, (wall_s, audio_s)


@needs_pulse
def test_stamps_are_contiguous_at_the_output_rate(tone_capture):
    stamps = np.array(tone_capture["stamps_ns"], dtype=np.int64)
    lengths = np.array(tone_capture["lengths"], dtype=np.int64)
    durations = lengths * 1_000_000_000 // OUTPUT_RATE
    assert np.all(np.diff(stamps) > 0)
    assert np.all(np.abs(stamps[1:] - (stamps[:-1] + durations[:-1])) <= 1)
    # the first stamp is a capture time: before the first chunk was handed to us
    assert stamps[0] < tone_capture["first_received_ns"]


@needs_pulse
def test_counters_and_status(tone_capture):
    counters = tone_capture["status"]["counters"]
    assert set(counters) >= {"chunks", "samples", "overflows", "dropped_chunks", "gaps"}
    assert counters["samples"] == tone_capture["samples"].shape[0]
    assert counters["chunks"] >= len(tone_capture["lengths"])
    assert counters["gaps"] == 0 and counters["dropped_chunks"] == 0
    assert tone_capture["status"]["state"] == "ended"
    assert tone_capture["running_detail"].startswith(f"{tone_capture['device'][0]}: {MIC_PCM}")


@needs_pulse
def test_a_frozen_process_loses_no_audio_and_keeps_stamps_contiguous(pulse):
    """The whole capture process stops for 0.4 s (as in a long GC pause or CPU starvation);
    PulseAudio keeps the audio and hands it over late, in a burst: that is not a gap."""
    result = run_scenario("process_freeze", pulse.env, device=MIC_PCM, freeze_s=0.4)
    received = np.array(result["received_ns"], dtype=np.int64)
    assert np.max(np.diff(received)) > 300_000_000, "the process was never frozen"
    counters = result["status"]["counters"]
    assert counters["gaps"] == 0 and counters["clock_resyncs"] == 0 and counters["dropped_chunks"] == 0
    stamps = np.array(result["stamps_ns"], dtype=np.int64)
    durations = np.array(result["lengths"], dtype=np.int64) * 1_000_000_000 // OUTPUT_RATE
    assert np.all(np.abs(stamps[1:] - (stamps[:-1] + durations[:-1])) <= 1)
    audio_s = sum(result["lengths"]) / OUTPUT_RATE
    wall_s = (result["closed_ns"] - stamps[0]) / 1e9
    assert 0.0 <= wall_s - audio_s < 0.3, (wall_s, audio_s)


# -- choosing devices ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resolved(pulse):
    return run_scenario("resolve_devices", pulse.env, name_query="TESTMIC", unknown="no-such-mic")


@needs_pulse
def test_device_by_index(resolved):
    index = resolved["all_devices"].index(MIC_PCM)
    assert resolved["by_index"] == [index, MIC_PCM]


@needs_pulse
def test_device_by_name_substring_skips_output_only_devices(resolved):
    names = resolved["all_devices"]
    assert names.index(DECOY_PCM) < names.index(MIC_PCM), "the decoy must come first to test anything"
    assert resolved["by_name"][1] == MIC_PCM
    assert DECOY_PCM not in [name for _, name, _, _ in resolved["inputs"]]


@needs_pulse
def test_default_device(resolved):
    assert resolved["by_default"] == resolved["portaudio_default"]


@needs_pulse
def test_unknown_device_name_lists_the_input_devices(resolved):
    message = resolved["unknown_error"]
    assert "'no-such-mic'" in message
    for index, name, channels, rate in resolved["inputs"]:
        assert f"{index}: {name} ({channels} ch, default {rate:g} Hz)" in message
    assert resolved["unknown_state"] == "failed"


def test_no_input_devices_at_all_says_so(tmp_path, pulse_audio):
    if Path("/dev/snd").exists():
        pytest.skip("this machine has sound hardware (/dev/snd), so it cannot show 'no input devices'")
    # our decoy only, and no PulseAudio server behind the system's `pulse` device
    env = pulse_audio.isolated_env(tmp_path, NO_INPUT_ASOUNDRC, tmp_path / "no-server")
    result = run_scenario("open_error", env, device=None)
    assert result["inputs"] == []
    assert "no audio input devices" in result["error"]


# -- ending: close from another thread, stalls, device errors -------------------------------


@needs_pulse
def test_close_from_another_thread_ends_iteration_promptly(pulse):
    result = run_scenario("close_from_thread", pulse.env, device=MIC_PCM)
    assert result["chunks_before_close"] >= 3
    assert result["iteration_ended_s"] < 0.5
    assert result["status"]["state"] == "ended"
    assert result["second_close_ok"]


@needs_pulse
def test_stall_fails_the_source(pulse):
    result = run_scenario("stall", pulse.env, device=STALL_PCM, stall_timeout_s=0.6)
    assert result["status"]["state"] == "failed"
    assert "stopped delivering" in result["status"]["detail"]
    assert 0.6 <= result["ended_after_suspend_s"] < 2.0


@needs_pulse
def test_device_error_while_running_fails_the_source(private_pulse):
    result = run_scenario("server_dies", private_pulse.env, device=STALL_PCM, server_pid=private_pulse.daemon.pid)
    assert result["status"]["state"] == "failed"
    assert "stopped the input stream" in result["status"]["detail"]
    assert result["ended_after_kill_s"] < 2.0


# -- no device needed --------------------------------------------------------------------------


def test_config_defaults():
    from socialmae_rt.capture.microphone import MicConfig

    config = MicConfig()
    assert (config.device, config.sample_rate, config.native_rate) == (None, 16000, None)
    assert (config.chunk_ms, config.channels, config.stall_timeout_s) == (32.0, None, 2.0)


@pytest.mark.parametrize(
    ("field_values", "says"),
    [
        ({"device": ""}, "MicConfig.device"),
        ({"device": -1}, "MicConfig.device"),
        ({"device": 1.5}, "MicConfig.device"),
        ({"sample_rate": 0}, "MicConfig.sample_rate"),
        ({"native_rate": 44100.5}, "MicConfig.native_rate"),
        ({"chunk_ms": 0}, "MicConfig.chunk_ms"),
        ({"channels": 0}, "MicConfig.channels"),
        ({"stall_timeout_s": 0.01}, "MicConfig.stall_timeout_s"),
    ],
)
def test_config_rejects_bad_values(field_values, says):
    from socialmae_rt.capture.microphone import MicConfig

    with pytest.raises(ValueError, match=says):
        MicConfig(**field_values)


def test_missing_pyaudio_gives_the_install_hint(monkeypatch):
    from socialmae_rt.capture.microphone import MicSource
    from socialmae_rt.messages import SourceError

    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes `import pyaudio` fail
    with pytest.raises(SourceError, match="apt-get install portaudio19-dev"):
        MicSource().open()


def test_int16_to_mono_scales_and_averages():
    from socialmae_rt.capture.microphone import int16_to_mono

    interleaved = np.array([16384, -16384, 32767, 32767, -32768, 0], dtype=np.int16)  # 3 frames, 2 ch
    mono = int16_to_mono(interleaved.tobytes(), channels=2)
    assert mono.dtype == np.float32
    np.testing.assert_allclose(mono, [0.0, 32767 / 32768, -0.5])


def test_streaming_resampler_matches_resampling_all_at_once():
    """Chunk by chunk through one soxr stream equals the whole signal at once: no boundary clicks."""
    import soxr

    from socialmae_rt.capture.microphone import StreamingResampler

    rate_in, rate_out = 44100, 16000
    signal_in = np.sin(2 * np.pi * 440 * np.arange(rate_in) / rate_in).astype(np.float32)
    resampler = StreamingResampler(rate_in, rate_out)
    pieces = [resampler.process(signal_in[i : i + 1411]) for i in range(0, rate_in, 1411)]
    streamed = np.concatenate([*pieces, resampler.finish_stretch()])
    whole = soxr.resample(signal_in, rate_in, rate_out, quality="HQ")
    assert streamed.shape == whole.shape == (rate_out,)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


class ClockDriver:
    """Feeds a CaptureClock 32 ms buffers at 16 kHz, each captured `late_ns` after it ended."""

    FRAMES = 512
    CHUNK_NS = FRAMES * 1_000_000_000 // 16000  # 32 ms
    T0 = 10_000_000_000

    def __init__(self):
        from socialmae_rt.capture.microphone import CaptureClock

        self.clock = CaptureClock(16000, tolerance_ns=100_000_000, persist_ns=1_000_000_000)
        self.buffer = 0

    def feed(self, late_ns: int = 0, overflowed: bool = False, skip: int = 0):
        self.buffer += skip
        true_end_ns = self.T0 + (self.buffer + 1) * self.CHUNK_NS
        first_frame = self.buffer * self.FRAMES
        self.buffer += 1
        return self.clock.place(first_frame, self.FRAMES, true_end_ns + late_ns, overflowed)

    def stamp_error_ns(self) -> int:
        """How far the clock puts the start of the last buffer from where it truly began."""
        last = self.buffer - 1
        return self.clock.time_of(last * self.FRAMES) - (self.T0 + last * self.CHUNK_NS)


def test_streaming_resampler_passes_audio_through_at_equal_rates():
    from socialmae_rt.capture.microphone import StreamingResampler

    resampler = StreamingResampler(16000, 16000)
    samples = np.linspace(-1, 1, 512, dtype=np.float32)
    assert resampler.process(samples) is samples
    assert resampler.finish_stretch().shape == (0,)


def test_capture_clock_stamps_from_the_frame_count_through_jitter_and_delays():
    from socialmae_rt.capture.microphone import Continuity

    driver = ClockDriver()
    assert driver.feed() is Continuity.FIRST
    assert driver.feed(late_ns=30_000_000) is Continuity.CONTINUOUS  # callback jitter
    assert driver.stamp_error_ns() == 0
    # the process stalled 500 ms; the host buffered the audio and hands it over in a burst
    stall_end_ns = driver.T0 + (driver.buffer + 1) * driver.CHUNK_NS + 500_000_000
    for _ in range(16):
        true_end_ns = driver.T0 + (driver.buffer + 1) * driver.CHUNK_NS
        assert driver.feed(late_ns=max(0, stall_end_ns - true_end_ns)) is Continuity.CONTINUOUS
        assert driver.stamp_error_ns() == 0


def test_capture_clock_reanchors_when_audio_is_lost_or_the_clock_is_off():
    from socialmae_rt.capture.microphone import Continuity

    driver = ClockDriver()
    driver.feed()
    # PortAudio flags an overflow and the buffer is 200 ms late: that much audio is gone
    assert driver.feed(late_ns=200_000_000, overflowed=True) is Continuity.LOST_AUDIO
    assert driver.stamp_error_ns() == 200_000_000  # the measured time, the best there is
    # two buffers dropped between callback and reader: the frame count says exactly where we are
    error_before = driver.stamp_error_ns()
    assert driver.feed(late_ns=200_000_000, skip=2) is Continuity.LOST_AUDIO
    assert driver.stamp_error_ns() == error_before
    # late by more than the tolerance for a second with nothing flagged: re-anchor anyway
    verdicts = [driver.feed(late_ns=350_000_000) for _ in range(40)]  # 1.28 s of buffers
    assert Continuity.LOST_AUDIO in verdicts[30:] and Continuity.LOST_AUDIO not in verdicts[:30]
    # earlier than the count allows: the anchor is late, step back
    assert driver.feed(late_ns=0) is Continuity.CLOCK_RESYNC
    assert driver.stamp_error_ns() == 0


# -- the subprocess side: scenarios run with the isolated ALSA/PulseAudio environment ---------


def report(**result) -> None:
    print(RESULT_MARKER + json.dumps(result), flush=True)


def scenario_capture_tones(device: str, channels: int, tone_file: str, samples_out: str) -> None:
    """Capture while pacat plays the tones, then 0.25 s more; save the samples, report the rest."""
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device, channels=channels))
    source.open()
    running_detail = source.status.detail
    chunks, first_received_ns, player, played_ns = [], None, None, None
    deadline = time.monotonic() + 10.0
    try:
        for chunk in source:
            chunks.append(chunk)
            if player is None:  # the stream runs: start playing
                first_received_ns = time.monotonic_ns()
                player = subprocess.Popen(
                    ["pacat", "--playback", "--raw", "--format=s16le", f"--rate={TONE_RATE}", "--channels=2",
                     "--device=micsink", "--latency-msec=20", tone_file]
                )  # fmt: skip
            elif played_ns is None and player.poll() is not None:
                played_ns = time.monotonic_ns()
            if played_ns is not None and time.monotonic_ns() - played_ns > 250_000_000:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("pacat did not finish playing the tones within 10 s")
    finally:
        source.close()
        closed_ns = time.monotonic_ns()
        if player is not None and player.poll() is None:
            player.kill()
            player.wait()
    np.save(samples_out, np.concatenate([chunk.samples for chunk in chunks]))
    report(
        device=[source.device.index, source.device.name],
        running_detail=running_detail,
        stamps_ns=[chunk.stamp_ns for chunk in chunks],
        lengths=[int(chunk.samples.shape[0]) for chunk in chunks],
        sample_rates=sorted({chunk.sample_rate for chunk in chunks}),
        first_received_ns=first_received_ns,
        closed_ns=closed_ns,
        status=source.status.snapshot().to_dict(),
    )


def scenario_process_freeze(device: str, freeze_s: float) -> None:
    """SIGSTOP this whole process for freeze_s (a helper shell sends SIGCONT), keep reading 0.5 s."""
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device))
    chunks, received_ns, freezer, thawed_ns = [], [], None, None
    deadline = time.monotonic() + 10.0
    try:
        for chunk in source:
            chunks.append(chunk)
            received_ns.append(time.monotonic_ns())
            if len(chunks) == 5:
                pid = os.getpid()
                freezer = subprocess.Popen(["sh", "-c", f"kill -STOP {pid}; sleep {freeze_s}; kill -CONT {pid}"])
            elif thawed_ns is None and freezer is not None and freezer.poll() is not None:
                thawed_ns = time.monotonic_ns()
            if thawed_ns is not None and time.monotonic_ns() - thawed_ns > 500_000_000:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the freeze helper did not finish within 10 s")
    finally:
        source.close()
        closed_ns = time.monotonic_ns()
        if freezer is not None:
            freezer.wait(timeout=5)
    report(
        stamps_ns=[chunk.stamp_ns for chunk in chunks],
        lengths=[int(chunk.samples.shape[0]) for chunk in chunks],
        received_ns=received_ns,
        closed_ns=closed_ns,
        status=source.status.snapshot().to_dict(),
    )


def first_chunk_from(device) -> list:
    """[index, name] of the device MicSource opens for `device`, after one real chunk from it."""
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device))
    try:
        next(iter(source))
    finally:
        source.close()
    return [source.device.index, source.device.name]


def scenario_resolve_devices(name_query: str, unknown: str) -> None:
    import pyaudio

    from socialmae_rt.capture.microphone import MicConfig, MicSource, list_input_devices
    from socialmae_rt.messages import SourceError

    pa = pyaudio.PyAudio()
    try:
        all_devices = [pa.get_device_info_by_index(i)["name"] for i in range(pa.get_device_count())]
        default = pa.get_default_input_device_info()
    finally:
        pa.terminate()
    unknown_source = MicSource(MicConfig(device=unknown))
    try:
        unknown_source.open()
        unknown_error = None
    except SourceError as error:
        unknown_error = str(error)
    report(
        all_devices=all_devices,
        inputs=[list(device) for device in list_input_devices()],
        by_index=first_chunk_from(all_devices.index(MIC_PCM)),
        by_name=first_chunk_from(name_query),
        by_default=first_chunk_from(None),
        portaudio_default=[int(default["index"]), default["name"]],
        unknown_error=unknown_error,
        unknown_state=unknown_source.status.state.value,
    )


def scenario_open_error(device) -> None:
    from socialmae_rt.capture.microphone import MicConfig, MicSource, list_input_devices
    from socialmae_rt.messages import SourceError

    try:
        MicSource(MicConfig(device=device)).open()
        error = None
    except SourceError as caught:
        error = str(caught)
    report(inputs=[list(device) for device in list_input_devices()], error=error)


def scenario_close_from_thread(device: str) -> None:
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device))
    closer = threading.Thread(target=source.close)
    count, close_started = 0, None
    for _ in source:
        count += 1
        if count == 3:
            close_started = time.monotonic()
            closer.start()
    ended_s = time.monotonic() - close_started
    closer.join(timeout=5)
    source.close()  # again, from this thread: must be harmless
    report(
        chunks_before_close=count,
        iteration_ended_s=ended_s,
        second_close_ok=not closer.is_alive(),
        status=source.status.snapshot().to_dict(),
    )


def scenario_stall(device: str, stall_timeout_s: float) -> None:
    """Suspend the sink under the monitor: the device stops delivering without an error."""
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device, stall_timeout_s=stall_timeout_s))
    suspended_at = None
    try:
        for count, _ in enumerate(source, start=1):
            if count == 3:
                subprocess.run(["pactl", "suspend-sink", "stallsink", "1"], check=True, timeout=5)
                suspended_at = time.monotonic()
            if suspended_at is not None and time.monotonic() - suspended_at > 10:
                break  # never stalled: the assertions will say so
        ended_s = time.monotonic() - suspended_at
    finally:
        source.close()
        subprocess.run(["pactl", "suspend-sink", "stallsink", "0"], check=True, timeout=5)
    report(ended_after_suspend_s=ended_s, status=source.status.snapshot().to_dict())


def scenario_server_dies(device: str, server_pid: int) -> None:
    """Kill the PulseAudio server under the stream: PortAudio's capture thread hits an error."""
    from socialmae_rt.capture.microphone import MicConfig, MicSource

    source = MicSource(MicConfig(device=device))
    killed_at = None
    try:
        for count, _ in enumerate(source, start=1):
            if count == 3:
                os.kill(server_pid, signal.SIGKILL)
                killed_at = time.monotonic()
            if killed_at is not None and time.monotonic() - killed_at > 10:
                break
        ended_s = time.monotonic() - killed_at
    finally:
        source.close()
    report(ended_after_kill_s=ended_s, status=source.status.snapshot().to_dict())


if __name__ == "__main__":
    scenario = globals()[f"scenario_{sys.argv[1]}"]
    scenario(**json.loads(sys.argv[2]))

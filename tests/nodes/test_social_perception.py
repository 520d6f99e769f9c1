"""The social_perception node with real rclpy on an isolated domain, fed a real media file."""

import json
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32, Float32MultiArray, Header, String

from socialmae_rt.nodes.social_perception import SocialPerceptionNode, run_option_parameters

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def test_parameters_mirror_the_run_flags():
    names = {name for name, _, _ in run_option_parameters()}
    assert {"source", "mic", "weights", "model", "backend", "hop", "realtime", "zmq", "max_faces"} <= names
    assert "quiet" not in names


def test_node_publishes_every_topic_and_takes_runtime_parameters(context, spin_until, tone_wav):
    clip = tone_wav(7.0)
    probe = rclpy.create_node("probe", context=context)
    got = {name: [] for name in ("results", "emotion", "laughter", "laughter_onset", "personality", "embedding",
                                 "diagnostics")}
    for name, kind in (("results", String), ("emotion", Float32MultiArray), ("laughter", Float32),
                       ("laughter_onset", Header), ("personality", Float32MultiArray), ("embedding", Float32MultiArray)):
        probe.create_subscription(kind, f"/social_perception/{name}", got[name].append, RELIABLE)
    probe.create_subscription(DiagnosticArray, "/diagnostics", got["diagnostics"].append, 10)
    node = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value=str(clip)), Parameter("model", value="tiny"), Parameter("hop", value=1.0),
        Parameter("realtime", value=True),  # paced, so the probe is listening before windows come
        Parameter("embedding", value=True),
        Parameter("laughter_on", value=0.01), Parameter("laughter_off", value=0.005),
        Parameter("laughter_min_duration_s", value=0.0),
    ])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        spin_until(executor, lambda: len(got["results"]) >= 3 and got["diagnostics"] and got["laughter_onset"]
                   and got["embedding"], 60)
        records = [json.loads(m.data) for m in got["results"]]
        assert all(r["schema"] == "socialmae_rt.result/1" and r["modality"] == "audio" and r["face_id"] is None
                   for r in records)
        ends = [r["window_end_ns"] for r in records]
        assert np.allclose(np.diff(ends), 1e9, atol=1e6)  # the 1 s hop on the capture clock
        emotion = got["emotion"][0]
        assert emotion.layout.dim[0].label == "anger,disgust,fear,happy,neutral,sad"
        assert emotion.layout.dim[1].label == "face_id=none"
        assert len(emotion.data) == 6 and abs(sum(emotion.data) - 1.0) < 1e-4
        assert 0.0 <= got["laughter"][0].data <= 1.0
        embedding = got["embedding"][0]
        assert len(embedding.data) == 192 and embedding.layout.dim[1].label == "face_id=none"  # tiny width
        assert len(records[0]["embedding"]) == 192
        personality = got["personality"][0]
        assert personality.layout.dim[0].label == "openness,conscientiousness,extraversion,agreeableness,neuroticism"
        onset = got["laughter_onset"][0]
        onset_ns = onset.stamp.sec * 1_000_000_000 + onset.stamp.nanosec
        assert onset.frame_id == "none" and onset_ns == ends[0]  # stamped with the window, not now()
        status = got["diagnostics"][-1].status[0]
        assert status.name == "social_perception: pipeline"
        assert {kv.key for kv in status.values} >= {"backend", "windows_per_s", "skipped_windows", "latency_ms_p95"}
        values = {kv.key: kv.value for kv in status.values}
        assert (values["tasks_served"], values["tasks_not_served"]) == ("emotion, laughter, personality", "none")
        # Run-time parameters: postprocessing changes apply, the rest is refused with a reason.
        # set_parameters applies one at a time: on=0.3 is valid alone, then off=0.5 > on is refused.
        first, second = node.set_parameters([Parameter("laughter_on", value=0.3), Parameter("laughter_off", value=0.5)])
        assert first.successful and not second.successful and "laughter_off <= laughter_on" in second.reason
        assert (node.pipeline.postprocessor.config.laughter_on, node.pipeline.postprocessor.config.laughter_off) == (0.3, 0.005)
        atomic = node.set_parameters_atomically([Parameter("laughter_on", value=0.2), Parameter("laughter_off", value=0.9)])
        assert not atomic.successful and node.pipeline.postprocessor.config.laughter_on == 0.3
        fixed = node.set_parameters([Parameter("hop", value=0.25)])[0]
        assert not fixed.successful and "hop is fixed once the node runs" in fixed.reason
        assert node.set_parameters([Parameter("emotion_smoothing", value=0.1)])[0].successful
        assert node.pipeline.postprocessor.config.emotion_smoothing == 0.1
    finally:
        executor.shutdown()
        node.stop()
        assert not node.worker.is_alive()  # stopped (how fast: socialmae-rt bench-node, not a timed test)
        node.destroy_node()
        probe.destroy_node()


def test_node_in_its_own_process_feeds_ros_and_zeromq_alike_and_stops_cleanly(context, tone_wav):
    """The console script as a robot would start it; a real rclpy subscriber and a real ZeroMQ SUB."""
    import zmq

    from socialmae_rt.bench.node import start_node_process, stop_process
    from socialmae_rt.sinks.zmq_subscriber import messages, subscribe

    clip = tone_wav(8.0)
    with zmq.Context() as free_port_context:
        probe_socket = free_port_context.socket(zmq.PUB)
        port = probe_socket.bind_to_random_port("tcp://127.0.0.1")
        probe_socket.close()
    endpoint = f"tcp://127.0.0.1:{port}"
    sub = subscribe(endpoint, ["results"])
    probe = rclpy.create_node("probe", context=context)
    ros_records = []
    probe.create_subscription(String, "/social_perception/results", lambda m: ros_records.append(json.loads(m.data)),
                              RELIABLE)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    node = start_node_process({"source": clip, "model": "tiny", "hop": 1.0, "realtime": "true", "zmq": endpoint},
                              context.get_domain_id())
    zmq_records = []
    try:
        deadline = time.monotonic() + 90
        while len(ros_records) < 3 or len(zmq_records) < 3:
            assert time.monotonic() < deadline and node.poll() is None, "node did not deliver"
            executor.spin_once(timeout_sec=0.05)
            zmq_records += [record for _, record in messages(sub, timeout_ms=10)]
        stop_s, stderr = stop_process(node)
    finally:
        if node.poll() is None:
            node.kill()
        sub.close()
        executor.shutdown()
        probe.destroy_node()
    assert node.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert stop_s < 15.0  # it stops rather than hangs; the stop time is measured by socialmae-rt bench-node
    common = min(len(ros_records), len(zmq_records))
    assert ros_records[:common] == zmq_records[:common]  # one record, two transports
    assert all(r["modality"] == "audio" for r in ros_records)


def test_node_process_stops_cleanly_on_sigterm(context):
    """A supervisor (launch, systemd) stops nodes with SIGTERM: exit 0, no traceback, within 2 s."""
    import signal

    from socialmae_rt.bench.node import start_node_process, stop_process

    probe = rclpy.create_node("probe", context=context)
    diagnostics = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    node = start_node_process({"source": "ros", "model": "tiny", "input_silence_s": 0.5}, context.get_domain_id())
    try:
        deadline = time.monotonic() + 60
        while not diagnostics:  # up and publishing (waiting for input)
            assert time.monotonic() < deadline and node.poll() is None, "node did not come up"
            executor.spin_once(timeout_sec=0.05)
        stop_s, stderr = stop_process(node, signal.SIGTERM)
    finally:
        if node.poll() is None:
            node.kill()
        executor.shutdown()
        probe.destroy_node()
    assert node.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert stop_s < 15.0  # it stops rather than hangs; the stop time is measured by socialmae-rt bench-node


def test_unknown_and_invalid_parameters_are_one_clear_error(context):
    import pytest

    with pytest.raises(ValueError, match=r"unknown parameter modle; social_perception has: .*model"):
        SocialPerceptionNode(context=context, parameter_overrides=[Parameter("modle", value="tiny")])
    with pytest.raises(ValueError, match=r"model must be one of \['base', 'small', 'tiny'\], got 'huge'"):
        SocialPerceptionNode(context=context, parameter_overrides=[Parameter("model", value="huge")])
    with pytest.raises(ValueError, match="input_silence_s must be > 0"):
        SocialPerceptionNode(context=context, parameter_overrides=[
            Parameter("source", value="ros"), Parameter("input_silence_s", value=0.0)])


def test_node_runs_a_task_bundle_and_every_record_carries_all_tasks(context, spin_until, tone_wav, bundle_dir,
                                                                    tmp_path):
    """weights:=<bundle folder>: emotion, laughter and personality on their topics, each equal to what its
    own checkpoint gives alone on the same window (the `run` command on the same file, unpaced)."""
    from socialmae_rt.cli import main

    clip = tone_wav(7.0)
    probe = rclpy.create_node("probe", context=context)
    got = {"results": [], "laughter": [], "personality": [], "diagnostics": []}
    for name, kind in (("results", String), ("laughter", Float32), ("personality", Float32MultiArray)):
        probe.create_subscription(kind, f"/social_perception/{name}", got[name].append, RELIABLE)
    probe.create_subscription(DiagnosticArray, "/diagnostics", got["diagnostics"].append, 10)
    node = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value=str(clip)), Parameter("weights", value=str(bundle_dir)),
        Parameter("hop", value=1.0), Parameter("realtime", value=True), Parameter("backend", value="torch")])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        spin_until(executor, lambda: len(got["results"]) >= 3 and got["diagnostics"] and got["personality"], 60)
    finally:
        executor.shutdown()
        node.stop()
        node.destroy_node()
        probe.destroy_node()
    records = [json.loads(m.data) for m in got["results"]]
    assert all(r["emotion"] and r["laughter"] and r["personality"] for r in records)
    assert got["personality"][0].layout.dim[0].label == "openness,conscientiousness,extraversion,agreeableness,neuroticism"
    values = {kv.key: kv.value for kv in got["diagnostics"][-1].status[0].values}
    assert values["task laughter"] == str(bundle_dir / "laughter.safetensors")
    # The same windows from each checkpoint alone (media time from 0: the first window ends at 4 s).
    alone = {}
    for task in ("emotion", "laughter", "personality"):
        out = tmp_path / f"{task}.jsonl"
        assert main(["run", "--source", str(clip), "--weights", str(bundle_dir / f"{task}.safetensors"),
                     "--hop", "1.0", "--backend", "torch", "--output", str(out), "--quiet"]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        alone[task] = [row for row in rows if row["schema"] == "socialmae_rt.result/1"]
    first_end = records[0]["window_end_ns"]
    for record in records:
        index = round((record["window_end_ns"] - first_end) / 1e9)  # the 1 s hop
        for label, value in record["emotion"].items():
            assert abs(value - alone["emotion"][index]["emotion"][label]) < 1e-5
        assert abs(record["laughter"]["probability"] - alone["laughter"][index]["laughter"]["probability"]) < 1e-5
        for trait, value in record["personality"].items():
            assert abs(value - alone["personality"][index]["personality"][trait]) < 1e-5


def test_node_whose_only_source_fails_for_good_says_error_and_exits_non_zero(context, write_clip):
    """A file whose second half is garbage (the decoder gives up: the source FAILED): the node
    publishes /diagnostics ERROR with the cause and ends with exit code 1, so respawn restarts it,
    instead of staying up doing nothing."""
    from socialmae_rt.bench.node import start_node_process

    clip = write_clip("broken.avi", seconds=12.0, audio=False, corrupt_frames=tuple(range(60, 120))).path
    probe = rclpy.create_node("probe", context=context)
    diagnostics = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    node = start_node_process({"source": str(clip), "mic": "none", "model": "tiny"}, context.get_domain_id())
    try:
        deadline = time.monotonic() + 120
        while node.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(20):  # whatever is still in flight
            executor.spin_once(timeout_sec=0.05)
    finally:
        if node.poll() is None:
            node.kill()
        _, stderr = node.communicate(timeout=10)
        executor.shutdown()
        probe.destroy_node()
    assert node.returncode == 1, stderr[-2000:]
    assert "perception stopped: RuntimeError: source media_file:broken.avi failed" in stderr
    assert "errors in a row" in stderr
    errors = [s for array in diagnostics for s in array.status if s.level == DiagnosticStatus.ERROR]
    assert errors and errors[-1].message.startswith("perception stopped: RuntimeError: source")


def test_diagnostics_warn_naming_the_backend_left_and_why_after_a_shadow_check_fallback(make_status):
    import dataclasses

    from socialmae_rt.nodes.social_perception import health, switching_values
    from socialmae_rt.stream.status import ShadowHealth, Switch, SwitchingHealth

    why = "the live shadow check disagreed with fp32 in 3 checks in a row: emotion cosine 0.91200"
    switching = SwitchingHealth(
        pending=None, problems=(), fallback_reason=why, switches=(Switch(12.0, "ov-int8", "ov", why),),
        shadow=ShadowHealth(reference="ort (fp32)", every_s=30.0, checks=3, agreeing=0, of_last=3,
                            rolling_min_cosine=0.912, rolling_max_prob_diff=0.02, failing_in_a_row=3, active=True))
    status = make_status([("camera", "running", "")], backend_name="ov", switching=switching, last="ok")
    level, message = health(status)
    assert level == DiagnosticStatus.WARN and message == f"backend ov-int8 left for ov: {why}"
    values = switching_values(switching)
    assert values["shadow_agreeing"] == "0/3" and values["shadow_lowest_cosine"] == "0.91200"
    assert values["backend_switches"] == f"ov-int8 -> ov at 12.0 s: {why}"
    settled = dataclasses.replace(switching, fallback_reason=None, switches=())
    assert health(make_status([("camera", "running", "")], backend_name="ov", switching=settled)) == (
        DiagnosticStatus.OK, "ok")


def node_process_to_its_end(parameters: dict, context, timeout_s: float = 180.0) -> tuple[int, str]:
    """The node in its own process, left to end by itself: (exit code, what it wrote to stderr)."""
    from socialmae_rt.bench.node import start_node_process

    node = start_node_process(parameters, context.get_domain_id())
    try:
        _, stderr = node.communicate(timeout=timeout_s)
    finally:
        if node.poll() is None:
            node.kill()
    return node.returncode, stderr


def test_node_process_logs_its_first_result_and_exits_0_when_its_file_ends(context, tone_wav):
    """A file input with exit_at_end:=true: the log says the backend, the first result (how long,
    on what) and that the input ended, and the process exits 0 by itself."""
    code, stderr = node_process_to_its_end({"source": tone_wav(6.0), "model": "tiny", "backend": "torch", "hop": 1.0,
                                            "exit_at_end": "true", "summary_every_s": 1.0}, context)
    assert code == 0, stderr[-2000:]
    assert "running torch (fp32)" in stderr
    first = next(line for line in stderr.splitlines() if "first result" in line)
    assert " s after start, on torch (fp32), latency " in first and "audio" in first
    ended = next(line for line in stderr.splitlines() if "input ended" in line)
    assert "tone.wav): 3 windows, 3 records; exiting (exit_at_end)" in ended
    assert "Traceback" not in stderr


def test_a_missing_camera_is_one_error_before_any_model_loads(context):
    code, stderr = node_process_to_its_end({"source": "/dev/video97", "model": "base"}, context)
    assert code == 2, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "/dev/video97" in errors[0]
    assert "NO WEIGHTS GIVEN" not in stderr  # nothing was built: the model would have said so

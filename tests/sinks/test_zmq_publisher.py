"""The ZeroMQ publisher with real sockets on loopback: what a subscriber receives, and that a
subscriber that never reads cannot stall the pipeline."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from socialmae_rt.results import Latency, SocialPerception
from socialmae_rt.sinks.zmq_publisher import ZmqConfig, ZmqSink
from socialmae_rt.sinks.zmq_subscriber import messages, subscribe
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind

NS = 1_000_000_000


def record(face_id=1):
    return SocialPerception(face_id=face_id, window_start_ns=0, window_end_ns=4 * NS, modality="audiovisual",
                            emotion={"happy": 1.0}, laughter_probability=0.8, laughing=True, personality=None,
                            window_fill=1.0, latency=Latency(1.0, 2.0, 3.0))


def wait_until_subscribed(sink: ZmqSink, socket: zmq.Socket, timeout_s: float = 5.0) -> None:
    """PUB drops messages until a subscription arrives: send status pings until one gets through."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sink.publish("status", {"ping": True})
        if socket.poll(50):
            socket.recv_multipart()
            while socket.poll(50):  # drain the other pings
                socket.recv_multipart()
            return
    raise AssertionError("subscriber never connected")


def test_subscriber_receives_results_and_events_as_topic_plus_json():
    sink = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*"))
    socket = subscribe(sink.endpoint, [])
    try:
        wait_until_subscribed(sink, socket)
        sink.write_result(record())
        sink.write_event(LaughterEvent(LaughterEventKind.ONSET, 1, 3 * NS, 4 * NS, 0.8))
        sink.write_event(LaughterEvent(LaughterEventKind.OFFSET, 1, 6 * NS, 6 * NS, 0.2))
        received = list(messages(socket, timeout_ms=500))
    finally:
        socket.close()
        sink.close()
    assert [topic for topic, _ in received] == ["results", "laughter_onset", "laughter_offset"]
    assert received[0][1] == record().to_json()
    assert received[1][1]["event"] == "laughter_onset" and received[1][1]["time_ns"] == 3 * NS


def test_topic_filter():
    sink = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*"))
    everything = subscribe(sink.endpoint, [])
    onsets = subscribe(sink.endpoint, ["laughter_onset"])
    try:
        wait_until_subscribed(sink, everything)
        time.sleep(0.2)  # the second subscription travels separately; no message to wait on for it
        sink.write_result(record())
        sink.write_event(LaughterEvent(LaughterEventKind.ONSET, 2, NS, NS, 0.9))
        only = [topic for topic, _ in messages(onsets, timeout_ms=500)]
    finally:
        everything.close()
        onsets.close()
        sink.close()
    assert only == ["laughter_onset"]


def test_a_subscriber_that_never_reads_does_not_block_publishing():
    sink = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*", high_water_mark=10))
    stalled = subscribe(sink.endpoint, [])
    stalled.setsockopt(zmq.RCVHWM, 10)
    try:
        wait_until_subscribed(sink, stalled)
        started = time.monotonic()
        for i in range(20000):
            sink.write_result(record(face_id=i))
        elapsed = time.monotonic() - started
        received = sum(1 for _ in messages(stalled, timeout_ms=300))
    finally:
        stalled.close()
        sink.close()
    assert sink.sent >= 20000
    assert received < 20000  # most were dropped at the high-water marks instead of queuing
    assert elapsed < 10.0  # never blocked on the subscriber (a blocking send would hang forever)


@pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq has no CURVE support")
def test_curve_encrypted_stream(tmp_path):
    from zmq import auth

    public_file, secret_file = auth.create_certificates(str(tmp_path), "server")
    sink = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*", curve_secret_key_file=secret_file))
    trusted = subscribe(sink.endpoint, [], server_key_file=public_file)
    plain = subscribe(sink.endpoint, [])
    try:
        wait_until_subscribed(sink, trusted)
        sink.write_result(record())
        assert [t for t, _ in messages(trusted, timeout_ms=500)] == ["results"]
        assert list(messages(plain, timeout_ms=300)) == []  # no key: the handshake fails, nothing arrives
    finally:
        trusted.close()
        plain.close()
        sink.close()
    with pytest.raises(ValueError, match="holds no secret key"):
        ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*", curve_secret_key_file=public_file))


@pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq has no CURVE support")
def test_curve_with_an_allow_list_admits_only_the_listed_clients(tmp_path, caplog):
    """ZAP: a client whose public key is in the folder gets the stream; another client that knows
    the server key (and speaks CURVE correctly) gets nothing."""
    from zmq import auth

    server_public, server_secret = auth.create_certificates(str(tmp_path), "server")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    auth.create_certificates(str(allowed), "robot_app")
    _, stranger_secret = auth.create_certificates(str(tmp_path), "stranger")
    sink = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*", curve_secret_key_file=server_secret,
                             curve_allowed_clients=str(allowed)))
    listed = subscribe(sink.endpoint, [], server_key_file=server_public,
                       client_key_file=str(allowed / "robot_app.key_secret"))
    stranger = subscribe(sink.endpoint, [], server_key_file=server_public, client_key_file=stranger_secret)
    try:
        wait_until_subscribed(sink, listed, timeout_s=20.0)
        for _ in range(3):
            sink.write_result(record())
        assert [t for t, _ in messages(listed, timeout_ms=1000)] == ["results"] * 3
        assert list(messages(stranger, timeout_ms=500)) == []
    finally:
        listed.close()
        stranger.close()
        sink.close()
    assert "any client that knows the server key" not in caplog.text


def test_binding_beyond_loopback_without_curve_warns(caplog):
    sink = ZmqSink(ZmqConfig(endpoint="tcp://0.0.0.0:*"))
    sink.close()
    assert "without CURVE: anyone who can reach it can read every record" in caplog.text
    caplog.clear()
    ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*")).close()
    assert "without CURVE" not in caplog.text


def test_config_errors():
    with pytest.raises(ValueError, match="must look like tcp://HOST:PORT"):
        ZmqConfig(endpoint="127.0.0.1:5556")
    with pytest.raises(FileNotFoundError, match="CURVE certificate not found"):
        ZmqConfig(curve_secret_key_file="/nonexistent.key_secret")
    first = ZmqSink(ZmqConfig(endpoint="tcp://127.0.0.1:*"))
    try:
        with pytest.raises(ValueError, match="cannot bind ZeroMQ PUB socket"):
            ZmqSink(ZmqConfig(endpoint=first.endpoint))  # the port is taken
    finally:
        first.close()


def test_run_command_publishes_the_same_records_it_writes(tmp_path, tone_wav):
    clip = tone_wav(6.0)  # 6 s of tone: audio-only windows at 4, 5, 6 s
    with zmq.Context() as probe_context:  # a free port for the run to bind
        probe = probe_context.socket(zmq.PUB)
        port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close()
    endpoint = f"tcp://127.0.0.1:{port}"
    socket = subscribe(endpoint, ["results"])
    out = tmp_path / "r.jsonl"
    run = subprocess.Popen(
        [str(Path(sys.executable).with_name("socialmae-rt")), "run", "--source", str(clip), "--model", "tiny",
         "--hop", "1.0", "--realtime", "--output", str(out), "--zmq", endpoint, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        received = []
        for _, rec in messages(socket, timeout_ms=30000):
            received.append(rec)
            if len(received) == 3:
                break
        stdout, stderr = run.communicate(timeout=120)
    finally:
        socket.close()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-2000:]
    assert f"publishing on ZeroMQ {endpoint}" in stdout
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(received) == 3 and received == written
    assert [r["modality"] for r in received] == ["audio"] * 3

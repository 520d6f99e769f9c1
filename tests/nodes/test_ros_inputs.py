"""ROS input topics: message conversion, silence/recovery, and the node fed through real topics."""

import array
import json
import time

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from matplotlib import cbook
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Int16MultiArray, MultiArrayDimension, String

from socialmae_rt.app.options import RunOptions
from socialmae_rt.stream.status import Expectation
from socialmae_rt.messages import NS_PER_SECOND, SourceState, VideoFrame
from socialmae_rt.nodes.ros_inputs import (
    AudioStamper, BadInput, RosInputConfig, TopicSource, compressed_to_bgr, image_to_bgr, parse_int16_array)
from socialmae_rt.nodes.rep155 import hri_expression
from socialmae_rt.nodes.social_perception import SocialPerceptionNode, health, ros_input_streams

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def photo_bgr() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        rgb = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    return rgb  # imdecode gives BGR already


def image_message(bgr: np.ndarray, encoding: str = "bgr8", pad: int = 0, stamp_ns: int = 0) -> Image:
    converted = {"bgr8": bgr, "rgb8": bgr[..., ::-1], "bgra8": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
                 "rgba8": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), "mono8": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)}[encoding]
    h, w = converted.shape[:2]
    rows = np.ascontiguousarray(converted).reshape(h, -1)
    rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)  # row padding the reader must skip
    msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, NS_PER_SECOND)
    return msg


def audio_message(samples: np.ndarray, rate: int, stamp_ns: int | None = None) -> Int16MultiArray:
    label = f"rate={rate}" + ("" if stamp_ns is None else f";stamp_ns={stamp_ns}")
    msg = Int16MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(samples), stride=len(samples))]
    msg.data = array.array("h", samples.astype(np.int16).tobytes())  # from bytes: the fast path
    return msg


def tone_int16(num: int, rate: int, start: int = 0, hz: float = 440.0) -> np.ndarray:
    t = (np.arange(num) + start) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


# Conversion --------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "bgra8", "rgba8"])
def test_raw_images_become_bgr_with_row_padding_skipped(encoding):
    bgr = photo_bgr()[:50, :70]
    out = image_to_bgr(image_message(bgr, encoding, pad=5))
    assert out.shape == (50, 70, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, bgr)


def test_mono_images_are_replicated_to_three_channels():
    bgr = photo_bgr()[:20, :30]
    out = image_to_bgr(image_message(bgr, "mono8", pad=2))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert all(np.array_equal(out[..., c], gray) for c in range(3))


def test_unsupported_encoding_and_short_data_are_named():
    msg = Image(height=2, width=2, encoding="16UC1", step=4, data=bytes(8))
    with pytest.raises(BadInput, match="16UC1.*expected one of bgr8, rgb8"):
        image_to_bgr(msg)
    short = Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(20))
    with pytest.raises(BadInput, match="does not match its 20 bytes"):
        image_to_bgr(short)


def test_compressed_images_decode_and_garbage_is_named():
    bgr = photo_bgr()
    png = CompressedImage(format="png", data=cv2.imencode(".png", bgr)[1].tobytes())
    np.testing.assert_array_equal(compressed_to_bgr(png), bgr)
    jpeg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", bgr)[1].tobytes())
    assert np.abs(compressed_to_bgr(jpeg).astype(int) - bgr).mean() < 5
    with pytest.raises(BadInput, match="jpeg, 10 bytes.*could not be decoded"):
        compressed_to_bgr(CompressedImage(format="jpeg", data=b"0123456789"))


def test_int16_fallback_reads_rate_and_optional_stamp():
    samples, rate, stamp = parse_int16_array(audio_message(np.array([0, 16384, -32768]), 44100, 123))
    assert rate == 44100 and stamp == 123
    np.testing.assert_allclose(samples, [0.0, 0.5, -1.0])
    assert parse_int16_array(audio_message(np.zeros(4), 8000))[2] == 0  # no stamp: the node uses arrival
    no_rate = Int16MultiArray(data=[1, 2])
    with pytest.raises(BadInput, match="layout.dim\\[0\\].label like 'rate=16000'"):
        parse_int16_array(no_rate)


def test_audio_of_another_rate_is_resampled_onto_one_continuous_timeline():
    stamper, rate, chunk = AudioStamper(), 44100, 4410
    start = 5 * NS_PER_SECOND
    out = []
    for i in range(20):  # 2 s in 100 ms messages, stamps jittered by up to 30 ms
        jitter = (-1) ** i * 30_000_000 if i else 0
        stamp = start + i * chunk * NS_PER_SECOND // rate + jitter
        out += stamper.chunks(tone_int16(chunk, rate, i * chunk) / 32768.0, rate, stamp)
    assert all(c.sample_rate == 16000 for c in out)
    # Jitter below the threshold does not move stamps: each chunk starts where the last ended.
    assert out[0].stamp_ns == start
    assert all(b.stamp_ns == a.end_ns for a, b in zip(out, out[1:]))
    audio = np.concatenate([c.samples for c in out])
    assert abs(audio.size - 32000) < 400  # 2 s at 16 kHz, minus what the filter still holds
    spectrum = np.abs(np.fft.rfft(audio[2000:18000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2  # 1 s of signal: 1 Hz bins
    # A real gap (1 s later than the count) starts a new stretch at the message's own stamp.
    late = out[-1].end_ns + NS_PER_SECOND
    after = stamper.chunks(tone_int16(chunk, rate) / 32768.0, rate, late)
    assert after[-1].stamp_ns >= late and after[0].stamp_ns <= late


# TopicSource -----------------------------------------------------------------------------------------
def test_topic_source_turns_silent_recovers_and_drops_oldest():
    import threading

    source = TopicSource("ros image", RosInputConfig(silence_s=0.3, queue=2), has_video=True, has_audio=False)
    got = []
    reader = threading.Thread(target=lambda: got.extend(source))
    reader.start()
    frame = lambda i: VideoFrame(bgr=np.zeros((2, 2, 3), np.uint8), stamp_ns=i, index=i)  # noqa: E731
    time.sleep(0.5)
    assert source.status.state is SourceState.SILENT and "no message yet" in source.status.detail
    source.heard()
    source.push(frame(1))
    assert source.status.state is SourceState.RUNNING
    time.sleep(0.6)
    assert source.status.state is SourceState.SILENT and "no message for" in source.status.detail
    with source._ready:  # hold the reader off so that the queue overflows
        for i in range(2, 6):
            source.push(frame(i))
    time.sleep(0.2)
    source.close()
    reader.join(2)
    assert not reader.is_alive() and source.status.state is SourceState.ENDED
    assert [f.index for f in got] == [1, 4, 5] and source.status.counters["dropped"] == 2


def test_images_larger_than_the_limit_are_scaled_down_as_they_arrive(context):
    """A 2400x1800 camera on the topic: what waits in the input queue is 800x600 (the limit given),
    so 64 queued messages stay small whatever the camera sends."""
    from socialmae_rt.nodes.ros_inputs import RosInputs

    node = rclpy.create_node("scaling_probe", context=context)
    try:
        inputs = RosInputs(node, RosInputConfig(), video=True, audio=False, log_error=print, max_frame_side=800)
        big = np.zeros((1800, 2400, 3), np.uint8)
        big[:, 1200:] = 200  # the right half bright: the picture must survive the scaling
        inputs._on_image(image_message(big, stamp_ns=1))
        (frame,) = list(inputs.image._items)
        assert frame.bgr.shape == (600, 800, 3)
        assert frame.bgr[:, :390].max() == 0 and frame.bgr[:, 410:].min() == 200
    finally:
        node.destroy_node()


def test_bad_messages_are_reported_once_per_kind():
    source = TopicSource("ros image", RosInputConfig(), True, False)
    first = BadInput("image encoding '16UC1' is not supported")
    assert source.report_bad(first) and not source.report_bad(BadInput(str(first)))
    assert source.report_bad(BadInput("other problem"))
    assert source.status.counters["bad_messages"] == 3


# Node wiring rules ------------------------------------------------------------------------------------
def test_ros_inputs_are_not_mixed_with_local_devices():
    assert ros_input_streams(RunOptions(source="ros")) == (True, True)  # mic default: the ROS topic
    assert ros_input_streams(RunOptions(source="ros", mic="none")) == (True, False)
    assert ros_input_streams(RunOptions(source="0")) == (False, False)
    with pytest.raises(ValueError, match="mic:=hw:1 cannot go with source:=ros"):
        ros_input_streams(RunOptions(source="ros", mic="hw:1"))
    with pytest.raises(ValueError, match="mic:=ros needs source:=ros"):
        ros_input_streams(RunOptions(source="0", mic="ros"))
    with pytest.raises(ValueError, match="input_audio_type must be one of auto, audio_common, int16_array"):
        RosInputConfig(audio_type="wav")


def test_health_levels(make_status):
    def status(*states, why="", down_s=None):
        return make_status([(f"s{i}", s, "no message for 3.0 s") for i, s in enumerate(states)],
                           Expectation(reason=why), down_s=down_s, down_reason="Triton server at h:8001 unreachable",
                           last="ok: 1 record(s), audiovisual")

    assert health(status("running", "running")) == (DiagnosticStatus.OK, "ok: 1 record(s), audiovisual")
    assert health(status("running", "silent")) == (DiagnosticStatus.WARN, "s1 silent: no message for 3.0 s")
    assert health(status("running", why="audio stalled")) == (DiagnosticStatus.WARN, "audio stalled")
    level, message = health(status("silent", "silent"))
    assert level == DiagnosticStatus.ERROR and message.startswith("no input: s0 silent")
    assert health(status("ended")) == (DiagnosticStatus.WARN, "all sources ended")
    # a remote backend out of reach: WARN within its grace, ERROR past it
    assert health(status("running", down_s=2.0)) == (DiagnosticStatus.WARN,
                                                      "backend down for 2 s: Triton server at h:8001 unreachable")
    assert health(status("running", down_s=6.0))[0] == DiagnosticStatus.ERROR


def test_crema_d_classes_map_onto_ros4hri_expressions():
    probabilities = dict(anger=0.1, disgust=0.05, fear=0.6, happy=0.1, neutral=0.1, sad=0.05)
    assert hri_expression(probabilities) == ("SCARED", 0.6)
    assert hri_expression({**probabilities, "fear": 0.0, "anger": 0.7})[0] == "ANGRY"


# The node fed through real topics -----------------------------------------------------------------------
def test_node_reads_image_and_audio_topics_degrades_when_audio_goes_silent_and_recovers(context, spin_until):
    rate, fps, chunk = 44100, 10, 4410
    probe = rclpy.create_node("camera_and_mic", context=context)
    image_pub = probe.create_publisher(Image, "/image", qos_profile_sensor_data)
    compressed_pub = probe.create_publisher(CompressedImage, "/image/compressed", qos_profile_sensor_data)
    audio_pub = probe.create_publisher(Int16MultiArray, "/audio", qos_profile_sensor_data)
    records, diagnostics = [], []
    probe.create_subscription(String, "/social_perception/results", lambda m: records.append(json.loads(m.data)),
                              RELIABLE)
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m.status[0]), 10)
    photo = photo_bgr()
    jpeg = cv2.imencode(".jpg", photo)[1].tobytes()
    feed = {"audio": True, "compressed": False, "frames": 0, "samples": 0}

    def publish_frame():
        feed["frames"] += 1
        if feed["compressed"]:
            msg = CompressedImage(format="jpeg", data=jpeg)
            msg.header.stamp = probe.get_clock().now().to_msg()
            compressed_pub.publish(msg)
        else:
            image_pub.publish(image_message(photo, stamp_ns=time.time_ns()))

    def publish_audio():  # unstamped: the node stamps with arrival time minus the chunk's length
        if feed["audio"]:
            audio_pub.publish(audio_message(tone_int16(chunk, rate, feed["samples"]), rate))
            feed["samples"] += chunk

    probe.create_timer(1.0 / fps, publish_frame)
    probe.create_timer(chunk / rate, publish_audio)
    node = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value="ros"), Parameter("model", value="tiny"), Parameter("hop", value=1.0),
        Parameter("input_silence_s", value=0.6), Parameter("input_audio_type", value="int16_array"),
    ])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)

    def seen(modality, after=0):
        return any(r["modality"] == modality for r in records[after:])

    try:
        assert node.ros_inputs.audio_type == "int16_array"
        spin_until(executor, lambda: seen("audiovisual"), 60)
        face = next(r for r in records if r["modality"] == "audiovisual")
        assert face["face_id"] is not None and face["window_fill"] > 0.5
        assert abs(time.time_ns() - face["window_end_ns"]) < 10 * NS_PER_SECOND  # stamps are ROS time
        # An image in an encoding we do not read: counted, the node keeps going.
        image_pub.publish(Image(height=2, width=2, encoding="16UC1", step=4, data=bytes(8)))
        # The microphone goes quiet: diagnostics warn, windows go on video-only.
        feed["audio"] = False
        mark = len(records)
        spin_until(executor, lambda: seen("video", mark) and any(
            d.level == DiagnosticStatus.WARN and "ros audio silent" in d.message for d in diagnostics), 30)
        degraded = next(r for r in records[mark:] if r["modality"] == "video")
        assert "ros audio silent" in degraded["degraded"]
        # Audio returns (and video switches to JPEG): audiovisual again, diagnostics OK.
        feed["audio"], feed["compressed"] = True, True
        mark, diag_mark = len(records), len(diagnostics)
        spin_until(executor, lambda: seen("audiovisual", mark) and any(
            d.level == DiagnosticStatus.OK for d in diagnostics[diag_mark:]), 30)
        image_source = node.ros_inputs.image
        assert image_source.status.counters["bad_messages"] == 1
        assert node.ros_inputs.audio.status.counters["messages"] > 20
        ends = [r["window_end_ns"] for r in records]
        assert ends == sorted(ends)
    finally:
        executor.shutdown()
        node.stop()
        node.destroy_node()
        probe.destroy_node()


def test_node_with_no_input_reports_error(context, spin_until):
    diagnostics = []
    probe = rclpy.create_node("probe", context=context)
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m.status[0]), 10)
    node = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value="ros"), Parameter("mic", value="none"), Parameter("model", value="tiny"),
        Parameter("input_silence_s", value=0.3),
    ])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        spin_until(executor, lambda: any(d.level == DiagnosticStatus.ERROR for d in diagnostics), 10)
        error = next(d for d in diagnostics if d.level == DiagnosticStatus.ERROR)
        # the message names the topics it means (resolved in the node's namespace)
        assert error.message == ("no input: ros image silent: no message yet on /image or /image/compressed for "
                                 + error.message.split(" for ")[-1])
    finally:
        executor.shutdown()
        node.stop()
        node.destroy_node()
        probe.destroy_node()

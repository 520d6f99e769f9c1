"""faces:=hri on loopback with real rclpy: a ROS4HRI face detector (the replay of a PyAV-written
clip, faces found beforehand) feeds the node; every output names the detector's ids, and bad
input is logged once, counted in /diagnostics, and survived."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String

from socialmae_rt.nodes.typed_messages import set_stamp

BUILT = "not built here: run `make setup` (scripts/build_interfaces.py builds the interface packages)"
msg = pytest.importorskip("socialmae_rt_msgs.msg", reason=BUILT)
hri = pytest.importorskip("hri_msgs.msg", reason=BUILT)

from socialmae_rt.nodes.hri_detector_replay import (  # noqa: E402  (needs hri_msgs)
    DetectionFrame, DetectorReplay, Recording, detect_file)
from socialmae_rt.nodes.social_perception import SocialPerceptionNode  # noqa: E402

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The sample clip's face (found at 10 fps) held for 6 s, then nobody for 1.5 s, with its sound:
    the 4 s windows ending from 4 to 6 s hear and see the face (two or three of them, wherever the
    grid falls), and the face leaves before the end."""
    from socialmae_rt.media.sample import build_sample_clip

    clip = build_sample_clip(tmp_path_factory.mktemp("hri") / "sample.mp4", seconds=8.0, fps=10)
    clip_recording = detect_file(clip.path)
    found = [frame for frame in clip_recording.frames if frame.faces]
    assert found
    step_ns = 100_000_000
    frames = [DetectionFrame(i * step_ns, found[i % len(found)].faces if i < 60 else []) for i in range(75)]
    return Recording(frames, clip_recording.audio[:int(7.5 * 16000)], 7.5)


def counts(diagnostics) -> str:
    values = {kv.key: kv.value for kv in diagnostics[-1].values} if diagnostics else {}
    return values.get("source ros4hri faces counts", "")


def test_faces_from_a_ros4hri_detector_keep_its_ids_and_bad_input_is_counted(context, spin_until, recording):
    names = {name for frame in recording.frames for name, _ in frame.faces}
    assert names and any(not frame.faces for frame in recording.frames)  # someone, then nobody, in the clip
    probe = rclpy.create_node("ros4hri_face_detector", context=context)
    replay = DetectorReplay(probe, recording)
    results, typed, diagnostics = [], [], []
    probe.create_subscription(String, "/social_perception/results", lambda m: results.append(json.loads(m.data)),
                              RELIABLE)
    probe.create_subscription(msg.Perception, "/social_perception/perception", typed.append, RELIABLE)
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m.status[0]), 10)
    perception = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value="ros"), Parameter("faces", value="hri"), Parameter("model", value="tiny"),
        Parameter("backend", value="torch"), Parameter("hop", value=1.0),
        Parameter("input_audio_type", value="int16_array"), Parameter("input_faces_wait_s", value=0.3)])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(perception)
    executor.add_node(probe)
    try:
        assert perception.pipeline.tracker is None  # our own detector is off
        # Bad input first: an id that is no ROS name, a face whose image never comes (its only image
        # is in an encoding we cannot read); then it leaves.
        t0 = probe.get_clock().now().nanoseconds
        bad_list = hri.IdsList(ids=["ghost", "9lives"])
        set_stamp(bad_list.header.stamp, t0)
        replay.tracked.publish(bad_list)
        spin_until(executor, lambda: perception.hri_faces is not None and "ghost" in perception.hri_faces._images, 10)
        ghost = probe.create_publisher(Image, "/humans/faces/ghost/cropped", qos_profile_sensor_data)
        depth = Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(16))
        set_stamp(depth.header.stamp, t0)
        spin_until(executor, lambda: ghost.get_subscription_count() > 0, 10)
        ghost.publish(depth)
        spin_until(executor, lambda: "missing image" in counts(diagnostics) and "image encoding" in counts(diagnostics)
                   and "invalid id" in counts(diagnostics), 20)
        empty = hri.IdsList(ids=[])
        set_stamp(empty.header.stamp, t0 + 1_000_000)
        replay.tracked.publish(empty)
        spin_until(executor, lambda: "ghost" not in perception.hri_faces._images, 10)
        spin_until(executor, lambda: len(diagnostics) > 1 and "ghost" not in perception.hri_faces._images, 10)
        before = counts(diagnostics)
        assert "bad: invalid id: 1" in before and "bad: missing image: 1" in before and "bad: image encoding: 1" in before

        replay.start()
        expression_topics = lambda: {name.split("/")[3] for name, _ in probe.get_topic_names_and_types()  # noqa: E731
                                     if name.startswith("/humans/faces/") and name.endswith("/expression")
                                     and probe.count_publishers(name)}

        def seen_so_far():  # each record as (modality, face name, window end after the replay's start, why degraded)
            return [(r["modality"], r.get("face_name"), round((r["window_end_ns"] - replay.start_ns) / 1e9, 2),
                     r["degraded"]) for r in results], counts(diagnostics)

        seen = set()  # expression topics seen while the face was there (under load its record may come later)

        def heard_and_seen_a_named_face() -> bool:
            seen.update(expression_topics())
            return bool(seen) and any(r.get("face_name") in names and r["modality"] == "audiovisual" for r in results)

        spin_until(executor, heard_and_seen_a_named_face, 60, why=seen_so_far)
        assert seen <= names
        assert probe.count_publishers("/humans/faces/tracked") == 1  # the detector's; we publish none
        assert not any(probe.count_publishers(f"/humans/faces/{n}/roi") for n in names)
        # The face leaves the picture: the detector stops listing it, its expression topic goes.
        spin_until(executor, lambda: not (seen & expression_topics()), 30)
        spin_until(executor, lambda: replay.done, 30)
        spin_until(executor, lambda: len(typed) >= len(results), 10)
        last = counts(diagnostics)
    finally:
        executor.shutdown()
        replay.destroy()
        perception.stop()
        perception.destroy_node()
        probe.destroy_node()
    faces = [r for r in results if r["face_id"] is not None]
    assert faces and all(r["face_name"] in names for r in faces)
    named = {(r["face_name"], r["window_end_ns"]) for r in faces}
    for message in typed:  # the typed records name the detector's ids too ("" for the audio-only one)
        stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        assert message.face_id == "" or (message.face_id, stamp) in named, message.face_id
    assert any(message.face_id in names for message in typed)
    # Each problem was counted once, and the detector's faces went on being perceived after it (its
    # first images may be lost while the per-face topic is discovered: those count as missing).
    assert "bad: invalid id: 1" in last and "bad: image encoding: 1" in last
    assert np.isfinite([r["window_fill"] for r in faces]).all()

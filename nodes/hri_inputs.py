"""faces:=hri: faces from a ROS4HRI face detector the robot already runs, instead of our own.

Subscribes `/humans/faces/tracked` (hri_msgs/IdsList) and, for each face it lists,
`/humans/faces/<id>/cropped` (or `aligned`, `input_faces_image`; sensor_msgs/Image), both with the
sensor-data QoS. A face's image subscription is made when the detector first lists it and ended when
it stops listing it. Tracked lists and images are grouped by stamp into moments
(faces/upstream.py) that the pipeline ingests as it would camera frames; our detector and tracker
stay off, and every output names the detector's ids.

Bad input is logged once per kind and counted in /diagnostics (`source ros4hri faces`): an id that
is not a valid ROS name token (skipped), an image in an encoding we cannot read, a listed face
whose image does not come within `input_faces_wait_s` (the moment goes without it), and messages
older than a moment already taken in (late). When the detector goes silent (no tracked list for
`input_silence_s`), every face it tracked is gone.
"""

from __future__ import annotations

import time
from typing import Callable

from sensor_msgs.msg import Image

from socialmae_rt.faces.upstream import FaceIds, MomentAssembler, is_valid_face_name
from socialmae_rt.messages import SourceState, seconds_to_ns
from socialmae_rt.nodes.rep155 import TRACKED_TOPIC, hri_module
from socialmae_rt.nodes.ros_inputs import BadInput, RosInputConfig, TopicSource, image_to_bgr, stamp_to_ns

FACES_PREFIX = "/humans/faces"
POLL_S = 0.05  # how often moments that waited out their images are let go


class HriFaceInput:
    """A ROS4HRI detector's faces as one pipeline source (`source`, has video)."""

    def __init__(self, node, config: RosInputConfig, ids: FaceIds, log_error: Callable[[str], None],
                 callback_group=None) -> None:
        from rclpy.qos import qos_profile_sensor_data

        self.hri = hri_module()
        if self.hri is None:
            raise ValueError("faces:=hri needs the hri_msgs package (ROS4HRI) to read /humans/faces/tracked; "
                             "install it, or use faces:=own (our own face detector)")
        self._node = node
        self._qos = qos_profile_sensor_data
        self._group = callback_group
        self.config = config
        self.log_error = log_error
        self.source = TopicSource("ros4hri faces", config, has_video=True, has_audio=False,
                                  topics=(TRACKED_TOPIC,))
        self.assembler = MomentAssembler(ids, seconds_to_ns(config.faces_wait_s))
        self._images: dict[str, object] = {}  # face name -> its image subscription
        self._tracked = node.create_subscription(self.hri.IdsList, TRACKED_TOPIC, self._on_tracked, self._qos,
                                                 callback_group=callback_group)
        # Same callback group as the subscriptions: never at the same time as them.
        self._timer = node.create_timer(POLL_S, self._on_poll, callback_group=callback_group)

    @property
    def sources(self) -> list[TopicSource]:
        return [self.source]

    def destroy(self) -> None:
        """Stop taking the detector's topics in; the source ends."""
        self._node.destroy_timer(self._timer)
        for subscription in [self._tracked, *self._images.values()]:
            self._node.destroy_subscription(subscription)
        self._images.clear()
        self.source.close()

    # Callbacks (one callback group: never concurrent) --------------------------------------------
    def _on_tracked(self, msg) -> None:
        self.source.heard()
        names = []
        for name in msg.ids:
            if is_valid_face_name(name):
                names.append(name)
            else:
                self._bad(BadInput(f"face id {name!r} in {TRACKED_TOPIC} is not a valid ROS name token "
                                   "(a letter, then letters, digits or _; REP-155); that face is skipped"),
                          kind="invalid id")
        for name in names:
            if name not in self._images:
                self._images[name] = self._node.create_subscription(
                    Image, f"{FACES_PREFIX}/{name}/{self.config.faces_image}",
                    lambda image, name=name: self._on_image(name, image), self._qos, callback_group=self._group)
        for name in [n for n in self._images if n not in names]:  # no longer tracked: its image topic too
            self._node.destroy_subscription(self._images.pop(name))
        self._push(self.assembler.tracked(stamp_to_ns(msg.header.stamp) or time.time_ns(), names,
                                          time.monotonic_ns()))

    def _on_image(self, name: str, msg) -> None:
        self.source.heard()
        if name not in self._images:
            return  # an image that was in flight when the face left
        try:
            bgr = image_to_bgr(msg)
        except BadInput as err:
            self._bad(BadInput(f"{FACES_PREFIX}/{name}/{self.config.faces_image}: {err}"), kind="image encoding")
            return
        self._push(self.assembler.image(name, stamp_to_ns(msg.header.stamp) or time.time_ns(), bgr,
                                        time.monotonic_ns()))

    def _on_poll(self) -> None:
        if self.source.status.state is SourceState.SILENT:  # the detector stopped: nobody is tracked now
            self._push(self.assembler.forget_all())
            return
        self._push(self.assembler.due(time.monotonic_ns()))

    def _push(self, moments: list) -> None:
        for name, stamp_ns in self.assembler.missing:
            topic = f"{FACES_PREFIX}/{name}/{self.config.faces_image}"
            self._bad(BadInput(f"face {name} is tracked but no image came on {topic} within "
                               f"{self.config.faces_wait_s} s of it being listed" if stamp_ns is None else
                               f"face {name}'s image at {stamp_ns / 1e9:.3f} s did not come on {topic} within "
                               f"{self.config.faces_wait_s} s; that moment went without it"), kind="missing image")
        self.assembler.missing.clear()
        late = self.assembler.counts.late - self.source.status.counters.get("late_messages", 0)
        if late:
            self.source.status.count("late_messages", late)
        for moment in moments:
            self.source.push(moment)

    def _bad(self, err: BadInput, kind: str) -> None:
        if self.source.report_bad(err, kind):
            self.log_error(f"{self.source.status.name}: {err} (further {kind} problems are counted, not logged)")

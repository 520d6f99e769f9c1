"""Speaker attribution end to end: a generated two-person clip with a known schedule of who speaks
(espeak-ng voices, mouths driven by each voice's loudness), through the real detector, tracker,
face mesh and a tiny model."""

from __future__ import annotations

import shutil

import pytest

from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.engines import create_backend
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
from socialmae_rt.media.conversation import build_conversation_clip, parse_schedule
from socialmae_rt.model import SocialMAEConfig
from socialmae_rt.sinks import MemorySink
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import NOT_THE_SPEAKER, Pipeline, PipelineConfig
from socialmae_rt.stream.postprocess import PostprocessConfig
from socialmae_rt.stream.speakers import SpeakerConfig

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make setup)")


def person_of_each_face(pipeline: Pipeline, clip) -> dict[int, str]:
    """Face id -> person, from where the tracker last saw each face."""
    found = {}
    for track in pipeline.tracker.active_tracks():
        centre = (track.box.x0 + track.box.x1) / 2
        for person, (x0, _, x1, _) in clip.head_boxes.items():
            if x0 <= centre <= x1:
                found[track.face_id] = person
    return found


def test_the_speaker_is_found_and_only_the_speaker_hears_the_window(tmp_path):
    clip = build_conversation_clip(tmp_path / "two.mp4", "A:0-5 B:5.5-11")
    sink = MemorySink()
    with FaceDetector(FaceDetectorConfig()) as detector:
        pipeline = Pipeline(create_backend("torch", None, TINY), FaceTracker(detector, TrackerConfig()), [sink],
                            PipelineConfig(hop_s=0.5, speakers=SpeakerConfig(enabled=True, audio_to="speakers")))
        drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip.path))))
        people = person_of_each_face(pipeline, clip)
        pipeline.close()
    assert sorted(people.values()) == ["A", "B"]  # two faces, one id each
    judged = right = 0
    for record in sink.results:
        assert record.speaking is not None and 0 <= record.speaking.probability <= 1
        end_s = record.window_end_ns / 1e9
        truth = clip.sole_speaker(end_s - 4.0, end_s)
        someone_speaks = any(r.speaking.is_speaker for r in sink.results if r.window_end_ns == record.window_end_ns)
        if record.speaking.is_speaker or not someone_speaks:
            assert record.modality == "audiovisual" and record.degraded is None
        else:
            assert record.modality == "video" and record.degraded == NOT_THE_SPEAKER
        if truth is not None:
            judged += 1
            right += record.speaking.is_speaker == (people[record.face_id] == truth)
        assert record.to_json()["speaking"] == record.speaking.to_json()
    assert judged >= 10  # both faces in every window where exactly one person speaks
    assert right / judged >= 0.9, f"{right} of {judged} right"


def run_laughing(clip_path, **speakers):
    """Thresholds any probability meets: the room laughs from the first window on (one onset)."""
    sink = MemorySink()
    laughs_at_once = PostprocessConfig(laughter_on=1e-6, laughter_off=1e-6, laughter_min_duration_s=0.0)
    with FaceDetector(FaceDetectorConfig()) as detector:
        pipeline = Pipeline(create_backend("torch", None, TINY), FaceTracker(detector, TrackerConfig()), [sink],
                            PipelineConfig(hop_s=1.0, postprocess=laughs_at_once,
                                           speakers=SpeakerConfig(enabled=True, **speakers)))
        drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip_path))))
        pipeline.close()
    return sink


def test_a_laugh_carries_the_face_that_speaks_or_none_when_nobody_visible_does(tmp_path):
    speaking = build_conversation_clip(tmp_path / "a.mp4", "A:0-6")
    sink = run_laughing(speaking.path)
    onsets = [e for e in sink.events if e.kind.value == "laughter_onset"]
    first = [r for r in sink.results if r.window_end_ns == sink.results[0].window_end_ns]
    speaker = next(r.face_id for r in first if r.speaking.is_speaker)
    assert len(onsets) == 1 and onsets[0].face_id == speaker  # one laugh in the room, not one per face
    silent = build_conversation_clip(tmp_path / "b.mp4", "B:5-7")  # nobody speaks in the first window
    sink = run_laughing(silent.path, audio_to="speakers")
    onsets = [e for e in sink.events if e.kind.value == "laughter_onset"]
    assert len(onsets) == 1 and onsets[0].face_id is None  # heard, but no visible face was speaking


def test_two_people_keep_two_ids_through_occlusions(tmp_path):
    from socialmae_rt.messages import VideoFrame

    clip = build_conversation_clip(tmp_path / "hidden.mp4", "A:0-4 B:4-8", occlusions="B:2-3.5 A:5-7")
    ids: dict[int, set[str]] = {}
    source = MediaFileSource(MediaFileConfig(str(clip.path)))
    source.open()
    with FaceDetector(FaceDetectorConfig()) as detector:
        tracker = FaceTracker(detector, TrackerConfig())
        for item in source:
            if isinstance(item, VideoFrame):
                hidden = {o.speaker for o in clip.occlusions if o.start_s <= item.stamp_ns / 1e9 < o.end_s}
                for crop in tracker.update(item):
                    centre = (crop.box.x0 + crop.box.x1) / 2
                    person = next(p for p, (x0, _, x1, _) in clip.head_boxes.items() if x0 <= centre <= x1)
                    assert person not in hidden
                    ids.setdefault(crop.face_id, set()).add(person)
    assert sorted(ids) == [1, 2] and sorted(p for people in ids.values() for p in people) == ["A", "B"]


def test_schedules_are_checked():
    with pytest.raises(ValueError, match=r"expected SPEAKER:START-END, e.g. A:0-5"):
        parse_schedule("A0-5")
    with pytest.raises(ValueError, match="speaker must be A or B"):
        parse_schedule("C:0-5")
    assert [t.speaker for t in parse_schedule("B:5-9 A:0-5")] == ["A", "B"]

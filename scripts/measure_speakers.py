"""Speaker attribution on a generated two-person clip: per window, each face's speaking probability
against the schedule, and the share of windows with one sole speaker where that speaker was picked.

    .venv/bin/python scripts/measure_speakers.py ["A:0-5 B:5-10 A:10-14"] [--occlusions "B:6-7.5"] [--model tiny]

Also prints how many face ids the two people got (the goal: two).
"""
import argparse
import tempfile
from pathlib import Path

from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.engines import create_backend
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
from socialmae_rt.media.conversation import build_conversation_clip
from socialmae_rt.model import SocialMAEConfig
from socialmae_rt.model.config import MODEL_NAMES
from socialmae_rt.sinks import MemorySink
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig
from socialmae_rt.stream.speakers import SpeakerConfig

parser = argparse.ArgumentParser()
parser.add_argument("schedule", nargs="?", default="A:0-5 B:5-10 A:10-14")
parser.add_argument("--model", default="tiny", choices=MODEL_NAMES)
parser.add_argument("--occlusions", default="", help="PERSON:START-END stretches hidden behind a panel")
args = parser.parse_args()
with tempfile.TemporaryDirectory() as folder:
    clip = build_conversation_clip(Path(folder) / "two.mp4", args.schedule, occlusions=args.occlusions)
    sink = MemorySink()
    with FaceDetector(FaceDetectorConfig()) as detector:
        pipeline = Pipeline(create_backend("torch", None, SocialMAEConfig.variant(args.model)),
                            FaceTracker(detector, TrackerConfig()), [sink],
                            PipelineConfig(hop_s=0.5, speakers=SpeakerConfig(enabled=True)))
        drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip.path))))
        person = {}
        for track in pipeline.tracker.active_tracks():
            centre = (track.box.x0 + track.box.x1) / 2
            person.update({track.face_id: p for p, (x0, _, x1, _) in clip.head_boxes.items() if x0 <= centre <= x1})
        pipeline.close()
windows = {}
for record in sink.results:
    windows.setdefault(record.window_end_ns, {})[record.face_id] = record.speaking
judged = right = 0
for end_ns, faces in sorted(windows.items()):
    end_s = end_ns / 1e9
    truth = clip.sole_speaker(end_s - 4.0, end_s)
    picked = next((person.get(face_id, "?") for face_id, s in faces.items() if s.is_speaker), None)
    cells = " ".join(f"{person.get(face_id, '?')}(face {face_id}) {s.probability:.2f}{'*' if s.is_speaker else ' '}"
                     for face_id, s in sorted(faces.items()))
    print(f"{end_s:5.1f} s  sole speaker {truth or '-'}  {cells}")
    if truth is not None:
        judged += 1
        right += picked == truth
print(f"schedule {args.schedule}, occlusions {args.occlusions or '-'}: the sole speaker picked in {right} of "
      f"{judged} windows ({100 * right / max(judged, 1):.0f} %); {len({r.face_id for r in sink.results})} face ids "
      f"for 2 people ({person})")

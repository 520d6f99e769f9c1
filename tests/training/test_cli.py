"""The training commands end to end on a generated dataset read through a manifest."""

import json
from pathlib import Path

from socialmae_rt.cli import main
from socialmae_rt.tasks import EMOTION_LABELS


def test_prepare_finetune_evaluate_from_the_command_line(make_synthetic, tmp_path, capsys):
    data = make_synthetic(num_classes=3, clips_per_class=2, num_speakers=2, split_fractions={"train": 0.5, "val": 0.5})
    # The same clips, labelled as emotions (a known task) in a manifest of the user's own.
    rows = data.manifest.read_text().splitlines()
    header = rows[0].replace(",synthetic", ",emotion")
    body = [r.rsplit(",", 1)[0] + "," + EMOTION_LABELS[int(r.rsplit("class", 1)[1])] for r in rows[1:]]
    manifest = data.root / "emotion_manifest.csv"
    manifest.write_text("\n".join([header, *body]) + "\n")
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main(["prepare-data", "--root", str(manifest), "--tasks", "emotion", "--cache", str(cache), "--crop", "full"]) == 0
    assert main(["finetune", "--cache", str(cache), "--tasks", "emotion", "--model", "tiny", "--freeze-backbone",
                 "--epochs", "1", "--batch-size", "3", "--out-dir", str(run)]) == 0
    assert (run / "best.safetensors").exists() and (run / "summary.json").exists()
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--weights", str(run / "best.safetensors"), "--cache", str(cache), "--split", "val",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 3 and 0.0 <= report["tasks"]["emotion"]["f1_macro"] <= 1.0
    assert len(report["tasks"]["emotion"]["confusion"]) == 6
    assert out.with_suffix(".png").stat().st_size > 5000
    assert "emotion: {" in capsys.readouterr().out
    # without --out: beside the checkpoint, not in an outputs/ folder of the current directory
    assert main(["evaluate", "--weights", str(run / "best.safetensors"), "--cache", str(cache), "--split", "val"]) == 0
    assert (run / "best.val.evaluate.json").is_file() and (run / "best.val.evaluate.png").is_file()


def test_make_dataset_writes_clips_the_training_commands_take(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["make-dataset", "--out", str(out), "--classes", "2", "--clips-per-class", "2", "--speakers", "2"]) == 0
    said = capsys.readouterr().out
    assert "wrote 4 clips (2 classes x 2)" in said and "--tasks emotion" in said
    header, *rows = (out / "manifest.csv").read_text().splitlines()
    assert header.endswith(",emotion") and {row.rsplit(",", 1)[1] for row in rows} == {"anger", "disgust"}
    assert main(["prepare-data", "--root", str(out / "manifest.csv"), "--tasks", "emotion", "--cache",
                 str(out / "cache"), "--crop", "full"]) == 0


def test_bad_training_input_is_one_line(tmp_path, capsys):
    assert main(["finetune", "--cache", str(tmp_path), "--tasks", "emotion", "--recipe", "no_such_recipe"]) == 2
    assert "no bundled recipe of that name (bundled: cremad_emotion" in capsys.readouterr().err
    assert main(["finetune", "--cache", str(tmp_path / "missing"), "--tasks", "emotion"]) == 2


def test_distill_a_bundle_from_a_plain_folder_of_videos(synthetic_dataset, released_files, tmp_path, capsys):
    """Unlabelled videos in speaker folders -> prepare-data --reader folder -> distill --teachers <bundle>:
    one student with every task, its agreement with each teacher printed and kept."""
    import shutil

    videos = tmp_path / "videos"
    for item in synthetic_dataset.items:
        target = videos / str(item.speaker) / Path(item.video).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(item.video, target)
    cache, bundle, run = tmp_path / "cache", tmp_path / "bundle", tmp_path / "run"
    assert main(["prepare-data", "--reader", "folder", "--root", str(videos), "--cache", str(cache),
                 "--crop", "full"]) == 0
    for task in ("emotion", "laughter", "personality", "encoder"):
        assert main(["weights", "import", str(released_files[task]), "--task", task, "--out", str(bundle)]) == 0
    assert main(["distill", "--cache", str(cache), "--teachers", str(bundle), "--student", "tiny",
                 "--student-depth", "2", "--epochs", "1", "--batch-size", "3", "--out-dir", str(run)]) == 0
    out = capsys.readouterr().out
    for head in ("emotion", "laughter", "personality"):
        assert f"agreement with the {head} teacher, trained student:" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agreement"]["clips"] >= 1
    student = json.loads((run / "student.json").read_text())
    assert student["model"]["head_labels"]["personality"][0] == "openness"
    # The bundle's pretrained encoder (tiny, 2 blocks) started the student: same width and depth.
    assert student["metadata"]["student_init"] == str(bundle / "encoder.safetensors")

"""TaskSpec: validation, label checks, targets; the known tasks match the live pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS
from socialmae_rt.training.data.crema_d import EMOTION_CODES
from socialmae_rt.training.data.tasks import (
    EMOTION, KNOWN_TASKS, LAUGHTER, PERSONALITY, SMILE_LAUGHTER, TaskSpec, get_task, resolve_tasks)


def test_known_tasks_use_the_live_label_orders():
    assert EMOTION.labels == EMOTION_LABELS == ("anger", "disgust", "fear", "happy", "neutral", "sad")
    assert list(EMOTION.labels) == sorted(EMOTION.labels)  # alphabetical, as the released head
    assert PERSONALITY.labels == PERSONALITY_TRAITS
    assert PERSONALITY.kind == "regression" and PERSONALITY.value_range == (0.0, 1.0)
    assert sorted(EMOTION_CODES.values()) == list(EMOTION.labels)
    assert set(KNOWN_TASKS) == {"emotion", "laughter", "smile_laughter", "personality"}


def test_targets_by_kind():
    assert EMOTION.encode("happy").dtype == np.int64 and int(EMOTION.encode("happy")) == 3
    laughing = LAUGHTER.encode(True)
    assert laughing.dtype == np.float32 and laughing.shape == () and float(laughing) == 1.0
    both = SMILE_LAUGHTER.encode({"smile": 1, "laughter": 0})
    assert both.tolist() == [1.0, 0.0] and both.dtype == np.float32
    traits = dict(zip(PERSONALITY.labels, [0.1, 0.2, 0.3, 0.4, 0.5]))
    assert PERSONALITY.encode(traits).tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert [t.num_outputs for t in (EMOTION, LAUGHTER, SMILE_LAUGHTER, PERSONALITY)] == [6, 1, 2, 5]


@pytest.mark.parametrize(
    "task, value, message",
    [
        (EMOTION, "surprise", "unknown class 'surprise'"),
        (LAUGHTER, 2, "outside [0.0, 1.0]"),
        (LAUGHTER, "yes", "expected a finite number"),
        (SMILE_LAUGHTER, {"smile": 1}, "missing ['laughter']"),
        (PERSONALITY, {**dict.fromkeys(PERSONALITY_TRAITS, 0.5), "interview": 0.5}, "unknown ['interview']"),
        (PERSONALITY, dict.fromkeys(PERSONALITY_TRAITS, 1.5), "outside [0.0, 1.0]"),
        (PERSONALITY, [0.5] * 5, "expected a mapping"),
    ],
)
def test_bad_labels_say_what_was_expected(task, value, message):
    with pytest.raises(ValueError, match="clip7") as error:
        task.check(value, where="clip7")
    assert message in str(error.value)


def test_spec_validation():
    with pytest.raises(ValueError, match="kind must be one of"):
        TaskSpec("x", "ranking", ("a", "b"))
    with pytest.raises(ValueError, match="exactly one label name"):
        TaskSpec("x", "binary", ("a", "b"))
    with pytest.raises(ValueError, match="at least 2 classes"):
        TaskSpec("x", "classification", ("a",))
    with pytest.raises(ValueError, match="unique"):
        TaskSpec("x", "multilabel", ("a", "a"))
    with pytest.raises(ValueError, match="unknown task 'mood'"):
        get_task("mood")
    with pytest.raises(ValueError, match="listed twice"):
        resolve_tasks(["emotion", EMOTION])
    assert TaskSpec.from_dict(PERSONALITY.to_dict()) == PERSONALITY

import numpy as np
import pytest

from socialmae_rt.messages import seconds_to_ns
from socialmae_rt.stream.postprocess import (
    LaughterEventKind, LaughterState, LaughterStateMachine, PostprocessConfig, Postprocessor, laughter_probability,
    softmax)

S = seconds_to_ns


def run(machine, probabilities, hop=0.5, start=4.0):
    events = []
    for i, p in enumerate(probabilities):
        events += machine.update(p, S(start + i * hop))
    return events


def test_onset_after_min_duration_with_estimated_onset_time():
    machine = LaughterStateMachine(PostprocessConfig(laughter_on=0.6, laughter_off=0.4, laughter_min_duration_s=0.5), face_id=3)
    events = run(machine, [0.1, 0.7, 0.8, 0.9])
    assert [(e.kind, e.time_ns, e.window_end_ns, e.face_id) for e in events] == [
        (LaughterEventKind.ONSET, S(4.5), S(5.0), 3)
    ]
    assert machine.laughing


def test_short_spike_is_not_an_onset():
    machine = LaughterStateMachine(PostprocessConfig(laughter_min_duration_s=0.5))
    assert run(machine, [0.9, 0.2, 0.9, 0.1]) == []
    assert machine.state is LaughterState.IDLE


def test_hysteresis_offset_and_refractory():
    cfg = PostprocessConfig(laughter_on=0.6, laughter_off=0.4, laughter_min_duration_s=0.0, laughter_refractory_s=1.0)
    machine = LaughterStateMachine(cfg)
    #         onset  hold(0.5 > off) offset  refractory...    onset again
    probs = [0.7, 0.5, 0.45, 0.3, 0.9, 0.9, 0.9]
    events = run(machine, probs)
    kinds = [(e.kind, e.time_ns) for e in events]
    assert kinds == [
        (LaughterEventKind.ONSET, S(4.0)),
        (LaughterEventKind.OFFSET, S(5.5)),
        (LaughterEventKind.ONSET, S(6.5)),  # 5.5 + 1.0 s refractory: 6.0 is still too soon
    ]


def test_reset_forgets_state():
    machine = LaughterStateMachine(PostprocessConfig(laughter_min_duration_s=0.0))
    run(machine, [0.9])
    machine.reset()
    assert machine.state is LaughterState.IDLE and not machine.laughing


def test_probabilities():
    p = softmax(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(p.sum(), 1.0)
    assert p.argmax() == 2
    np.testing.assert_allclose(laughter_probability(np.array([[0.0]])), [0.5])
    np.testing.assert_allclose(laughter_probability(np.array([[0.0, np.log(3.0)]])), [0.75])
    with pytest.raises(ValueError, match="does not say which one means laughing"):
        laughter_probability(np.zeros((1, 3)))
    # A named laughing class among three (neutral, smile, laughter): its softmax probability.
    np.testing.assert_allclose(laughter_probability(np.array([[np.log(2.0), np.log(3.0), np.log(5.0)]]), 2), [0.5])


def test_smoothing_and_per_face_state():
    post = Postprocessor(PostprocessConfig(emotion_smoothing=0.5, personality_smoothing=0.9))
    hot = {"emotion": np.array([10.0, 0, 0, 0, 0, 0]), "personality": np.ones(5) * 2.0}
    cold = {"emotion": np.array([0, 0, 0, 0, 0, 10.0]), "personality": np.zeros(5)}
    first = post.update(1, hot, S(4))
    assert first.emotion["anger"] == pytest.approx(1.0, abs=1e-3)
    assert first.personality["openness"] == 1.0  # clipped to [0, 1]
    second = post.update(1, cold, S(4.5))
    assert second.emotion["anger"] == pytest.approx(0.5, abs=1e-3)
    assert second.emotion["sad"] == pytest.approx(0.5, abs=1e-3)
    assert second.personality["neuroticism"] == pytest.approx(0.9)
    other = post.update(2, cold, S(4.5))  # another face starts fresh
    assert other.emotion["sad"] == pytest.approx(1.0, abs=1e-3)
    post.forget(1)
    assert post.update(1, cold, S(5)).emotion["sad"] == pytest.approx(1.0, abs=1e-3)


def test_missing_heads_give_none_not_numbers():
    out = Postprocessor().update(None, {"emotion": np.zeros(6)}, S(4))
    assert out.laughter_probability is None and out.laughing is None and out.personality is None
    assert out.emotion is not None and out.events == []


def test_head_checks():
    post = Postprocessor()
    post.check_heads({"emotion": 6, "laughter": 1, "personality": 5})
    with pytest.raises(ValueError, match="emotion head has 7 outputs but 6 labels"):
        post.check_heads({"emotion": 7})
    with pytest.raises(ValueError, match="personality head must have 5 outputs"):
        post.check_heads({"emotion": 6, "personality": 4})


def test_head_labels_decide_how_outputs_are_read():
    post = Postprocessor()
    post.check_heads({"laughter": 3}, {"laughter": ["laughter", "smile", "neutral"]})
    logits = np.array([np.log(5.0), np.log(3.0), np.log(2.0)])
    out = post.update(None, {"laughter": logits}, 0)
    assert out.laughter_probability == pytest.approx(0.5)  # class 0 is the laughing one here
    with pytest.raises(ValueError, match="name no 'laughter' class"):
        post.check_heads({"laughter": 2}, {"laughter": ["no", "yes"]})
    with pytest.raises(ValueError, match="emotion head outputs .*'sad', 'anger'"):
        post.check_heads({"emotion": 6}, {"emotion": ["disgust", "fear", "happy", "neutral", "sad", "anger"]})
    with pytest.raises(ValueError, match="personality head outputs"):
        post.check_heads({"personality": 5}, {"personality": ["extraversion", "neuroticism", "agreeableness",
                                                              "conscientiousness", "openness"]})


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"laughter_on": 0.3, "laughter_off": 0.4}, "laughter_off <= laughter_on"),
        ({"emotion_smoothing": 1.0}, r"emotion_smoothing must be in \[0, 1\)"),
        ({"laughter_refractory_s": -1}, "laughter_refractory_s must be >= 0"),
    ],
)
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        PostprocessConfig(**fields)


def test_threshold_changes_apply_to_a_running_state_machine():
    cfg = PostprocessConfig(laughter_on=0.6, laughter_off=0.4, laughter_min_duration_s=0.0)
    machine = LaughterStateMachine(cfg)
    assert run(machine, [0.55]) == []
    cfg.laughter_on = 0.5  # e.g. a ROS parameter set at run time
    assert [e.kind for e in run(machine, [0.55], start=4.5)] == [LaughterEventKind.ONSET]

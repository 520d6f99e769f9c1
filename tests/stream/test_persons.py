"""Per-person personality: a running mean and spread per face id, forgotten with the track."""

import numpy as np
import pytest

from socialmae_rt.stream.persons import PersonEstimates
from socialmae_rt.tasks import PERSONALITY_TRAITS


def windows(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(count, len(PERSONALITY_TRAITS)))


def test_the_running_mean_and_spread_are_those_of_every_window_so_far():
    persons = PersonEstimates()
    values = windows(0, 40)
    for i, row in enumerate(values):
        estimate = persons.update(7, dict(zip(PERSONALITY_TRAITS, row)), window_end_ns=i)
        seen = values[: i + 1]
        assert estimate.windows == i + 1 and estimate.face_id == 7 and estimate.last_window_end_ns == i
        assert [estimate.personality_mean[t] for t in PERSONALITY_TRAITS] == pytest.approx(seen.mean(axis=0))
        assert [estimate.personality_std[t] for t in PERSONALITY_TRAITS] == pytest.approx(seen.std(axis=0), abs=1e-12)


def test_people_are_apart_and_a_forgotten_one_starts_afresh():
    persons = PersonEstimates()
    a, b = windows(1, 5), windows(2, 3)
    for row in a:
        persons.update(1, dict(zip(PERSONALITY_TRAITS, row)), 0)
    for row in b:
        last_b = persons.update(2, dict(zip(PERSONALITY_TRAITS, row)), 0)
    assert last_b.windows == 3 and last_b.personality_mean["openness"] == pytest.approx(b[:, 0].mean())
    persons.forget(1)
    assert 1 not in persons and 2 in persons
    again = persons.update(1, dict(zip(PERSONALITY_TRAITS, b[0])), 0)
    assert again.windows == 1 and all(v == 0.0 for v in again.personality_std.values())
    assert again.to_json()["windows"] == 1 and set(again.to_json()["personality_mean"]) == set(PERSONALITY_TRAITS)

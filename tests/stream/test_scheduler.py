import pytest

from socialmae_rt.messages import seconds_to_ns
from socialmae_rt.stream.scheduler import SchedulerConfig, WindowScheduler

S = seconds_to_ns


def test_first_window_needs_a_full_window_of_data():
    sched = WindowScheduler()
    assert sched.next_window(S(10)) is None  # not anchored
    sched.anchor(S(1))
    sched.anchor(S(2))  # ignored: the grid is fixed at the first data
    assert sched.next_window(S(4.9)) is None
    assert sched.next_window(S(5.0)) == S(5.0)
    assert sched.next_window(S(5.2)) is None  # nothing new yet
    assert sched.next_window(S(5.5)) == S(5.5)


def test_latest_wins_skips_to_the_newest_and_counts():
    sched = WindowScheduler(SchedulerConfig(hop_s=0.5, latest_wins=True))
    sched.anchor(0)
    assert sched.next_window(S(4.0)) == S(4.0)
    # inference took 2.2 s: windows 4.5, 5.0, 5.5, 6.0 are complete; only the newest runs
    assert sched.next_window(S(6.2)) == S(6.0)
    assert (sched.windows, sched.skipped) == (2, 3)
    assert sched.next_window(S(6.2)) is None


def test_every_window_mode_runs_each_in_order():
    sched = WindowScheduler(SchedulerConfig(hop_s=0.25, latest_wins=False))
    sched.anchor(0)
    ends = []
    while (end := sched.next_window(S(5.0))) is not None:
        ends.append(end)
    assert ends == [S(4.0 + 0.25 * i) for i in range(5)]
    assert sched.skipped == 0 and sched.pending(S(5.0)) == 0


def test_state_is_constant_size_under_a_slow_consumer():
    sched = WindowScheduler()
    sched.anchor(0)
    polls = list(range(5, 3600, 7))  # an hour of data, the consumer polls every 7 s
    for second in polls:
        sched.next_window(S(second))
    assert vars(sched).keys() == {"config", "hop_ns", "window_ns", "first_end_ns", "last_index", "windows", "skipped"}
    # Every grid point up to the last poll was either run or skipped, none is owed.
    assert sched.windows == len(polls)
    assert sched.windows + sched.skipped == (polls[-1] - 4) * 2 + 1
    assert sched.pending(S(polls[-1])) == 0


@pytest.mark.parametrize("hop", [0.1, 0.2, 5.0])
def test_hop_bounds(hop):
    with pytest.raises(ValueError, match="hop must be between 0.25 s and the window"):
        SchedulerConfig(hop_s=hop)

"""A real-time run's summary from its episodes and the executor's per-episode counters (the
runs themselves: test_cli's real-time demo test)."""
import pytest

from vla_edge.core.chunk_scheduler import SchedulerStats
from vla_edge.core.step_window import StepWindow
from vla_edge.tools.ros_demo import RunResult


def stats(startup: int, stalled: int, steps: list[tuple[float, bool]]) -> SchedulerStats:
    window = StepWindow(100)
    for step, switched in steps:
        window.add(step, switched)
    return SchedulerStats(startup_wait_ticks=startup, stalled_ticks=stalled, steps=window)


def test_rows_carry_retries_and_waits_and_the_clean_ratio_leaves_retried_episodes_out():
    run = RunResult(label='x', rate_hz=50.0)
    run.episodes = [{'seed': 1, 'success': True, 'time_s': 2.0, 'retries': 0},
                    {'seed': 2, 'success': True, 'time_s': 4.0, 'retries': 2},
                    {'seed': 3, 'success': False, 'time_s': 25.0, 'retries': 1}]  # timed out
    run.stats = [stats(15, 0, [(1.0, False), (1.0, False), (1.5, True)]),
                 stats(15, 10, [(0.1, False), (0.1, False), (3.0, True)]),
                 stats(15, 0, [(1.0, False), (4.0, True)])]
    s = run.summary()
    assert s['episodes_with_retries'] == 2
    assert s['per_episode'][1] == {'seed': 2, 'success': True, 'time_s': 4.0, 'retries': 2,
                                   'waited_s': pytest.approx(0.5)}
    assert s['switch_discontinuity_ratio_without_retries'] == pytest.approx(1.5)   # seed 1 only
    assert s['switch_discontinuity_ratio'] == pytest.approx(4.0)   # all: inside median 1.0

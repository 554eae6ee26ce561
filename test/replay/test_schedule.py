"""ReplaySchedule on a virtual clock: deadlines, rate, offset, loop, pause/resume, step."""
import math

import pytest

from vla_edge.replay.schedule import ReplaySchedule

MS = 1_000_000
T0 = 5_000 * MS
STAMPS = [T0, T0 + 10 * MS, T0 + 30 * MS, T0 + 60 * MS]


def drain(schedule, limit=100):
    """Publish every message exactly at its deadline; (index, loop, due_s) in order."""
    out = []
    while (due := schedule.next_due()) is not None and len(out) < limit:
        out.append((due.index, due.loop, due.due_s))
        schedule.advance()
    return out


def test_rate_one_reproduces_the_recorded_gaps_from_the_start_time():
    s = ReplaySchedule(STAMPS)
    s.start(100.0)
    got = drain(s)
    assert [i for i, _, _ in got] == [0, 1, 2, 3]
    assert [d for _, _, d in got] == pytest.approx([100.0, 100.010, 100.030, 100.060])
    assert s.finished and s.next_due() is None and s.played_count == 4


def test_rate_two_halves_every_interval():
    s = ReplaySchedule(STAMPS, rate=2.0)
    s.start(0.0)
    assert [d for _, _, d in drain(s)] == pytest.approx([0.0, 0.005, 0.015, 0.030])


def test_start_offset_skips_the_beginning_and_keeps_the_phase():
    s = ReplaySchedule(STAMPS, start_offset_s=0.015)
    s.start(0.0)
    got = drain(s)
    assert [i for i, _, _ in got] == [2, 3]
    # playback starts at bag time T0+15 ms: message 2 (T0+30 ms) is 15 ms later
    assert [d for _, _, d in got] == pytest.approx([0.015, 0.045])


def test_loop_wraps_with_one_mean_interval_and_the_bag_clock_jumps_back():
    s = ReplaySchedule(STAMPS, loop=True)
    s.start(0.0)
    got = drain(s, limit=9)
    assert [i for i, _, _ in got] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [lp for _, lp, _ in got] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    period = 0.060 + 0.020        # span + mean gap (60 ms / 3)
    assert got[4][2] == pytest.approx(period)
    assert got[8][2] == pytest.approx(2 * period)
    assert not s.finished
    assert s.bag_time_ns(2 * period + 0.005) == T0 + 5 * MS


def test_pause_freezes_position_and_resume_shifts_all_later_deadlines():
    s = ReplaySchedule(STAMPS)
    s.start(0.0)
    s.advance()                                   # message 0 published at 0.0
    s.pause(0.004)
    assert s.next_due().due_s == math.inf
    assert s.bag_time_ns(0.5) == T0 + 4 * MS      # frozen
    s.resume(1.0)
    assert s.next_due().due_s == pytest.approx(1.006)   # 10 ms gap, 4 ms of it before the pause
    assert [d for _, _, d in drain(s)] == pytest.approx([1.006, 1.026, 1.056])


def test_step_while_paused_hands_out_one_message_and_resume_keeps_the_gap():
    s = ReplaySchedule(STAMPS)
    s.start(0.0, paused=True)
    assert s.next_due().due_s == math.inf
    first = s.step()
    assert first.index == 0 and s.next_due().index == 1
    assert s.step().index == 1
    s.resume(10.0)
    assert [d for _, _, d in drain(s)] == pytest.approx([10.020, 10.050])
    assert s.step() is None                       # not paused / finished


def test_step_is_refused_while_running():
    s = ReplaySchedule(STAMPS)
    s.start(0.0)
    assert s.step() is None and s.next_due().index == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='rate'):
        ReplaySchedule(STAMPS, rate=0.0)
    with pytest.raises(ValueError, match='order'):
        ReplaySchedule([3, 2, 1])
    with pytest.raises(ValueError, match='offset'):
        ReplaySchedule(STAMPS, start_offset_s=-1.0)

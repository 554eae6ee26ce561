import pytest

from vla_edge.core.watchdog import Heartbeat, Level


def test_never_beat_is_stale():
    hb = Heartbeat('action_chunk', 3.0)
    r = hb.check(0.0)
    assert r.level == Level.STALE and r.fault and 'no action_chunk received' in r.reason


def test_timeout_after_the_last_beat():
    hb = Heartbeat('command_raw', 0.5)
    hb.beat(10.0)
    assert hb.check(10.4).level == Level.OK
    late = hb.check(10.6)
    assert late.level == Level.STALE and late.values['age_s'] == pytest.approx(0.6)
    hb.beat(10.7)
    assert hb.check(10.8).level == Level.OK


def test_inference_hang_shows_as_no_new_chunk():
    hb = Heartbeat('action_chunk', 3.0)
    for t in (0.0, 1.0, 2.0):        # a chunk a second, then inference hangs
        hb.beat(t)
    assert [hb.check(t).fault for t in (4.9, 5.1)] == [False, True]
    assert hb.result_name == 'liveness.action_chunk'


def test_out_of_order_beat_does_not_rewind():
    hb = Heartbeat('x', 1.0)
    hb.beat(5.0)
    hb.beat(4.0)
    assert hb.last_beat_s == 5.0 and hb.beats == 2


def test_a_clock_that_goes_back_counts_silence_from_the_jump():
    """A looped bag: the last beat at 100 s, then the clock reads 10 s and nothing arrives.
    Kept as it was, the beat would read fresh for 90 s."""
    hb = Heartbeat('command_raw', 0.5)
    hb.beat(100.0)
    assert hb.check(10.0).level == Level.OK      # silence counted from here
    stale = hb.check(10.6)
    assert stale.level == Level.STALE and stale.values['age_s'] == pytest.approx(0.6)
    hb.beat(10.7)                                # and a beat on the new timeline counts
    assert hb.check(11.1).level == Level.OK and hb.check(11.3).fault


def test_zero_timeout_is_unmonitored_and_negative_is_refused():
    assert Heartbeat('x', 0.0).check(100.0).level == Level.OK
    with pytest.raises(ValueError, match='timeout_s'):
        Heartbeat('x', -1.0)

"""wait_until: true as soon as the condition holds, false at the deadline or on stop."""
import threading
import time

from vla_edge.core.json_safe import finite_for_json
from vla_edge.core.polling import wait_until


def test_wait_until_returns_as_soon_as_the_condition_holds():
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.05, 5.0, poll_s=0.005)
    assert time.monotonic() - start < 1.0


def test_wait_until_gives_up_at_the_deadline_or_when_stopped():
    assert not wait_until(lambda: False, 0.05)
    stop = threading.Event()
    stop.set()
    start = time.monotonic()
    assert not wait_until(lambda: False, 5.0, stop=stop)
    assert time.monotonic() - start < 1.0


def test_non_finite_floats_become_null():
    assert finite_for_json({'a': float('nan'), 'b': [1.0, float('inf')], 'c': (2, 'x')}) == {
        'a': None, 'b': [1.0, None], 'c': [2, 'x']}

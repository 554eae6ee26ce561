"""Precise deadlines from a Python thread: what CPython and Linux need to be told.

Three things made a publishing thread late by milliseconds on a 2-core machine (measured with
100 messages at 50-100 Hz, interval error vs the recording):

- the GIL: a thread waking for its deadline must take the GIL, and with CPython's default 5 ms
  switch interval another busy Python thread (an executor) may keep it that long;
- timer slack: Linux delays a sleeping thread's wake-up by up to 50 us to batch wake-ups;
- the scheduler: under CPU load a busy-waiting thread is preempted for whole time slices.

The player sleeps until shortly before a deadline and busy-waits the rest (its own choice);
these helpers handle the three above.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

_gil = {'lock': threading.Lock(), 'players': 0, 'saved_s': 0.005}


@contextlib.contextmanager
def gil_switch_interval(interval_s: float | None):
    """Shorten the GIL switch interval while playing (process-wide; restored by the last player).

    A thread waking for its deadline must take the GIL; with CPython's default 5 ms interval a
    busy executor thread can hold it that long, and then a message is milliseconds late
    (measured here: interval error max 2-3.5 ms with 5 ms, < 0.8 ms with 0.5 ms).
    """
    if interval_s is None:
        yield
        return
    with _gil['lock']:
        if _gil['players'] == 0:
            _gil['saved_s'] = sys.getswitchinterval()
            sys.setswitchinterval(min(interval_s, _gil['saved_s']))
        _gil['players'] += 1
    try:
        yield
    finally:
        with _gil['lock']:
            _gil['players'] -= 1
            if _gil['players'] == 0:
                sys.setswitchinterval(_gil['saved_s'])


def tune_publishing_thread(realtime_priority: int, log) -> None:
    """Tighter sleeps (1 ns timer slack instead of 50 us) and, if asked, real-time priority.

    Under CPU load the scheduler may preempt the thread in its busy-wait: measured here with one
    extra busy process on 2 cores, interval error p95 rose from ~0.01 ms to ~0.5 ms. SCHED_FIFO
    needs CAP_SYS_NICE (or an rtprio limit); without it this warns and plays on.
    """
    if sys.platform.startswith('linux'):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK = 29
    if realtime_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(realtime_priority))
        except (OSError, AttributeError) as exc:
            log.warning(f'no real-time priority for the player thread ({exc}); timing may '
                        f'suffer under CPU load')

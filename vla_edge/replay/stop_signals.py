"""Ctrl-C and SIGTERM as a request to stop, not an exception in the middle of a bag write.

Python raises KeyboardInterrupt wherever the main thread happens to be, possibly inside a write
to the storage file. Inside `stop_requested()`, the first SIGINT/SIGTERM only sets an event that
the verb's loop polls; a second one raises KeyboardInterrupt as usual (an impatient operator
still gets out). Outside the main thread (tests, embedding) it installs nothing.
"""
from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_requested():
    """Yield a threading.Event set by the first SIGINT/SIGTERM."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

"""Waiting for a condition with a deadline: the one polling loop the tools and tests share."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout_s: float, poll_s: float = 0.02,
               stop: threading.Event | None = None) -> bool:
    """True as soon as `condition()` is truthy; False at the deadline (or when `stop` is set).

    The condition is checked once more at the end, so a deadline that passed while sleeping does
    not hide a condition that became true meanwhile."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())

"""The executor's committed prefix, placed on the chunk that will be planned.

A request carries the actions the executor has committed to from the request time on; the chunk
is planned from an observation taken earlier (or, rarely, later). Rows of the chunk before the
request time will be past when it lands (the executor drops them), so they are pinned to the
first committed action; rows the observation already passed are cut from the prefix.
"""
from __future__ import annotations

import numpy as np


def align_prefix(prefix: np.ndarray, request_stamp_s: float, observation_stamp_s: float,
                 rate_hz: float, horizon: int) -> np.ndarray | None:
    """(rows, A) for chunk rows 0.. (at most `horizon`), or None when nothing of the prefix is
    left. Raises ValueError when the prefix starts at or beyond `horizon` rows after the
    observation (a stalled camera or another clock): planning then goes on without it."""
    offset = int(round((request_stamp_s - observation_stamp_s) * rate_hz))
    if offset >= horizon:
        raise ValueError(f'the request is {offset / rate_hz:.3f} s after the frame planned from: '
                         'its committed prefix starts beyond the chunk (camera stalled, or '
                         'stamped on another clock?)')
    if offset < 0:   # the frame is newer than the request: part of the prefix is past
        prefix = prefix[-offset:]
        offset = 0
    if not len(prefix):
        return None
    return np.vstack([np.repeat(prefix[:1], offset, axis=0), prefix])[:horizon]

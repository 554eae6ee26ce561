"""Which recorded message is due when: rate, start offset, loop, pause and step, on any clock.

Pure logic, no rclpy and no real time: every method that needs "now" takes it as an argument, so
tests drive it with a virtual clock and the player drives it with `time.monotonic()`.

Model. Playback has a *position* on the bag's timeline in nanoseconds since the play start
(`start_ns` = first bag timestamp + start offset), growing across loops. Running, the position
advances at `rate` bag-seconds per wall second from an anchor (wall time, position) set at
start/resume; paused, it stands still. Message i of loop k sits at virtual position
`t_i - start_ns + k * loop_period_ns` and is due when the position reaches it:

    due_s = anchor_wall_s + (virtual_ns - anchor_position_ns) / rate / 1e9

Absolute deadlines from one anchor do not accumulate drift the way "sleep for the gap" does.
A loop's period is the played span plus `loop_gap_s` (default: the bag's mean message interval,
so a periodic stream stays periodic across the wrap).
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Due:
    """The next message: its index in the timeline, its loop pass and when it is due."""

    index: int
    loop: int
    due_s: float            # math.inf while paused


class ReplaySchedule:
    """Timeline of message timestamps -> deadlines. Not thread-safe: the player holds a lock."""

    def __init__(self, timestamps_ns: Sequence[int], rate: float = 1.0,
                 start_offset_s: float = 0.0, loop: bool = False,
                 loop_gap_s: float | None = None):
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f'rate {rate!r} must be a finite number > 0')
        if start_offset_s < 0:
            raise ValueError(f'start offset {start_offset_s!r} s must be >= 0')
        if any(b < a for a, b in zip(timestamps_ns, timestamps_ns[1:])):
            raise ValueError('timestamps must be in non-decreasing order')
        self.timestamps_ns = list(timestamps_ns)
        self.rate = float(rate)
        self.loop = loop
        n = len(self.timestamps_ns)
        first_ns = self.timestamps_ns[0] if n else 0
        self.start_ns = first_ns + int(round(start_offset_s * 1e9))
        self.first = bisect.bisect_left(self.timestamps_ns, self.start_ns)
        if loop_gap_s is None:
            span = self.timestamps_ns[-1] - first_ns if n > 1 else 0
            loop_gap_ns = span // (n - 1) if n > 1 else 0
        else:
            loop_gap_ns = int(round(loop_gap_s * 1e9))
        last_ns = self.timestamps_ns[-1] if n else self.start_ns
        self.loop_period_ns = max(0, last_ns - self.start_ns) + loop_gap_ns
        if loop and self.first < n and self.loop_period_ns <= 0:
            self.loop_period_ns = 1_000_000    # one message at the offset: loop at 1 kHz at most
        self._index = self.first
        self._loop = 0
        self._anchor_wall_s: float | None = None
        self._anchor_pos_ns = 0
        self._paused = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._anchor_wall_s is not None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def finished(self) -> bool:
        return self._index >= len(self.timestamps_ns)

    @property
    def played_count(self) -> int:
        """Messages handed out so far (all loops)."""
        per_loop = len(self.timestamps_ns) - self.first
        return self._loop * per_loop + (min(self._index, len(self.timestamps_ns)) - self.first)

    def _virtual_ns(self, index: int, loop: int) -> int:
        return self.timestamps_ns[index] - self.start_ns + loop * self.loop_period_ns

    def position_ns(self, now_s: float) -> int:
        """Virtual playback position (ns since the play start, growing across loops)."""
        if self._anchor_wall_s is None:
            return 0
        if self._paused:
            return self._anchor_pos_ns
        return self._anchor_pos_ns + int((now_s - self._anchor_wall_s) * self.rate * 1e9)

    def bag_time_ns(self, now_s: float) -> int:
        """The bag's own clock at `now_s` (what /clock publishes); jumps back when a loop wraps."""
        within = self.position_ns(now_s) - self._loop * self.loop_period_ns
        return self.start_ns + max(0, within)

    # -- control -------------------------------------------------------------------------------

    def start(self, now_s: float, paused: bool = False) -> None:
        self._anchor_wall_s = now_s
        self._anchor_pos_ns = 0
        self._paused = paused

    def pause(self, now_s: float) -> None:
        if self._paused or self._anchor_wall_s is None:
            self._paused = True
            return
        self._anchor_pos_ns = self.position_ns(now_s)
        self._paused = True

    def resume(self, now_s: float) -> None:
        if self._anchor_wall_s is None:
            self.start(now_s)
            return
        if self._paused:
            self._anchor_wall_s = now_s
            self._paused = False

    # -- messages ------------------------------------------------------------------------------

    def next_due(self) -> Due | None:
        """The next message and its deadline (inf while paused); None when playback is over."""
        if self.finished:
            return None
        if self._anchor_wall_s is None or self._paused:
            return Due(self._index, self._loop, math.inf)
        lag_ns = self._virtual_ns(self._index, self._loop) - self._anchor_pos_ns
        return Due(self._index, self._loop, self._anchor_wall_s + lag_ns / self.rate / 1e9)

    def advance(self) -> None:
        """The due message was published: move to the next one (wrapping when looping)."""
        if self.finished:
            return
        self._index += 1
        if self._index >= len(self.timestamps_ns) and self.loop and self.first < self._index:
            self._index = self.first
            self._loop += 1

    def step(self) -> Due | None:
        """While paused: hand out the next message now and move the position to it.

        Resuming afterwards keeps the recorded gap to the message after it. Returns None when
        not paused (stepping a running playback has no meaning) or when playback is over.
        """
        if not self._paused or self.finished:
            return None
        due = Due(self._index, self._loop, math.inf)
        self._anchor_pos_ns = self._virtual_ns(self._index, self._loop)
        if self._anchor_wall_s is None:
            self._anchor_wall_s = 0.0
        self.advance()
        return due

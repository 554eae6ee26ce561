"""When to ask for the next chunk, and what to execute at each control tick (no clock, no ROS).

Time is in control ticks. The owner (the ROS executor node on a real clock, or the closed-loop
evaluator on a virtual one) calls, every tick:
  `wants_chunk(tick)` -> if True, send a request (with `committed_prefix(tick)`) and
  `request_sent(tick)`; when a chunk arrives, `chunk_arrived(...)`; then `next_action(tick)`.

- `async`: request when the queue is down to the tracked latency (high percentile) plus a margin,
  so the next chunk lands before the current one runs out; and, with `max_action_age_s` (A),
  early enough that the next chunk lands by the time the current one's observation is A old.
  A chunk's view is already L old when it lands (L: latency), so with L < A/2 actions run on
  views at most A old; with L >= A/2 it replans continuously (one request in flight) and views
  reach 2L. The deadline keeps the robot moving; the age bound keeps it acting on a recent view
  of the scene, which keeps a policy consistent when inference is slow (docs/measurements.md,
  "Replanning and merge strategies").
- `sync`: request only when the queue is empty; the robot holds while it waits.
A chunk is stamped with its observation tick; on arrival, the actions for ticks the robot has
already moved through since then are dropped (exactly those: ticks spent holding still do not make
actions stale, since the scene the chunk was planned from did not change).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vla_edge.core.action_queue import ActionQueue
from vla_edge.core.chunk_merge import MergeConfig, discontinuity_ratio, merge_chunks
from vla_edge.core.latency import LatencyTracker
from vla_edge.core.step_window import StepWindow

MODES = ('sync', 'async')
DEFAULT_STEP_WINDOW = 6000   # ticks: SchedulerConfig's 120 s at its 50 Hz
# The window in ticks is capped: a diagnostics publish takes the median of it on the control
# thread, ~1 ms at this size and ~12 ms at 600 s x 1 kHz (measured in the session 14 review).
MAX_STEP_WINDOW = 30_000


@dataclass(frozen=True)
class SchedulerConfig:
    """How chunks are requested and joined. Times in seconds, rates in Hz."""

    control_rate_hz: float = 50.0
    mode: str = 'async'
    merge: MergeConfig = field(default_factory=MergeConfig)
    trigger_margin_ticks: int = 5
    latency_window: int = 50
    latency_percentile: float = 95.0
    request_timeout_s: float = 2.0     # re-request if a chunk never comes
    motion_dims: int = 2               # leading action dims that are continuous motion
    max_action_age_s: float = 0.3      # replan so actions act on views at most this old; 0: off
    smoothness_window_s: float = 120.0  # switch smoothness is over the steps of this last while

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if not 1.0 <= self.control_rate_hz <= 1000.0:
            raise ValueError(f'control_rate_hz must be in [1, 1000], got {self.control_rate_hz}')
        if not 0 <= self.trigger_margin_ticks <= 100:
            raise ValueError(f'trigger_margin_ticks must be in [0, 100], '
                             f'got {self.trigger_margin_ticks}')
        if not 0.0 <= self.max_action_age_s <= 60.0:
            raise ValueError(f'max_action_age_s must be in [0, 60], got {self.max_action_age_s}')
        if not 1.0 <= self.smoothness_window_s <= 600.0:
            raise ValueError(f'smoothness_window_s must be in [1, 600], '
                             f'got {self.smoothness_window_s}')
        if self.request_timeout_s <= 0:
            raise ValueError(f'request_timeout_s must be > 0, got {self.request_timeout_s}')


@dataclass
class SchedulerStats:
    """Counters a run or a node reports (and diagnostics publish)."""

    chunks_received: int = 0
    stalled_ticks: int = 0          # queue dry after the first chunk: the loop starved
    startup_wait_ticks: int = 0     # waiting for the very first chunk
    dropped_actions: int = 0
    chunks_all_past: int = 0        # every action already past on arrival: nothing to execute
    timeouts: int = 0
    steps: StepWindow = field(default_factory=lambda: StepWindow(DEFAULT_STEP_WINDOW))

    @property
    def waited_ticks(self) -> int:
        """Ticks without a chunk to play: the first one's wait and every stall after it (what
        async wins over sync is the difference in these)."""
        return self.startup_wait_ticks + self.stalled_ticks

    @property
    def switch_steps(self) -> np.ndarray:
        """|delta motion| at chunk switches, over the recent window (`smoothness_window_s`)."""
        return self.steps.switch_steps

    @property
    def inside_steps(self) -> np.ndarray:
        """|delta motion| inside chunks, over the same window."""
        return self.steps.inside_steps

    @property
    def switch_discontinuity_ratio(self) -> float:
        return discontinuity_ratio(*self.steps.split())


class ChunkScheduler:
    """Owns the action queue, the latency estimate, and the stall/drop/smoothness counters."""

    def __init__(self, cfg: SchedulerConfig, latency: LatencyTracker | None = None):
        self.cfg = cfg
        self.queue = ActionQueue()
        self.latency = latency or LatencyTracker(cfg.latency_window, cfg.latency_percentile)
        self.stats = SchedulerStats(steps=StepWindow(self.window_ticks()))
        self.pending_since: int | None = None
        self._moving: deque[tuple[int, bool]] = deque(maxlen=4096)
        self._previous: np.ndarray | None = None
        self._switched = False
        self._last_executed_tick = -1
        self._observed_tick: int | None = None   # observation tick of the chunk being executed

    @property
    def dt_s(self) -> float:
        return 1.0 / self.cfg.control_rate_hz

    def window_ticks(self) -> int:
        """`smoothness_window_s` in control ticks, at most MAX_STEP_WINDOW."""
        return min(math.ceil(self.cfg.smoothness_window_s * self.cfg.control_rate_hz - 1e-9),
                   MAX_STEP_WINDOW)

    def lead_ticks(self) -> int:
        """Ask this many ticks before the queue runs dry: latency percentile + margin, plus the
        overlap the merge strategy blends over."""
        return self.latency_ticks() + self.cfg.trigger_margin_ticks + self.cfg.merge.overlap_ticks

    def max_age_ticks(self) -> int:
        """`max_action_age_s` in ticks, rounded up (any value above 0 keeps the rule on)."""
        return math.ceil(self.cfg.max_action_age_s * self.cfg.control_rate_hz - 1e-9)

    def latency_ticks(self) -> int:
        return math.ceil(self.latency.estimate_s() / self.dt_s - 1e-9)

    def wants_chunk(self, tick: int) -> bool:
        if self.pending_since is not None:
            if (tick - self.pending_since) * self.dt_s < self.cfg.request_timeout_s:
                return False
            self.stats.timeouts += 1   # the request was lost or the policy hung: ask again
            self.pending_since = None
        remaining = self.queue.remaining(tick)
        if self.cfg.mode == 'sync':
            return remaining == 0
        return remaining <= self.lead_ticks() or self._ages_out(tick, remaining)

    def _ages_out(self, tick: int, remaining: int) -> bool:
        """True when a chunk requested now lands just as the current one's observation reaches
        `max_action_age_s` (or later: with latency >= half of it, on every arrival)."""
        max_age = self.max_age_ticks()
        if not max_age or not remaining or self._observed_tick is None:
            return False
        return tick - self._observed_tick + self.latency_ticks() >= max_age

    def committed_prefix(self, tick: int) -> np.ndarray | None:
        """For prefix_inpaint: the queued actions that will run while the next chunk computes."""
        if self.cfg.merge.strategy != 'prefix_inpaint':
            return None
        prefix = self.queue.upcoming(tick, self.lead_ticks())   # overlap is 0 here
        return prefix if len(prefix) else None

    def request_sent(self, tick: int) -> None:
        self.pending_since = tick

    def chunk_arrived(self, actions: np.ndarray, observation_tick: int, tick: int,
                      latency_s: float | None = None, answers_pending: bool = True) -> int:
        """Queue a new chunk planned from `observation_tick`; return how many actions were past.

        `latency_s`: its request-to-arrival time, measured by the caller on its clock; None when
        the caller cannot tell which request it answers (no latency sample then).
        `answers_pending=False`: a late reply to a request that timed out and was sent again;
        its actions are used, but the re-sent request stays pending (else the next request
        would go out beside it)."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or not len(actions):
            raise ValueError(f'a chunk must be (H, action_dim) with H > 0, got {actions.shape}')
        # Arriving between two ticks: the next tick to execute is what "now" means for the queue.
        tick = max(tick, self._last_executed_tick + 1)
        if answers_pending:
            if latency_s is not None:
                self.latency.add(max(0.0, latency_s))
            self.pending_since = None
        past = min(self.moved_ticks_since(observation_tick, tick), len(actions))
        incoming = actions[past:]
        self._switched = self.queue.remaining(tick) > 0 and len(incoming) > 0
        if len(incoming):
            merged = merge_chunks(self.queue.upcoming(tick, len(incoming)), incoming,
                                  self.cfg.merge, self.cfg.motion_dims, self._previous)
            self.queue.install(merged, tick, tick)
            self._observed_tick = observation_tick
        self.stats.chunks_received += 1
        self.stats.dropped_actions += past
        self.stats.chunks_all_past += not len(incoming)
        return past

    def moved_ticks_since(self, since_tick: int, tick: int) -> int:
        """Ticks in [since_tick, tick) at which an action ran. From the newest back, stopping
        at since_tick: a chunk's observation is a latency old, so a few dozen entries of the
        4096 kept are read, on the control loop's thread."""
        moved = 0
        for t, ran in reversed(self._moving):   # ticks are appended in increasing order
            if t < since_tick:
                break
            moved += t < tick and ran
        return moved

    def next_action(self, tick: int) -> np.ndarray | None:
        """The action for this tick, or None: the caller must hold safely (a stall is counted)."""
        action = self.queue.action_at(tick)
        self._last_executed_tick = tick
        self._moving.append((tick, action is not None))
        if action is None:
            if self.stats.chunks_received == 0:
                self.stats.startup_wait_ticks += 1
            else:
                self.stats.stalled_ticks += 1
            self._switched = False
            return None
        if self._previous is not None:
            m = self.cfg.motion_dims
            step = float(np.linalg.norm(action[:m] - self._previous[:m]))
            self.stats.steps.add(step, self._switched)
        self._previous = action
        self._switched = False
        return action

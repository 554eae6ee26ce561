"""Closed-loop evaluation of a chunking policy in the sim, on a virtual clock (no ROS).

Time advances in control ticks. Each inference takes its measured wall time (or a given latency),
rounded up to whole ticks; meanwhile the robot keeps executing whatever is queued, or holds still
and counts a stalled tick when nothing is. Two modes:
- `sync`: infer only when the queue is empty; the robot waits for every chunk (the baseline).
- `async`: infer when the queue is about to run out, early by the tracked p95 latency, so the next
  chunk lands before the current one ends; actions that are already in the past on arrival are
  dropped.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

import numpy as np
from tqdm import tqdm

from vla_edge.core.chunk_merge import MergeConfig, discontinuity_ratio, switch_p95_ratio
from vla_edge.core.chunk_scheduler import MODES, ChunkScheduler, SchedulerConfig
from vla_edge.core.key_frame import DEFAULT_MAX_INTERVAL_S, KeyFrameGate
from vla_edge.core.latency import LatencyTracker
from vla_edge.core.position_targets import velocity_chunk_to_positions
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.env import Observation, TeaTableEnv
from vla_edge.sim.expert import expert_chunk
from vla_edge.sim.world import COMMAND_INTERFACES, SimConfig

DEFAULT_SEED_OFFSET = 1_000_000   # far above any training seed range


class ChunkPolicy(Protocol):
    """Anything that turns an observation into an action chunk."""

    def plan(self, obs: Observation, seed: int, prefix: np.ndarray | None = None
             ) -> tuple[np.ndarray, dict[str, float]]:
        """Return (chunk (H, A), per-stage latency in seconds) for this observation.

        `prefix` (d, A): committed actions the chunk must start with (real-time chunking).
        """


class RuntimePolicy:
    """The ONNX runtime as a ChunkPolicy; latency = measured wall time of the stages it ran.

    With `position_step` (table units per step at full speed) its velocity chunks become position
    targets from the observed position, for a world whose command interface is `position`,
    stopping at `position_bounds` (lower, upper per motion dim) as vla_node's targets do."""

    def __init__(self, runtime: PolicyRuntime, position_step: float | None = None,
                 position_bounds: tuple[list[float], list[float]] | None = None):
        self.runtime = runtime
        self.position_step = position_step
        self.position_bounds = position_bounds or (None, None)

    def plan(self, obs: Observation, seed: int, prefix: np.ndarray | None = None
             ) -> tuple[np.ndarray, dict[str, float]]:
        visual = self.runtime.encode_image(obs.image, obs.time_s)
        if prefix is not None:   # a prefix can cover at most H - 1 actions of the new chunk
            prefix = prefix[:self.runtime.manifest.chunk_length - 1]
        chunk = self.runtime.plan_chunk(visual, obs.instruction, obs.state, seed=seed,
                                        prefix=prefix)
        actions = chunk.actions if self.position_step is None else \
            velocity_chunk_to_positions(chunk.actions, obs.state[:2], self.position_step,
                                        (0, 1), *self.position_bounds)
        return actions, {k: v for k, v in chunk.stage_latency_s.items()
                         if k != 'instruction_encoder'}


class ExpertPolicy:
    """The scripted expert as a ChunkPolicy (open-loop chunks): a ceiling and a test double."""

    def __init__(self, env: TeaTableEnv, chunk_length: int = 50):
        self.env, self.chunk_length = env, chunk_length

    def plan(self, obs: Observation, seed: int, prefix: np.ndarray | None = None
             ) -> tuple[np.ndarray, dict[str, float]]:
        t0 = time.perf_counter()
        chunk = expert_chunk(self.env.world, self.env.task, self.chunk_length)
        if prefix is not None and len(prefix):
            chunk[:len(prefix)] = prefix
        return chunk, {'expert': time.perf_counter() - t0}


@dataclass
class EvalConfig:
    """One evaluation run: mode, seeds, instruction wording, latency source."""

    mode: str = 'sync'
    episodes: int = 100
    seed_offset: int = DEFAULT_SEED_OFFSET
    phrasing: str = 'canonical'      # canonical | train | heldout
    swap_object: bool = False
    latency_s: float | None = None   # None: each inference takes its measured wall time
    trigger_margin_ticks: int = 5
    max_action_age_s: float = SchedulerConfig.max_action_age_s
    latency_percentile: float = 95.0
    merge: MergeConfig = field(default_factory=MergeConfig)   # the executor's default
    # How the live pipeline's observations differ from this loop's exact ones (benchmark
    # observation_timing.py): the image is a frame `image_lag_ticks` old; its state is of the
    # same tick (`state_at='image'`, vla_node's frame_time pairing) or of the request tick
    # ('request': pairing with the newest state).
    image_lag_ticks: int = 0
    state_at: str = 'image'
    # vla_node's key-frame gate (benchmark key_frames.py): when on, a frame is rendered every tick
    # and a chunk is planned from the last frame the gate let through (either value 0: off).
    key_frame_min_change: float = 0.0
    key_frame_max_interval_s: float = DEFAULT_MAX_INTERVAL_S
    # What the sim robot takes: velocities (the model's own actions) or position targets
    # (the chunks integrated from the observed position; docs/measurements.md, "Position targets").
    command_interface: str = 'velocity'

    def scheduler_config(self, control_rate_hz: float) -> SchedulerConfig:
        return SchedulerConfig(control_rate_hz=control_rate_hz, mode=self.mode, merge=self.merge,
                               trigger_margin_ticks=self.trigger_margin_ticks,
                               max_action_age_s=self.max_action_age_s,
                               latency_percentile=self.latency_percentile,
                               request_timeout_s=1e9)  # a virtual-clock request is never lost

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes}')
        self.scheduler_config(50.0)   # refuse a bad scheduler setting now, not after warm-up
        if self.latency_s is not None and not 0.0 <= self.latency_s < 60.0:
            raise ValueError(f'latency_s must be in [0, 60), got {self.latency_s}')
        if not 0 <= self.image_lag_ticks <= 100:
            raise ValueError(f'image_lag_ticks must be in [0, 100], got {self.image_lag_ticks}')
        if self.state_at not in ('image', 'request'):
            raise ValueError(f"state_at must be 'image' or 'request', got {self.state_at!r}")
        KeyFrameGate(self.key_frame_min_change, self.key_frame_max_interval_s)   # checks them
        if self.command_interface not in COMMAND_INTERFACES:
            raise ValueError(f'command_interface must be one of {COMMAND_INTERFACES}, '
                             f'got {self.command_interface!r}')
        if self.command_interface == 'position' and self.merge.strategy == 'prefix_inpaint':
            raise ValueError('prefix_inpaint commits velocity actions to the model; with position '
                             'targets use blend or offset_fade')
        if self.command_interface == 'velocity' and self.merge.strategy == 'offset_fade':
            raise ValueError('offset_fade fades a position offset; on velocity commands it would '
                             'keep the old velocity for fade_steps ticks: use blend')
        if self.key_frame_min_change > 0 and self.image_lag_ticks:
            raise ValueError('key-frame gating and image_lag_ticks are separate experiments: '
                             'set one of them')


@dataclass
class EpisodeResult:
    """Outcome and timing of one episode."""

    seed: int
    success: bool
    time_s: float
    stalled_ticks: int
    startup_wait_ticks: int
    chunks: int
    dropped_actions: int
    instruction: str
    start: str
    switch_steps: list[float] = field(default_factory=list)   # |delta motion| at chunk switches
    inside_steps: list[float] = field(default_factory=list)   # |delta motion| within chunks
    frames_skipped: int = 0   # key-frame gate: frames not encoded (scene unchanged)
    frames_seen: int = 0      # frames the gate looked at (0 when it is off)
    retries: int = 0          # missed or wrong grasps, task item let go elsewhere (env.retries)
    waited_s: float = 0.0     # time without a chunk to play (SchedulerStats.waited_ticks)


@dataclass
class EvalReport:
    """Aggregates over a run; the keys of `to_dict` are a stable interface."""

    mode: str
    episodes: int
    success_rate: float
    mean_time_to_completion_s: float
    stalled_ticks: int
    startup_wait_ticks: int
    dropped_actions: int
    switch_discontinuity_ratio: float
    switch_p95_ratio: float
    merge_strategy: str
    blend_steps: int
    max_action_age_s: float
    latency_ms: dict[str, dict[str, float]]
    latency_source: str
    phrasing: str
    swap_object: bool
    seed_offset: int
    control_rate_hz: float
    command_interface: str = 'velocity'
    fade_steps: int = MergeConfig.fade_steps
    episodes_with_retries: int = 0
    # The switch ratio over the episodes without a retry: a retry's slow hovering and
    # regrasping pulls the median step down, and with it moves the ratio (README, targets).
    switch_discontinuity_ratio_without_retries: float = float('nan')
    per_episode: list[EpisodeResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for row in d['per_episode']:   # raw step lists: summarised by the ratio above
            row.pop('switch_steps')
            row.pop('inside_steps')
        return d


def run_episode(env: TeaTableEnv, policy: ChunkPolicy, seed: int, cfg: EvalConfig,
                tracker: LatencyTracker, stage_log: dict[str, list[float]]) -> EpisodeResult:
    """One episode on the virtual clock, scheduled by the same ChunkScheduler as the ROS node."""
    env.reset(seed, phrasing=cfg.phrasing, swap_object=cfg.swap_object)
    sched = ChunkScheduler(cfg.scheduler_config(env.config.control_rate_hz), latency=tracker)
    pending: tuple[int, int, np.ndarray, float] | None = None  # ready, observed, chunk, latency
    frames: deque[Observation] = deque(maxlen=cfg.image_lag_ticks + 1)
    gate = KeyFrameGate(cfg.key_frame_min_change, cfg.key_frame_max_interval_s)
    key_image: np.ndarray | None = None
    seen = skipped = 0
    tick = 0
    while not env.success and not env.timed_out:
        if cfg.image_lag_ticks:   # rendered every tick only when a lag is asked for
            frames.append(env.observe())
        elif gate.enabled:
            frame = env.observe().image
            check = gate.assess(frame, tick * env.config.dt_s)
            seen += 1
            if check.encode:
                gate.anchor(check, tick * env.config.dt_s)
                key_image = frame
            else:
                skipped += 1
        if pending is not None and pending[0] <= tick:
            sched.chunk_arrived(pending[2], pending[1], tick, latency_s=pending[3])
            pending = None
        if pending is None and sched.wants_chunk(tick):
            obs, observed = _observation(env, frames, cfg.state_at, tick)
            if key_image is not None:   # the anchor's view stands for this tick's
                obs = replace(obs, image=key_image)
            chunk, stage_s = policy.plan(obs, seed * 1000 + sched.stats.chunks_received,
                                         sched.committed_prefix(tick))
            sched.request_sent(tick)
            for stage, s in stage_s.items():
                stage_log.setdefault(stage, []).append(s)
            latency = cfg.latency_s if cfg.latency_s is not None else sum(stage_s.values())
            pending = (tick + max(1, math.ceil(latency / env.config.dt_s - 1e-9)), observed,
                       chunk, latency)
        action = sched.next_action(tick)
        env.step(_hold(env) if action is None else action)
        tick += 1
    st = sched.stats
    return EpisodeResult(seed=seed, success=env.success, time_s=env.world.time_s,
                         stalled_ticks=st.stalled_ticks, startup_wait_ticks=st.startup_wait_ticks,
                         chunks=st.chunks_received + (pending is not None),
                         dropped_actions=st.dropped_actions, instruction=env.instruction,
                         start=env.episode.start, switch_steps=st.switch_steps.tolist(),
                         inside_steps=st.inside_steps.tolist(), frames_skipped=skipped,
                         frames_seen=seen, retries=env.retries,
                         waited_s=st.waited_ticks * env.config.dt_s)


def _observation(env: TeaTableEnv, frames: deque[Observation], state_at: str, tick: int
                 ) -> tuple[Observation, int]:
    """What a chunk requested at `tick` is planned from, and the tick it is stamped with: the
    oldest frame kept (the current one without a lag), with its own state or the current one."""
    if not frames:
        return env.observe(), tick
    frame = frames[0]
    if state_at == 'request':
        frame = replace(frame, state=frames[-1].state)
    return frame, tick - (len(frames) - 1)


def _hold(env: TeaTableEnv) -> np.ndarray:
    """Safe command while starved: stand still, keep the gripper as it is."""
    grip = 1.0 if env.world.gripper_closed else -1.0
    if env.config.command_interface == 'position':
        return np.array([*env.world.gripper_pos, grip])
    return np.array([0.0, 0.0, grip])


def evaluate_expert(episodes: int, seed_offset: int = DEFAULT_SEED_OFFSET,
                    config: SimConfig | None = None) -> dict:
    """The scripted expert acting at every control tick: the ceiling the policy learns from."""
    env = TeaTableEnv(config or SimConfig())
    results = []
    for seed in range(seed_offset, seed_offset + episodes):
        env.reset(seed)
        while not env.success and not env.timed_out:
            env.step(env.expert_action())
        results.append({'seed': seed, 'success': env.success, 'time_s': env.world.time_s,
                        'start': env.episode.start})
    done = [r['time_s'] for r in results if r['success']]
    return {'policy': 'scripted expert', 'episodes': episodes,
            'success_rate': sum(r['success'] for r in results) / episodes,
            'mean_time_to_completion_s': float(np.mean(done)) if done else float('nan'),
            'stalled_ticks': 0, 'mode': 'per-tick', 'per_episode': results}


def evaluate(policy: ChunkPolicy, cfg: EvalConfig, env: TeaTableEnv | None = None,
             progress: bool = True) -> EvalReport:
    env = env or TeaTableEnv(SimConfig(command_interface=cfg.command_interface))
    if env.config.command_interface != cfg.command_interface:
        raise ValueError(f'the sim takes {env.config.command_interface} commands but the '
                         f'evaluation is set up for {cfg.command_interface}')
    tracker = LatencyTracker(percentile=cfg.latency_percentile)
    stage_log: dict[str, list[float]] = {}
    results = []
    seeds = range(cfg.seed_offset, cfg.seed_offset + cfg.episodes)
    # Warm-up call, as a robot makes at start-up: its cold-start latency is what the tracker drops.
    _, warm = policy.plan(env.reset(seeds[0], phrasing=cfg.phrasing), 0)
    tracker.add(cfg.latency_s if cfg.latency_s is not None else sum(warm.values()))
    desc = f'eval {cfg.mode}' + (' (swapped object)' if cfg.swap_object else '') + \
        (f' ({cfg.phrasing} phrasing)' if cfg.phrasing != 'canonical' else '')
    for seed in tqdm(seeds, desc=desc, unit='episode', disable=not progress):
        results.append(run_episode(env, policy, seed, cfg, tracker, stage_log))
    done = [r.time_s for r in results if r.success]
    switch_steps = [x for r in results for x in r.switch_steps]
    inside_steps = [x for r in results for x in r.inside_steps]
    return EvalReport(
        mode=cfg.mode, episodes=len(results),
        success_rate=sum(r.success for r in results) / len(results),
        mean_time_to_completion_s=float(np.mean(done)) if done else float('nan'),
        stalled_ticks=sum(r.stalled_ticks for r in results),
        startup_wait_ticks=sum(r.startup_wait_ticks for r in results),
        switch_discontinuity_ratio=discontinuity_ratio(switch_steps, inside_steps),
        switch_p95_ratio=switch_p95_ratio(switch_steps, inside_steps),
        merge_strategy=cfg.merge.strategy, blend_steps=cfg.merge.blend_steps,
        max_action_age_s=cfg.max_action_age_s,
        dropped_actions=sum(r.dropped_actions for r in results),
        latency_ms={k: {'p50': float(np.percentile(v, 50) * 1e3),
                        'p95': float(np.percentile(v, 95) * 1e3)} for k, v in stage_log.items()},
        latency_source='measured' if cfg.latency_s is None else f'given {cfg.latency_s * 1e3:g} ms',
        phrasing=cfg.phrasing, swap_object=cfg.swap_object, seed_offset=cfg.seed_offset,
        control_rate_hz=env.config.control_rate_hz, command_interface=cfg.command_interface,
        fade_steps=cfg.merge.fade_steps,
        episodes_with_retries=sum(r.retries > 0 for r in results),
        switch_discontinuity_ratio_without_retries=discontinuity_ratio(
            [x for r in results if not r.retries for x in r.switch_steps],
            [x for r in results if not r.retries for x in r.inside_steps]),
        per_episode=results)

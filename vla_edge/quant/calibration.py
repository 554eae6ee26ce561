"""Calibration data: the real inputs of every stage, recorded while the FP32 policy runs.

The quantizer must see what the robot will see: camera frames after preprocessing, the backbone's
inputs, and the action expert's inputs at *every* denoising step (noisy actions and tau sweep from
noise to data, so a single step would calibrate the wrong ranges). Two sources:

- `collect_sim`: the FP32 policy acts in seeded sim episodes. Seeds default to 2_000_000+,
  disjoint from training (0..) and from the held-out evaluation seeds (1_000_000+).
- `collect_bag`: the FP32 policy plans one chunk from each observation of a rosbag2 (frames
  paired with joint states and instruction as vla_node pairs them: `bag_calibration`), so the
  ranges are those of the robot's own camera and states. No closed loop here: a bag cannot
  react to the policy.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from tqdm import tqdm

from vla_edge.core.latency import LatencyTracker
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.quant.bag_calibration import DEFAULT_MAX_FRAMES, BagTopicNames, bag_observations
from vla_edge.quant.even_spread import evenly_spread
from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, run_episode
from vla_edge.sim.env import Observation, TeaTableEnv

CALIBRATION_SEED_OFFSET = 2_000_000
QUANTIZED_STAGES = ('vision_encoder', 'backbone', 'action_expert')

Feed = dict[str, np.ndarray]


@dataclass
class CalibrationSet:
    """Recorded feeds per stage (as passed to `session.run`) and the observations they came from."""

    feeds: dict[str, list[Feed]] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)   # sim episodes recorded (none from a bag)
    source: str = 'sim'                              # 'sim' or 'bag'
    bag: dict | None = None                          # BagObservations.to_dict() of a bag source

    def count(self, stage: str) -> int:
        return len(self.feeds.get(stage, []))

    def subsample(self, stage: str, limit: int) -> list[Feed]:
        """At most `limit` feeds, evenly spread (keeps every denoising step represented)."""
        return evenly_spread(self.feeds.get(stage, []), limit)


class _RecordingSession:
    """Stands in for an InferenceSession: records each feed, then runs the real session.

    Feeds are copied (the denoiser updates its arrays in place), except that an input passed
    again unchanged (the expert's prefix_kv at every denoising step of a chunk) shares the
    previous copy: a bag's 200 chunks would otherwise hold 2000 copies of it.
    """

    def __init__(self, session, sink: list[Feed]):
        self._session, self._sink = session, sink
        self._last: dict[str, tuple[object, np.ndarray]] = {}

    def run(self, output_names, feed: Feed, *args, **kwargs):
        self._sink.append({k: self._copy(k, v) for k, v in feed.items()})
        return self._session.run(output_names, feed, *args, **kwargs)

    def _copy(self, name: str, value) -> np.ndarray:
        source, copy = self._last.get(name, (None, None))
        if source is not value or not np.array_equal(copy, value):
            copy = np.array(value, copy=True)
            self._last[name] = (value, copy)
        return copy

    def __getattr__(self, name):
        return getattr(self._session, name)


class _ObservingPolicy(RuntimePolicy):
    def __init__(self, runtime: PolicyRuntime, observations: list[Observation]):
        super().__init__(runtime)
        self.observations = observations

    def plan(self, obs, seed, prefix=None):
        self.observations.append(obs)
        return super().plan(obs, seed, prefix)


@contextmanager
def _recording(rt: PolicyRuntime, source: str) -> Iterator[CalibrationSet]:
    """While inside, every quantized stage of `rt` records its feeds into the yielded set."""
    calib = CalibrationSet(feeds={s: [] for s in QUANTIZED_STAGES}, source=source)
    real = dict(rt.sessions)
    try:
        for stage in QUANTIZED_STAGES:
            rt.sessions[stage] = _RecordingSession(real[stage], calib.feeds[stage])
        yield calib
    finally:
        rt.sessions.update(real)


def collect_sim(model_dir: str | Path, episodes: int = 10,
                seed_offset: int = CALIBRATION_SEED_OFFSET, runtime: PolicyRuntime | None = None,
                progress: bool = True) -> CalibrationSet:
    """Run the FP32 policy through `episodes` seeded episodes, recording each stage's inputs."""
    if episodes < 1:
        raise ValueError(f'calibration episodes must be >= 1, got {episodes}')
    rt = runtime or PolicyRuntime(model_dir)
    with _recording(rt, 'sim') as calib:
        policy = _ObservingPolicy(rt, calib.observations)
        env = TeaTableEnv()
        cfg = EvalConfig(mode='sync', episodes=episodes, seed_offset=seed_offset, latency_s=0.02)
        for seed in tqdm(range(seed_offset, seed_offset + episodes), desc='calibrate (sim)',
                         unit='episode', disable=not progress):
            run_episode(env, policy, seed, cfg, LatencyTracker(), {})
            calib.seeds.append(seed)
    return calib


def collect_bag(bag: str | Path, model_dir: str | Path, runtime: PolicyRuntime | None = None,
                progress: bool = True, max_frames: int = DEFAULT_MAX_FRAMES,
                topics: BagTopicNames | None = None, **observation_kwargs) -> CalibrationSet:
    """Plan one chunk with the FP32 policy from each of (at most `max_frames`, evenly spread)
    observations of a rosbag2, recording each stage's inputs; the noise of observation i is
    seeded with i. `observation_kwargs` go to `bag_observations` (joints, default instruction).

    Raises VlaEdgeError for a bag that cannot be used (see `bag_observations`).
    """
    found = bag_observations(bag, max_frames, topics, progress=progress, **observation_kwargs)
    rt = runtime or PolicyRuntime(model_dir)
    with _recording(rt, 'bag') as calib:
        calib.bag = found.to_dict()
        for i, obs in enumerate(tqdm(found.observations, desc='calibrate (bag)', unit='frame',
                                     disable=not progress)):
            rt.plan_chunk(rt.encode_image(obs.image, obs.time_s), obs.instruction, obs.state,
                          seed=i)
            calib.observations.append(obs)
    return calib


class FeedReader(CalibrationDataReader):
    """onnxruntime's calibration protocol over recorded feeds (restricted to the graph's inputs)."""

    def __init__(self, feeds: list[Feed], input_names: list[str] | None = None):
        self._feeds = [{k: v for k, v in f.items() if input_names is None or k in input_names}
                       for f in feeds]
        self._i = 0

    def get_next(self) -> Feed | None:
        if self._i >= len(self._feeds):
            return None
        self._i += 1
        return self._feeds[self._i - 1]

    def rewind(self) -> None:
        self._i = 0

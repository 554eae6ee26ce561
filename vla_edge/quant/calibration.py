"""Calibration data: the real inputs of every stage, recorded while the FP32 policy acts in the sim.

The quantizer must see what the robot will see: camera frames after preprocessing, the backbone's
inputs, and the action expert's inputs at *every* denoising step (noisy actions and tau sweep from
noise to data, so a single step would calibrate the wrong ranges). Seeds default to 2_000_000+,
disjoint from training (0..) and from the held-out evaluation seeds (1_000_000+).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from tqdm import tqdm

from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.runtime import PolicyRuntime
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
    seeds: list[int] = field(default_factory=list)

    def count(self, stage: str) -> int:
        return len(self.feeds.get(stage, []))

    def subsample(self, stage: str, limit: int) -> list[Feed]:
        """At most `limit` feeds, evenly spread (keeps every denoising step represented)."""
        feeds = self.feeds.get(stage, [])
        if limit <= 0 or len(feeds) <= limit:
            return list(feeds)
        idx = np.linspace(0, len(feeds) - 1, limit).round().astype(int)
        return [feeds[i] for i in idx]


class _RecordingSession:
    """Stands in for an InferenceSession: records each feed, then runs the real session."""

    def __init__(self, session, sink: list[Feed]):
        self._session, self._sink = session, sink

    def run(self, output_names, feed: Feed, *args, **kwargs):
        self._sink.append({k: np.array(v, copy=True) for k, v in feed.items()})
        return self._session.run(output_names, feed, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


class _ObservingPolicy(RuntimePolicy):
    def __init__(self, runtime: PolicyRuntime, observations: list[Observation]):
        super().__init__(runtime)
        self.observations = observations

    def plan(self, obs, seed, prefix=None):
        self.observations.append(obs)
        return super().plan(obs, seed, prefix)


def collect_sim(model_dir: str | Path, episodes: int = 10,
                seed_offset: int = CALIBRATION_SEED_OFFSET, runtime: PolicyRuntime | None = None,
                progress: bool = True) -> CalibrationSet:
    """Run the FP32 policy through `episodes` seeded episodes, recording each stage's inputs."""
    if episodes < 1:
        raise ValueError(f'calibration episodes must be >= 1, got {episodes}')
    rt = runtime or PolicyRuntime(model_dir)
    calib = CalibrationSet(feeds={s: [] for s in QUANTIZED_STAGES})
    real = dict(rt.sessions)
    try:
        for stage in QUANTIZED_STAGES:
            rt.sessions[stage] = _RecordingSession(real[stage], calib.feeds[stage])
        policy = _ObservingPolicy(rt, calib.observations)
        env = TeaTableEnv()
        cfg = EvalConfig(mode='sync', episodes=episodes, seed_offset=seed_offset, latency_s=0.02)
        from vla_edge.core.latency import LatencyTracker

        for seed in tqdm(range(seed_offset, seed_offset + episodes), desc='calibrate (sim)',
                         unit='episode', disable=not progress):
            run_episode(env, policy, seed, cfg, LatencyTracker(), {})
            calib.seeds.append(seed)
    finally:
        rt.sessions.update(real)
    return calib


def collect_bag(bag: str | Path, model_dir: str | Path) -> CalibrationSet:
    """Calibration from a rosbag2 (frames + states + instruction): not implemented yet."""
    raise VlaEdgeError(f'bag calibration not yet supported (got {bag}); use --calib sim, which '
                       'records the same stage inputs from seeded sim episodes')


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

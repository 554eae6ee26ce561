"""Closed-loop effect of a precision mix against FP32: same seeds, same noise, same timing.

The figure that matters for an iterative action expert is where the robot actually goes, not a
per-layer error: each mix drives K seeded sim episodes with the noise of every chunk drawn from the
same seed as in the FP32 run, and with a fixed inference latency so that wall time cannot change the
trajectory. Drift is the L2 distance between the executed end-effector paths (table units; the
shorter episode is held at its last position), mean over ticks and at the end; the per-step action
error is taken both in closed loop (executed commands, common ticks) and open loop (whole chunks
planned from the same recorded observations, so the two runs see identical inputs).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_edge.core.latency import LatencyTracker
from vla_edge.core.onnx_session import SessionOptions
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.quant.latency import open_session
from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, run_episode
from vla_edge.sim.env import Observation, TeaTableEnv

FIXED_LATENCY_S = 0.02   # one control tick at 50 Hz: timing identical for every mix


@dataclass
class Trajectory:
    """One executed episode: end-effector path (T, 2) and executed commands (T, A)."""

    seed: int
    success: bool
    ee_path: np.ndarray
    actions: np.ndarray


class _RecordingEnv(TeaTableEnv):
    def reset(self, seed, phrasing='canonical', swap_object=False):
        self.ee_path, self.actions = [], []
        return super().reset(seed, phrasing, swap_object)

    def step(self, action):
        super().step(action)
        self.ee_path.append(np.asarray(self.world.state()[:2], np.float64))
        self.actions.append(np.asarray(action, np.float64))


@contextmanager
def stage_files(rt: PolicyRuntime, files: dict[str, Path], options: SessionOptions | None = None):
    """Run `rt` with some stages replaced by other ONNX files (same inputs/outputs)."""
    saved = dict(rt.sessions)
    try:
        for stage, path in files.items():
            rt.sessions[stage] = open_session(path, options or rt.options)
        yield rt
    finally:
        rt.sessions.update(saved)


def rollouts(rt: PolicyRuntime, seeds: list[int]) -> list[Trajectory]:
    env = _RecordingEnv()
    cfg = EvalConfig(mode='sync', episodes=len(seeds), seed_offset=seeds[0],
                     latency_s=FIXED_LATENCY_S)
    out = []
    for seed in seeds:
        r = run_episode(env, RuntimePolicy(rt), seed, cfg, LatencyTracker(), {})
        out.append(Trajectory(seed, r.success, np.array(env.ee_path), np.array(env.actions)))
    return out


def compare(reference: list[Trajectory], candidate: list[Trajectory]) -> dict[str, float]:
    """Drift, closed-loop action error and success of `candidate` against the FP32 `reference`."""
    mean_d, final_d, act_err = [], [], []
    for ref, cand in zip(reference, candidate, strict=True):
        n = max(len(ref.ee_path), len(cand.ee_path))
        a, b = _hold_last(ref.ee_path, n), _hold_last(cand.ee_path, n)
        dist = np.linalg.norm(a - b, axis=1)
        mean_d.append(float(dist.mean()))
        final_d.append(float(dist[-1]))
        m = min(len(ref.actions), len(cand.actions))
        act_err.append(float(np.linalg.norm(ref.actions[:m] - cand.actions[:m], axis=1).mean()))
    return {'drift_mean': float(np.mean(mean_d)), 'drift_final': float(np.mean(final_d)),
            'action_error_closed_loop': float(np.mean(act_err)),
            'success_rate': float(np.mean([c.success for c in candidate])),
            'episodes': len(candidate)}


def planned_chunks(rt: PolicyRuntime, observations: list[Observation]) -> np.ndarray:
    """Chunks (N, H, A) planned from recorded observations, noise seeded by index."""
    chunks = []
    for i, obs in enumerate(observations):
        visual = rt.encode_image(obs.image, obs.time_s)
        chunks.append(rt.plan_chunk(visual, obs.instruction, obs.state, seed=7_000 + i).actions)
    return np.stack(chunks)


def open_loop_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean per-step L2 action error between chunks planned from identical inputs."""
    return float(np.linalg.norm(reference - candidate, axis=-1).mean())


def _hold_last(path: np.ndarray, n: int) -> np.ndarray:
    if len(path) == 0:
        return np.zeros((n, 2))
    if len(path) >= n:
        return path[:n]
    return np.concatenate([path, np.repeat(path[-1:], n - len(path), axis=0)])

"""Replay tests in a few lines: play a bag into the system under test, record what it publishes,
compare with the golden run.

The system under test (SUT) is whatever you pass as `system`; it runs on the test's own rclpy
Context and DDS domain (`env.context`, `env.domain_id`), so parallel tests never cross-talk:

- a callable `system(env)` returning a context manager (start in `__enter__`, stop in
  `__exit__`: a launch of subprocesses with ROS_DOMAIN_ID=env.domain_id, a bringup, ...),
- or returning rclpy Nodes (one or a list) created with `context=env.context`: the helper spins
  them on their own executors and destroys them afterwards,
- or a context manager object directly.

Example (a user's test file; to use the `replay_env` fixture, register this module once in the
top-level conftest.py: `pytest_plugins = ['vla_edge.replay.pytest_helper']`)::

    from vla_edge.nodes.chunk_executor import ChunkExecutor
    from vla_edge.replay.pytest_helper import write_bag

    def test_executor_unchanged(replay_env):
        golden = replay_env.workdir / 'golden'      # or a bag kept under test/data/
        write_bag(golden, my_chunks_and_commands)   # [(topic, msg, stamp_ns), ...]
        result = replay_env.replay_and_compare(
            golden, system=lambda env: ChunkExecutor(context=env.context))
        assert result.passed, result.report()

Without the fixture: `with open_replay_env(tmp_path, domain_id=42) as env: ...`.

`replay()` alone returns the recorded bag of the new run; `replay_and_compare()` also writes
`report.txt`, `result.json` and `overlay.png` (when matplotlib is installed) into the workdir.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node

from vla_edge.core.polling import wait_until
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.replay.bag_reader import BagReader
from vla_edge.replay.bag_writer import (
    write_bag,  # noqa: F401 - part of this helper's API
)
from vla_edge.replay.compare import (
    CHUNK_TOPIC,
    COMMAND_TOPIC,
    CompareResult,
    CompareThresholds,
    compare_runs,
)
from vla_edge.replay.lockstep import LockstepOptions, record_lockstep
from vla_edge.replay.player import Player, PlayerOptions
from vla_edge.replay.recorder import start_recording

log = logging.getLogger('vla_edge.replay')
_domains = itertools.count(os.getpid() % 50)
OUTPUTS = (CHUNK_TOPIC, COMMAND_TOPIC)


@contextlib.contextmanager
def _running(system, env: ReplayEnv) -> Iterator[None]:
    """Enter the SUT however it was given (see the module docstring)."""
    # rclpy Nodes are context managers too (exit = destroy), so test for nodes first.
    if hasattr(system, '__enter__') and not isinstance(system, Node):
        with system:
            yield
        return
    started = system(env) if callable(system) and not isinstance(system, Node) else system
    if started is None:
        yield
    elif hasattr(started, '__enter__') and not isinstance(started, Node):
        with started:
            yield
    else:
        nodes = [started] if isinstance(started, Node) else list(started)
        executors = IsolatedExecutors(nodes, context=env.context).start()
        try:
            yield
        finally:
            executors.shutdown()
            for node in nodes:
                node.destroy_node()



@dataclass
class ReplayEnv:
    """One isolated ROS world for a replay test."""

    context: rclpy.Context
    domain_id: int
    workdir: Path

    def replay(self, bag: str | Path, system, *, outputs: Iterable[str] = OUTPUTS,
               inputs: Iterable[str] | None = None, record_to: str | Path | None = None,
               storage: str = 'mcap', options: PlayerOptions | None = None,
               lockstep: LockstepOptions | None = None,
               discovery_timeout_s: float = 10.0, tail_s: float = 1.0) -> Path:
        """Play `bag`'s inputs (default: every topic except `outputs`) into the SUT while
        recording `outputs`; returns the recorded bag. The bag is validated before the SUT
        starts, so a bad bag fails fast with BagReadError.

        `lockstep` plays deterministically instead of in real time (`replay.lockstep`): each
        trigger (`lockstep.trigger_topics`, camera frames by default) goes out after the inputs
        recorded before it and waits for its answer on `lockstep.response_topic`, on a /clock
        this helper publishes, so the SUT's nodes must run with use_sim_time=True. Outputs are
        stamped with that clock; two replays of one bag then record the same outputs."""
        outputs = [o if o.startswith('/') else f'/{o}' for o in outputs]
        with BagReader(bag) as golden:
            known = {t: i.msgtype for t, i in golden.topics.items()}
            if inputs is None:
                inputs = [t for t in golden.selected if t not in outputs]
        out = Path(record_to) if record_to else next(
            p for p in (self.workdir / f'run_{i}' for i in itertools.count(1)) if not p.exists())
        if lockstep is not None:
            if options is not None:
                raise ValueError('give options (real-time playback) or lockstep, not both')
            return self._replay_lockstep(bag, system, list(inputs), outputs, out, storage,
                                         lockstep, discovery_timeout_s)
        specs = [f'{t}:{known[t]}' if t in known else t for t in outputs]
        opts = dataclasses.replace(options or PlayerOptions(), topics=list(inputs))
        if opts.loop:
            raise ValueError('a replay test plays the bag once: options.loop must be False')
        player = Player(bag, opts, context=self.context)
        recorder = None
        try:
            with _running(system, self):
                recorder = start_recording(out, specs, storage, context=self.context)
                executors = IsolatedExecutors([player, recorder], context=self.context).start()
                try:
                    if not wait_until(lambda: len(recorder.subscribed_topics) == len(specs),
                                 discovery_timeout_s):
                        log.warning('replay: no publisher seen for %s; recording what appears',
                                    sorted(set(outputs) - set(recorder.subscribed_topics)))
                    if not wait_until(lambda: all(player.subscriber_counts().values()),
                                 discovery_timeout_s):
                        log.warning('replay: inputs without subscribers: %s', [
                            t for t, c in player.subscriber_counts().items() if not c])
                    time.sleep(0.2)     # let both ends of each match settle
                    player.play()
                    span_s = (player.schedule.loop_period_ns / 1e9) / opts.rate
                    if not player.wait(span_s + 30.0):
                        raise TimeoutError(f'replay of {bag} did not finish')
                    if player.error is not None:
                        raise player.error
                    time.sleep(tail_s)  # the SUT's answer to the last inputs
                finally:
                    executors.shutdown()
                    summary = recorder.close()
                    log.info('%s', summary.describe())
        finally:
            if recorder is not None:
                recorder.destroy_node()
            player.destroy_node()
        return out

    def _replay_lockstep(self, bag, system, inputs: list[str], outputs: list[str], out: Path,
                         storage: str, lockstep: LockstepOptions,
                         discovery_timeout_s: float) -> Path:
        opts = dataclasses.replace(lockstep, topics=inputs, record_topics=tuple(outputs))
        with _running(system, self):
            record_lockstep(bag, opts, out, self.context, storage=storage,
                            discovery_timeout_s=discovery_timeout_s,
                            say=lambda text: log.info('%s', text))
        return out

    def replay_and_compare(self, golden: str | Path, system,
                           thresholds: CompareThresholds | None = None, plot: bool = True,
                           **replay_kwargs) -> CompareResult:
        """`replay()` then `compare_runs(golden, new)`; artefacts go to the workdir."""
        new = self.replay(golden, system, **replay_kwargs)
        result = compare_runs(golden, new, thresholds)
        (self.workdir / 'report.txt').write_text(result.report() + '\n')
        import json

        (self.workdir / 'result.json').write_text(json.dumps(result.to_dict(), indent=2))
        if plot:
            try:
                from vla_edge.replay.overlay_plot import plot_overlay

                plot_overlay(result, self.workdir / 'overlay.png')
            except ImportError:
                log.info('replay: matplotlib not installed, no overlay.png')
        return result


@contextlib.contextmanager
def open_replay_env(workdir: str | Path, domain_id: int | None = None) -> Iterator[ReplayEnv]:
    """A fresh rclpy Context on its own domain (localhost discovery), shut down afterwards."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    domain = 150 + next(_domains) % 50 if domain_id is None else domain_id
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=[], domain_id=domain)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield ReplayEnv(ctx, domain, workdir)
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def replay_env(tmp_path) -> Iterator[ReplayEnv]:
    """pytest fixture: a ReplayEnv in tmp_path on a domain of its own."""
    with open_replay_env(tmp_path) as env:
        yield env

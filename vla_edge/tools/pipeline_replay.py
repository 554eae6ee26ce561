"""Replay a bag through the vla_edge pipeline, record its outputs; record sim runs; write goldens.

The engine of `vla-edge replay-test` (`tools/replay_test.py`), usable from Python and tests:

- `replay_through_pipeline(bag, run_bag, cfg)`: bring up vla_node + chunk_executor (+ watchdog)
  with `build_pipeline(with_sim=False)` on a Context of its own, play the bag's inputs
  (camera/image_raw or its /compressed, joint_states, instruction), record action_chunk and
  command_raw (and /command with the watchdog) into `run_bag`;
- `write_golden(bag, golden, cfg)`: the same replay, then golden = the bag's inputs + those
  outputs (self-contained; its metadata names the model files that made it);
- `record_sim_run(out_bag, seconds)`: a live sim episode through the pipeline (as configured, on
  the wall clock), inputs and outputs recorded: the bag a golden is written from.

Deterministic mode (`cfg.deterministic`, the default) makes every chunk a pure function of the
model and the bag:
- lockstep playback (`replay.lockstep`): each frame goes out once the robot state recorded
  before it has been delivered, and nothing else goes out until that frame's chunk is back, so
  no frame is skipped and each chunk sees the same state in every replay; /clock stops at every
  control tick until the executor's command is out, so the executor ticks between the same
  chunks in every replay, and outputs are stamped with that clock;
- `plan_on_frame`: vla_node plans one chunk per frame, stamped with the frame; the executor's
  own requests are remapped away (`chunk_executor:chunk_request:=/replay_test/...`): a request
  plans from whatever frame is newest when it lands, with the state nearest it among those
  that have arrived, a race by nature;
- a fixed `noise_seed` (0 unless given): the denoiser's noise is a function of the seed and the
  frame stamp;
- sim time: every pipeline node runs with use_sim_time on the lockstep /clock.
Two replays then give bit-identical chunks and commands (same machine, onnxruntime build and
`intra_op_threads`). Limits: latency, frame skipping and request timing are not exercised (the
clock waits for the model), nor are prefix_inpaint prefixes (no executor requests). Otherwise
(`deterministic=False`) the bag plays in real time at `cfg.rate` (`replay.player`, /clock at
200 Hz, use_sim_time) into the pipeline as configured, with fresh noise unless `noise_seed` is
given: the robot's timing races included, so chunks differ from run to run; compare with
loosened thresholds (a behaviour and timing check, not a bit-exact gate).

Why a golden is written by a replay and not taken from the live run: a closed-loop run cannot be
reproduced by any replay (its vla_node planned from whichever frame and states had arrived,
its executor got each chunk a latency later, and with the reference model a state 20 ms newer
moves a chunk by up to ~2), so its outputs are kept in the sim-run bag for reference, and the
golden's come from a deterministic replay of its inputs with the model that is trusted.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.polling import wait_until
from vla_edge.replay.compare import CHUNK_TOPIC, COMMAND_TOPIC

CAMERA, COMPRESSED = '/camera/image_raw', '/camera/image_raw/compressed'
INPUT_TOPICS = (CAMERA, COMPRESSED, '/joint_states', '/instruction')
OUTPUT_TOPICS = (CHUNK_TOPIC, COMMAND_TOPIC)
UNUSED_REQUEST_TOPIC = '/replay_test/unused_chunk_request'
CLOCK_HZ = 200.0      # /clock of a real-time replay (4 updates per 50 Hz control period)
_domains = itertools.count(os.getpid() % 50)


@dataclass
class ReplayTestConfig:
    """How to bring the pipeline up and play the bag; the CLI flags map onto these fields."""

    model_dir: Path | None = None          # None: the runtime given, or the configured model
    deterministic: bool = True
    noise_seed: int | None = None          # None: 0 when deterministic, else the configured one
    rate: float = 1.0                      # real-time mode only
    with_watchdog: bool = False
    param_files: list[Path] | None = None  # None: bringup's defaults (config/*.yaml)
    storage: str = 'mcap'
    response_timeout_s: float = 5.0
    domain_id: int | None = None           # None: a private one (150-199), localhost only


@contextlib.contextmanager
def ros_context(domain_id: int | None, args: list[str] | None = None) -> Iterator:
    """An rclpy Context of our own on a private domain with localhost-only discovery, so a
    replay never hears (or talks to) a live robot's topics."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=args, signal_handler_options=SignalHandlerOptions.NO,
               domain_id=150 + next(_domains) % 50 if domain_id is None else domain_id)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


def _wait(condition: Callable[[], bool], timeout_s: float, stop: threading.Event) -> bool:
    return wait_until(condition, timeout_s, stop=stop)


def bag_inputs(bag: Path) -> list[str]:
    """The pipeline inputs the bag has; a bag the pipeline cannot act on is a clear error."""
    from vla_edge.replay.lockstep import input_topics

    inputs = input_topics(bag, INPUT_TOPICS)
    if CAMERA in inputs and COMPRESSED in inputs:
        inputs.remove(COMPRESSED)
    missing = [name for name, ok in (('a camera topic (/camera/image_raw or its /compressed)',
                                      CAMERA in inputs or COMPRESSED in inputs),
                                     ('/joint_states', '/joint_states' in inputs)) if not ok]
    if missing:
        raise VlaEdgeError(f'bag {bag} lacks {" and ".join(missing)}: vla_node cannot plan '
                           f'without them (it has playable inputs {inputs or "none"})')
    return inputs


def _overrides(cfg: ReplayTestConfig, compressed: bool) -> dict[str, dict[str, object]]:
    vla: dict[str, object] = {'use_sim_time': True, 'use_compressed': compressed}
    if cfg.deterministic:
        vla.update(plan_on_frame=True, noise_seed=0 if cfg.noise_seed is None else cfg.noise_seed)
    elif cfg.noise_seed is not None:
        vla['noise_seed'] = cfg.noise_seed
    executor: dict[str, object] = {'use_sim_time': True}
    watchdog: dict[str, object] = {'use_sim_time': True}
    if cfg.model_dir is not None:    # the executor and watchdog take their rate from it too
        vla['model_dir'] = executor['model_dir'] = watchdog['model_dir'] = str(cfg.model_dir)
    return {'vla_node': vla, 'chunk_executor': executor, 'watchdog': watchdog}


def replay_through_pipeline(bag: str | Path, run_bag: str | Path, cfg: ReplayTestConfig, *,
                            runtime=None, stop: threading.Event | None = None,
                            progress: Callable[[str], None] = print) -> dict:
    """Play `bag`'s inputs through a fresh pipeline and record its outputs into `run_bag`.

    `runtime` (a PolicyRuntime) is used unless cfg.model_dir names another model. Returns what
    the playback did (JSON-able). Raises VlaEdgeError (bad bag, model, parameters)."""
    from vla_edge.nodes.bringup import build_pipeline

    bag, stop = Path(bag), stop or threading.Event()
    inputs = bag_inputs(bag)
    outputs = list(OUTPUT_TOPICS) + (['/command'] if cfg.with_watchdog else [])
    remap = ['--ros-args', '-r', f'chunk_executor:chunk_request:={UNUSED_REQUEST_TOPIC}']
    with ros_context(cfg.domain_id, remap if cfg.deterministic else None) as ctx:
        pipeline = build_pipeline(param_files=cfg.param_files, with_sim=False,
                                  overrides=_overrides(cfg, CAMERA not in inputs),
                                  runtime=None if cfg.model_dir else runtime, context=ctx,
                                  with_watchdog=cfg.with_watchdog)
        try:
            pipeline.start()
            play = _play_lockstep if cfg.deterministic else _play_realtime
            result = play(bag, Path(run_bag), inputs, outputs, cfg, pipeline, ctx, stop,
                          progress)
        finally:
            pipeline.stop()
    if stop.is_set():
        raise KeyboardInterrupt
    return {'mode': 'lockstep' if cfg.deterministic else 'realtime', 'inputs': inputs, **result}


def _play_lockstep(bag, run_bag, inputs, outputs, cfg, pipeline, ctx, stop, progress) -> dict:
    from vla_edge.replay.lockstep import LockstepOptions, record_lockstep

    options = LockstepOptions(topics=inputs, response_timeout_s=cfg.response_timeout_s,
                              tick_topic=COMMAND_TOPIC, record_topics=tuple(outputs),
                              tick_period_s=1.0 / pipeline.nodes['chunk_executor'].rate_hz)
    stats, summary = record_lockstep(bag, options, run_bag, ctx, storage=cfg.storage,
                                     stop=stop, say=progress)
    return {'lockstep': stats.to_dict(), 'recorded': summary.to_dict()}


def _play_realtime(bag, run_bag, inputs, outputs, cfg, pipeline, ctx, stop, progress) -> dict:
    from rclpy.parameter import Parameter

    from vla_edge.nodes.isolated_executors import IsolatedExecutors
    from vla_edge.replay.player import Player, PlayerOptions
    from vla_edge.replay.recorder import start_recording

    recorder = start_recording(run_bag, outputs, cfg.storage, context=ctx,
                               use_sim_time_stamps=True,
                               parameter_overrides=[Parameter('use_sim_time', value=True)])
    player = executors = None
    reason = ''
    try:
        player = Player(bag, PlayerOptions(rate=cfg.rate, topics=inputs, clock_hz=CLOCK_HZ),
                        context=ctx)
        executors = IsolatedExecutors([player, recorder], context=ctx).start()
        if not _wait(lambda: len(recorder.subscribed_topics) == len(outputs), 10.0, stop):
            missing = sorted(set(outputs) - set(recorder.subscribed_topics))
            progress(f'warning: no publisher of {missing}; recording what appears')
        if not _wait(lambda: all(player.subscriber_counts().values()), 10.0, stop):
            progress(f'warning: inputs without subscribers: {player.subscriber_counts()}')
        progress(f'replaying {", ".join(inputs)} from {bag} at rate {cfg.rate:g}')
        time.sleep(0.2)          # both ends of each match settle
        player.play()
        span_s = player.schedule.loop_period_ns / 1e9 / cfg.rate
        if not _wait(lambda: player.wait(0.0), span_s + 30.0, stop) and not stop.is_set():
            raise VlaEdgeError(f'replay of {bag} did not finish')
        if player.error is not None:
            raise player.error
        _wait(lambda: False, 1.0, stop)      # the pipeline's answer to the last inputs
    except BaseException as exc:
        reason = f'replay failed: {exc}'
        raise
    finally:
        if executors is not None:
            executors.shutdown()
        summary = recorder.close('interrupted' if stop.is_set() else reason)
        recorder.destroy_node()
        if player is not None:
            player.destroy_node()
    progress(summary.describe())
    return {'player_timing_ms': player.timing_stats(), 'recorded': summary.to_dict()}


def merge_bags(out: Path, parts: list[tuple[Path, list[str]]], storage: str = 'mcap',
               custom_data: dict[str, str] | None = None):
    """Write `out` from the given topics of several bags, in timestamp order, bytes unchanged."""
    from vla_edge.replay.bag_reader import BagReader
    from vla_edge.replay.bag_writer import BagWriter

    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(BagReader(p, topics)) for p, topics in parts]
        writer = stack.enter_context(BagWriter(out, storage=storage, custom_data=custom_data))
        for reader in readers:
            for topic in reader.selected:
                info = reader.topics[topic]
                writer.add_topic(topic, info.msgtype, info.offered_qos)
        for m in heapq.merge(*(r.messages() for r in readers), key=lambda m: m.timestamp_ns):
            writer.write(m.topic, m.timestamp_ns, m.data)
    return writer.summary


def model_identity(model_dir: Path | None = None, runtime=None) -> dict[str, str]:
    """{'model': name (folder), 'sha256.<stage>': hash} of the model a replay uses."""
    from vla_edge.core.manifest import load_manifest
    from vla_edge.core.model_dir import default_model_dir

    manifest = runtime.manifest if runtime is not None and model_dir is None else \
        load_manifest(model_dir or default_model_dir(), verify_hashes=False)
    return {'model': f'{manifest.name} ({manifest.folder})',
            **{f'sha256.{s}': spec.sha256 for s, spec in manifest.stages.items()}}


def golden_identity(golden: Path) -> dict[str, str]:
    """What `write_golden` noted in the golden's metadata ({} for another bag)."""
    import yaml

    meta = Path(golden) / 'metadata.yaml'
    try:
        info = yaml.safe_load(meta.read_text())['rosbag2_bagfile_information']
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return {k[len('golden.'):]: str(v) for k, v in (info.get('custom_data') or {}).items()
            if k.startswith('golden.')}


def write_golden(bag: str | Path, golden: str | Path, cfg: ReplayTestConfig | None = None, *,
                 runtime=None, stop: threading.Event | None = None,
                 progress: Callable[[str], None] = print) -> dict:
    """Golden = `bag`'s inputs + the outputs of a replay of them (deterministic unless told).

    The golden is self-contained: `replay-test GOLDEN --golden GOLDEN` replays its inputs. Its
    metadata (custom_data) names the model and the replay settings that made it."""
    cfg = cfg or ReplayTestConfig()
    bag, golden = Path(bag), Path(golden)
    if golden.exists():
        raise VlaEdgeError(f'{golden} exists already; a golden is never overwritten')
    golden.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f'.{golden.name}.', dir=golden.parent))
    try:
        stats = replay_through_pipeline(bag, work / 'run', cfg, runtime=runtime, stop=stop,
                                        progress=progress)
        seed = _overrides(cfg, False)['vla_node'].get('noise_seed', 'configured')
        notes = {**model_identity(cfg.model_dir, runtime), 'source': str(bag.absolute()),
                 'mode': stats['mode'], 'noise_seed': str(seed)}
        custom = {f'golden.{k}': v for k, v in notes.items()}
        summary = merge_bags(golden, [(bag, stats['inputs']), (work / 'run', list(
            stats['recorded']['message_counts']))], cfg.storage, custom)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f'golden: {summary.describe()}')
    return {**stats, 'golden': summary.to_dict()}


def record_sim_run(out_bag: str | Path, seconds: float = 8.0,
                   cfg: ReplayTestConfig | None = None, *, runtime=None,
                   sim_seed: int | None = None, stop: threading.Event | None = None,
                   progress: Callable[[str], None] = print):
    """Run a live sim episode through the pipeline (as configured, on the wall clock) and record
    its inputs and outputs to `out_bag`; returns the BagSummary."""
    from vla_edge.nodes.bringup import build_pipeline
    from vla_edge.nodes.isolated_executors import IsolatedExecutors
    from vla_edge.replay.recorder import start_recording

    cfg, stop = cfg or ReplayTestConfig(), stop or threading.Event()
    overrides: dict[str, dict[str, object]] = {}
    if sim_seed is not None:
        overrides['sim_robot'] = {'first_seed': sim_seed}
    if cfg.model_dir is not None:   # the model's rate reaches the executor and the watchdog
        for node in ('vla_node', 'chunk_executor', 'watchdog'):
            overrides[node] = {'model_dir': str(cfg.model_dir)}
    topics = [CAMERA, '/joint_states', '/instruction', *OUTPUT_TOPICS] + (
        ['/command'] if cfg.with_watchdog else [])
    with ros_context(cfg.domain_id) as ctx:
        pipeline = build_pipeline(param_files=cfg.param_files, with_sim=True, overrides=overrides,
                                  runtime=None if cfg.model_dir else runtime, context=ctx,
                                  with_watchdog=cfg.with_watchdog)
        recorder = executors = None
        try:
            recorder = start_recording(out_bag, topics, cfg.storage, context=ctx)
            executors = IsolatedExecutors([recorder], context=ctx).start()
            if not _wait(lambda: len(recorder.subscribed_topics) == len(topics), 10.0, stop):
                missing = sorted(set(topics) - set(recorder.subscribed_topics))
                progress(f'warning: not recording {missing} (no publisher)')
            progress(f'sim run: {pipeline.nodes["sim_robot"].start_episode()!r}, {seconds:g} s')
            pipeline.start()
            end = time.monotonic() + seconds
            while not stop.is_set() and time.monotonic() < end:
                stop.wait(min(2.0, max(0.0, end - time.monotonic())))
                progress(f'  {seconds - max(0.0, end - time.monotonic()):.0f}/{seconds:g} s')
        finally:
            if executors is not None:
                executors.shutdown()
            if recorder is not None:
                summary = recorder.close('interrupted' if stop.is_set() else '')
                recorder.destroy_node()
            pipeline.stop()
    progress(summary.describe())
    if stop.is_set():
        raise KeyboardInterrupt
    return summary

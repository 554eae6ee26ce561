"""Fault injection against the live sim pipeline: how fast does a safe command reach the robot, and
does anything unsafe get through?

The pipeline is the real one (`build_pipeline`: vla_node with the ONNX runtime, chunk_executor,
watchdog, sim robot and camera, over DDS). Faults are injected where they would arise:
- camera faults in the camera node's publisher (frozen, black, saturated, blurred, wrong size, an
  unsupported encoding, a camera that stops publishing);
- command faults in the executor: a chunk with NaN actions lands in its queue (on the
  `action_chunk` topic the executor itself refuses NaN, so this models a fault behind that check),
  an out-of-limit chunk is published on `action_chunk`, and a sudden jump is added to its output
  right after a chunk switch;
- policy faults in vla_node: the action thread stalls (hang), or every chunk takes longer than a
  chunk lasts (slow model, through the node's emulated latency).

A monitor node subscribes to `command` as the robot does and to the watchdog's events. For each
fault it measures the time from the onset (first faulty frame or command published, first frame
not published, or the moment the last chunk ran out) to the first safe command the robot
received, and counts unsafe commands (non-finite, out of bounds, or a velocity step beyond the
gate's acceleration limit that is not a step toward rest). A clean run first counts false vetoes.

On position targets (config/position_targets.yaml; the default, `--command-interface velocity`
for velocities) a safe command is a hold, a target repeated where the robot
was measured; faults go into the position dims (the jump is 0.3 in x); and a target farther from
the measured position than the gate's `max_state_step` counts as unsafe.

    vla-edge faults [--clean-seconds 300] [--faults black,nan_chunk,...] [--json out/faults.json]
        [--command-interface velocity|position]

One file (about 500 lines) because each fault's injection and its onset measurement belong
together: they share the runner's taps and logs, and a fault added later needs both.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from vla_edge.nodes.messages import chunk_to_trajectory
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE
from vla_edge.tools.fault_taps import (
    CameraTap,
    ExecutorTap,
    Monitor,
    first_held,
    holds,
    is_stop,
    jump_vx,
    jump_x,
    unsafe_commands,
    wait_until,
)


@dataclass(frozen=True)
class Fault:
    """One injectable fault, what it is, and which watchdog checks should catch it."""

    name: str
    kind: str              # camera | command | policy
    checks: tuple[str, ...]   # watchdog checks expected to catch it ('' : the executor's hold)
    description: str
    position_checks: tuple[str, ...] | None = None   # with position targets, if not `checks`
    position_description: str | None = None

    def checks_for(self, positions: bool) -> tuple[str, ...]:
        return self.position_checks if positions and self.position_checks else self.checks

    def description_for(self, positions: bool) -> str:
        return self.position_description if positions and self.position_description \
            else self.description


FAULTS = {f.name: f for f in (
    Fault('frozen', 'camera', ('frame.frozen',), 'camera repeats its last image, fresh stamps'),
    Fault('black', 'camera', ('frame.dark',), 'black frames'),
    Fault('saturated', 'camera', ('frame.saturated',), 'white frames'),
    Fault('blur', 'camera', ('frame.blur',), 'defocused frames (Gaussian blur, sigma 3)'),
    Fault('wrong_size', 'camera', ('frame.format',), '64x64 frames instead of 128x128'),
    Fault('bad_encoding', 'camera', ('frame.format',), "frames in an unsupported 'yuv422'"),
    Fault('camera_stop', 'camera', ('frame.stale',), 'the camera stops publishing'),
    Fault('nan_chunk', 'command', ('command.finite',), 'a chunk with NaN velocities in the '
          "executor's queue", position_description="a chunk with NaN targets in the executor's "
          'queue'),
    Fault('limit_chunk', 'command', ('command.bounds',), 'a chunk at 3x the velocity bounds on '
          'action_chunk', position_description="targets 3 half-ranges off the bounds' centre "
          "in the executor's queue"),
    Fault('jump', 'command', ('command.acceleration', 'command.switch_jump'),
          "a 0.9 step in the executor's vx right after a chunk switch",
          ('command.switch_jump', 'command.state_step'),
          "a 0.3 step in the executor's x target right after a chunk switch"),
    Fault('hang', 'policy', ('', 'liveness.action_chunk'), "vla_node's action thread stalls"),
    Fault('slow_model', 'policy', ('',), 'every chunk takes 1.5x the chunk duration'),
)}
DEFAULT_FAULTS = tuple(FAULTS)
_domains = itertools.count(60 + os.getpid() % 80)
log = logging.getLogger(__name__)


class FaultRunner:
    """Owns the running pipeline, the taps and the monitor; runs one fault at a time."""

    def __init__(self, pipe, monitor: Monitor):
        self.pipe = pipe
        self.mon = monitor
        self.wd = pipe.nodes['watchdog']
        self.ex = pipe.nodes['chunk_executor']
        self.vla = pipe.nodes['vla_node']
        self.camera = CameraTap(pipe.nodes['sim_camera'])
        self.exec_tap = ExecutorTap(self.ex)
        cfg = self.wd.config
        self.gate_cfg = cfg.command
        self.period_s = 1.0 / cfg.command.control_rate_hz
        self.frame_s = 1.0 / pipe.nodes['sim_camera'].get_parameter('rate_hz').value
        self.vel = tuple(cfg.command.velocity_dims)
        self.pos = tuple(self.ex.position_dims)   # position targets (none on velocities)
        self.motion = self.vel + self.pos
        self.unexpected: list[dict] = []   # latches outside any injected fault
        self.phase = 'start-up'            # what ran last: where an unexpected latch came after
        self.chunk_s = self.vla.runtime.manifest.chunk_duration_s
        from trajectory_msgs.msg import JointTrajectory

        # created now, so that DDS has matched it with the executor before a fault needs it
        self.chunk_pub = monitor.node.create_publisher(JointTrajectory, 'action_chunk', 10)

    def target_s(self, fault: Fault) -> float:
        if fault.kind == 'command' or fault.kind == 'policy':
            return self.period_s
        if fault.name in ('frozen', 'camera_stop'):
            return 0.1
        return self.frame_s + self.period_s

    def ready(self, timeout_s: float = 30.0) -> bool:
        """Armed, not latched, chunks flowing, robot moving; then a settling second. A latch
        found here was not caused by an injected fault: it is recorded, then reset."""
        if self.wd.wd.latch.latched:
            self._note_unexpected()
            self.mon.reset_watchdog(timeout_s)
        ok = wait_until(lambda: self.wd.wd.armed and not self.wd.wd.latch.latched
                        and self.ex.queued_ticks() > 0,
                        timeout_s, 0.05)
        time.sleep(1.0)
        return ok and not self.wd.wd.latch.latched

    def run(self, fault: Fault, hold_s: float = 0.5) -> dict:
        started = self.mon.now_s()
        if self.wd.wd.latch.latched:
            self._note_unexpected()
            self.mon.reset_watchdog()
        n_log = len(self.exec_tap.log)
        self.phase = fault.name
        onset, end = self._inject(fault, hold_s)
        result = self._measure(fault, onset, end, started, n_log)
        self._recover(fault)
        return result

    def _note_unexpected(self) -> None:
        # at_s: when the harness found the latch (it checks between faults), not when it fell
        self.unexpected.append({'after': self.phase, 'at_s': round(self.mon.now_s(), 3),
                                'reasons': list(self.wd.wd.latch.reasons)})

    # -- injection ---------------------------------------------------------------------------
    def _inject(self, fault: Fault, hold_s: float) -> tuple[float | None, float]:
        """Start the fault, wait until it is detected (or long enough), stop it. Returns
        (onset, end) on the node clock."""
        name = fault.name
        if fault.kind == 'camera':
            self.camera.start(name)
            wait_until(lambda: self.camera.onset_s is not None and self._first_hold_after(
                self.camera.onset_s) is not None, 2.0)
            time.sleep(hold_s)
            self.camera.mode = None
            return self.camera.onset_s, self.mon.now_s()
        if name == 'nan_chunk':
            return self._inject_chunk(np.nan, hold_s, lambda c: not np.all(np.isfinite(c)))
        if name == 'limit_chunk':
            if self.pos:
                # On action_chunk, offset_fade would take the wild targets up from where the old
                # chunk stands, at the robot's top speed, and the executor drops its queue once
                # the robot lags them: the executor is itself a line of defence there. The fault
                # is put behind it, in its queue, to test the watchdog's.
                lo, hi = self._bounds()
                return self._inject_chunk(self._off_bounds()[list(self.pos)], hold_s,
                                          lambda c: bool(np.any(c < lo) or np.any(c > hi)))
            return self._publish_limit_chunk(hold_s)
        if name == 'jump':
            self.exec_tap.start_after_next_chunk(jump_x if self.pos else jump_vx)
            wait_until(lambda: self.exec_tap.onset_s is not None, 3.0)
            time.sleep(hold_s)
            self.exec_tap.transform = None
            return self.exec_tap.onset_s, self.mon.now_s()
        return self._inject_policy(name, hold_s)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.gate_cfg.value_min), np.asarray(self.gate_cfg.value_max)

    def _off_bounds(self) -> np.ndarray:
        """Per dim, 3 half-ranges from the centre of the gate's bounds, alternately above and
        below it (velocities: 3, -3, 3)."""
        lo, hi = self._bounds()
        sign = np.where(np.arange(len(lo)) % 2, -1.0, 1.0)
        return (lo + hi) / 2 + 3 * sign * (hi - lo) / 2

    def _inject_chunk(self, value, hold_s: float, faulty):
        ex = self.ex
        # Right after an episode change the executor holds until the new task's first chunk
        # (its queue is empty): there is nothing to corrupt until that chunk is queued. And the
        # robot must be moving: a safe command (zero velocity, or a held target) is told apart
        # from the commands before the fault only if those were not one too.
        vel, pos = list(self.vel), list(self.pos)

        def moving_with_a_queue() -> bool:
            with ex.locked_queue() as (scheduler, tick):
                if scheduler.queue.remaining(tick) < 10 or len(self.exec_tap.log) < 2:
                    return False
                upcoming = scheduler.queue.upcoming(tick, 4)
            last, before = (np.asarray(c) for _, c, _ in self.exec_tap.log[-1:-3:-1])
            if pos:   # targets that move each tick
                moving = np.abs(np.diff(upcoming[:, pos], axis=0)).max(axis=1) > 1e-3
                return bool(np.all(moving) and np.abs(last[pos] - before[pos]).max() > 1e-3)
            moving = np.abs(upcoming[:, vel]).max(axis=1, initial=0.0) > 0.05
            return bool(np.all(moving) and np.abs(last[vel]).max() > 0.05)
        for _ in range(3):
            wait_until(moving_with_a_queue, 5.0)
            with ex.locked_queue() as (scheduler, tick):
                start = len(self.exec_tap.log)
                chunk = scheduler.queue.upcoming(tick, 50).copy()
                chunk[:10, list(self.motion)] = value   # 10 ticks of it, then the old plan
                scheduler.queue.install(chunk, tick, tick)
            # A chunk that lands before the next tick replaces the faulty actions (the merge
            # does not take non-finite ones): then the fault never ran, and it goes in again.
            if wait_until(lambda k=start: any(faulty(c) for _, c, _ in self.exec_tap.log[k:]),
                          10 * self.period_s, 0.005):
                break
        return self._onset_from_log(faulty, hold_s, start)

    def _publish_limit_chunk(self, hold_s: float):
        pub = self.chunk_pub
        # from a robot executing actions: a safe answer to a vetoed chunk (a hold) is told
        # apart from the commands before it only if those were not a hold too
        wait_until(lambda: bool(self.exec_tap.log) and self.exec_tap.log[-1][2] == 'action',
                   3.0 * self.chunk_s, 0.01)
        grip = self.exec_tap.log[-1][1][2] if self.exec_tap.log else -1.0
        lo, hi = self._bounds()
        actions = np.tile(np.r_[self._off_bounds()[:2], grip], (50, 1))
        pub.publish(chunk_to_trajectory(actions, self.mon.now_s(), self.vla.rate_hz,
                                        list(self.ex.joint_names)))
        return self._onset_from_log(lambda c: bool(np.any(c < lo) or np.any(c > hi)), hold_s)

    def _onset_from_log(self, faulty, hold_s: float, start: int | None = None):
        """`start`: the log length before the injection (a faulty command can be executed
        between the injection and this call)."""
        start = len(self.exec_tap.log) if start is None else start
        onset = []

        def found():
            for t, c, _ in self.exec_tap.log[start:]:
                if faulty(c):
                    onset.append(t)
                    return True
            return False
        wait_until(found, 3.0)
        time.sleep(hold_s)
        return (onset[0] if onset else None), self.mon.now_s()

    def _inject_policy(self, name: str, hold_s: float):
        # The fault shows as the queue running dry, so start from a robot that is executing
        # actions (after slow_model it can still be holding on chunks that landed stale).
        if not wait_until(lambda: bool(self.exec_tap.log) and self.exec_tap.log[-1][2] ==
                          'action', 3.0 * self.chunk_s, 0.01):
            log.warning('%s: the executor was still holding when the fault went in; its '
                        'detection time may read as "never took effect"', name)
        vla, n_log = self.vla, len(self.exec_tap.log)
        release = threading.Event()
        if name == 'hang':
            plan = vla._plan_and_publish

            def stalled(*args, **kwargs):
                while not release.wait(0.05):
                    if vla._stopping.is_set():
                        return None
                return plan(*args, **kwargs)
            vla._plan_and_publish = stalled
        else:
            latency = vla.params['emulated_latency_s']
            vla.params['emulated_latency_s'] = 1.5 * self.chunk_s
        onset = self._run_out_after(n_log, 6.0 * self.chunk_s)
        if name == 'hang' and onset is not None:   # let the chunk heartbeat time out, too
            timeout = self.wd.config.liveness.chunk_timeout_s
            wait_until(lambda: self.wd.wd.latch.latched, timeout + 1.0)
        time.sleep(hold_s)
        if name == 'hang':
            del vla._plan_and_publish
            release.set()
        else:
            vla.params['emulated_latency_s'] = latency
        return onset, self.mon.now_s()

    def _run_out_after(self, start: int, timeout_s: float) -> float | None:
        """When the queue ran dry: one period after the last action before the first hold."""
        found = []

        def ran_out():
            log = self.exec_tap.log
            for k in range(max(start, 1), len(log)):
                if log[k][2] == 'hold' and log[k - 1][2] == 'action':
                    found.append(log[k - 1][0] + self.period_s)
                    return True
            return False
        wait_until(ran_out, timeout_s, 0.05)
        if found:
            wait_until(lambda: self._first_stop_after(found[0]) is not None, 1.0)
        return found[0] if found else None

    # -- measurement -------------------------------------------------------------------------
    def _first_hold_after(self, t0: float) -> float | None:
        """First command with every velocity dim exactly zero (with position targets: the
        first of a repeated target) at or after t0, sent after a latch (the watchdog's safe
        command, not a coincidence)."""
        latches = [e['stamp_s'] for e in self.mon.events_after(t0 - self.period_s, ('latch',))]
        if not latches:
            return None
        if self.pos:
            return first_held(self.mon.window(t0 - 2 * self.period_s), self.pos,
                              max(t0, latches[0]), self.mon.state_window(t0 - 0.2))
        after = [(t, c) for t, c in self.mon.window(t0) if t >= latches[0]]
        for t, c in after:
            if not np.any(c[list(self.vel)]):
                return t
        return None

    def _last_action_before(self, t0: float) -> np.ndarray | None:
        actions = [c for t, c, kind in self.exec_tap.log if t < t0 and kind == 'action']
        return actions[-1] if actions else None

    def _first_stop_after(self, t0: float) -> float | None:
        ref = self._last_action_before(t0)
        if ref is None:
            return None
        if self.pos:   # the executor's hold: a target repeated where the robot was measured
            return first_held(self.mon.window(t0 - 2 * self.period_s), self.pos, t0,
                              self.mon.state_window(t0 - 0.2))
        for t, c in self.mon.window(t0):
            if is_stop(c, ref, self.vel):
                return t
        return None

    def _first_answer_after(self, t0: float) -> float | None:
        """First finite command on the robot side after t0 that is not an in-flight copy of the
        executor's last output before the fault (a forward delayed past t0 on a loaded machine).
        """
        recent = [c for t, c, _ in self.exec_tap.log[-400:] if t < t0][-1:]
        before = {tuple(c[list(self.motion)]) for c in recent}
        for t, c in self.mon.window(t0):
            if np.all(np.isfinite(c)) and tuple(c[list(self.motion)]) not in before:
                return t
        return None

    def _measure(self, fault: Fault, onset: float | None, end: float, started: float,
                 n_log: int) -> dict:
        result = {'fault': fault.name, 'description': fault.description_for(bool(self.pos)),
                  'target_ms': round(self.target_s(fault) * 1e3, 1)}
        if onset is None:
            return dict(result, caught=False, detection_ms=None, within_target=False,
                        unsafe=0, caught_by=[], note='the fault never took effect')
        if fault.kind == 'camera':
            detected = self._first_hold_after(onset)
        elif fault.kind == 'command':
            detected = self._first_answer_after(onset)
        else:
            detected = self._first_stop_after(onset)
        checks_expected = fault.checks_for(bool(self.pos))
        expected = [c for c in checks_expected if c]
        events = self.mon.events_after(onset - self.period_s)
        checks = {(r.split(':', 1)[0], e['event']) for e in events for r in e['reasons']}
        caught_by = sorted({c for c, kind in checks if kind != 'clamp' or c in expected})
        latched = [e for e in events if e['event'] == 'latch']
        by_watchdog = any(c in caught_by for c in expected)
        caught = detected is not None and (by_watchdog or '' in checks_expected)
        commands = self.mon.window(started - 1.0, end + 0.2)
        unsafe = [(t, why) for t, why in self._unsafe(commands, started - 1.2) if t >= onset]
        leaks = 0
        if detected is not None and latched:   # moving commands after the latch's safe one
            after = self.mon.window(detected, end)
            states = self.mon.state_window(detected - 0.2) if self.pos else ()
            leaks = sum(1 for i, (t, c) in enumerate(after) if t > latched[0]['stamp_s'] and (
                np.any(c[list(self.vel)]) or
                (self.pos and not holds(after, i, self.pos, states))))
        detection_ms = None if detected is None else round((detected - onset) * 1e3, 1)
        result.update(
            caught=caught, caught_by=caught_by if by_watchdog else
            (['chunk_executor hold'] + caught_by),
            detection_ms=detection_ms,
            within_target=detection_ms is not None and detection_ms <= result['target_ms'],
            latched=bool(latched),
            latch_ms=round((latched[0]['stamp_s'] - onset) * 1e3, 1) if latched else None,
            unsafe=len(unsafe), unsafe_examples=[w for _, w in unsafe[:3]], leaks=leaks,
            duration_s=round(end - onset, 3))
        return result

    def _unsafe(self, commands, since_s: float) -> list[tuple[float, str]]:
        states = self.mon.state_window(since_s) if self.pos else None
        return unsafe_commands(commands, self.gate_cfg, states, self.pos)

    def _recover(self, fault: Fault) -> None:
        time.sleep(0.3)
        if self.wd.wd.latch.latched:
            ok, why = self.mon.reset_watchdog()
            if not ok:
                raise RuntimeError(f'after {fault.name}: the watchdog would not reset: {why}')

    def clean(self, seconds: float, progress: bool = True) -> dict:
        """Run without faults; every latch or veto is a false one."""
        from tqdm import tqdm

        t0, trips0 = self.mon.now_s(), self.wd.wd.latch.trips
        stalls0 = self.wd.wd.frames.stalls
        counts0 = dict(self.wd.counts)
        episodes0 = len(self.pipe.nodes['sim_robot'].episodes)
        for _ in tqdm(range(int(np.ceil(seconds))), desc='clean run', unit='s',
                      disable=not progress):
            time.sleep(min(1.0, seconds))
        t1 = self.mon.now_s()
        commands = self.mon.window(t0, t1)
        gaps = np.diff([t for t, _ in commands]) if len(commands) > 1 else np.zeros(1)
        events = self.mon.events_after(t0, ('latch', 'veto'))
        counts = {k: self.wd.counts[k] - counts0[k] for k in counts0}
        episodes = self.pipe.nodes['sim_robot'].episodes[episodes0:]
        if self.wd.wd.latch.latched:   # counted as a false veto; the faults need it cleared
            self.mon.reset_watchdog()
        self.phase = 'the clean run'
        return {'seconds': round(t1 - t0, 1), 'false_vetoes': self.wd.wd.latch.trips - trips0,
                'veto_reasons': [r for e in events for r in e['reasons']][:10],
                'unsafe': len(self._unsafe(commands, t0 - 0.2)),
                'commands': len(commands), 'clamped': counts['clamped'],
                'fills': counts['fills'], 'max_command_gap_ms': round(float(gaps.max()) * 1e3, 1),
                'episodes': len(episodes),
                'successes': sum(1 for e in episodes if e['success']),
                # the watchdog's own stalls, whose time was not held against the camera
                'watchdog_stalls': self.wd.wd.frames.stalls - stalls0}


@contextlib.contextmanager
def fault_pipeline(runtime=None, context=None, overrides: dict | None = None,
                   command_interface: str = DEFAULT_COMMAND_INTERFACE):
    """The sim pipeline up, the monitor listening and the robot moving: yields the FaultRunner.
    Everything is stopped on the way out (the context too, if this made it)."""
    import rclpy

    from vla_edge.nodes.bringup import build_pipeline, param_files_for
    from vla_edge.nodes.isolated_executors import IsolatedExecutors

    own = context is None
    if own:   # localhost only, and a domain no other node is on: it injects faults
        from vla_edge.nodes.sim_domain import sim_context

        context = sim_context(next(_domains) % 230 for _ in range(20))
    o = {'sim_robot': {'auto_reset': True}, 'watchdog': {'event_repeat_s': 0.0}}
    for node, params in (overrides or {}).items():
        o.setdefault(node, {}).update(params)
    pipe = monitor = spin = None
    try:
        pipe = build_pipeline(param_files_for(command_interface), context=context,
                              runtime=runtime, overrides=o)
        joints = pipe.nodes['watchdog'].get_parameter('state.joints').value   # robot-side check
        monitor = Monitor(context, state_joints=tuple(joints) if pipe.nodes[
            'chunk_executor'].position_dims else ())
        spin = IsolatedExecutors([monitor.node], context)
        runner = FaultRunner(pipe, monitor)
        pipe.nodes['sim_robot'].start_episode()
        pipe.start()
        spin.start()
        if not runner.ready(60.0):
            raise RuntimeError('the pipeline did not start moving the robot within 60 s')
        runner.unexpected.clear()   # start-up is not a fault
        gc.freeze()   # the harness's own garbage must not pause the pipeline's threads
        yield runner
    finally:   # whatever got started, even if a later step failed
        gc.unfreeze()
        if spin is not None:
            spin.shutdown()
        if pipe is not None:
            pipe.stop()
        if monitor is not None:
            monitor.node.destroy_node()
        if own:
            rclpy.try_shutdown(context=context)


def run_faults(faults=None, clean_seconds: float = 300.0, progress: bool = True,
               runtime=None, context=None, overrides: dict | None = None,
               command_interface: str = DEFAULT_COMMAND_INTERFACE) -> dict:
    """Bring the sim pipeline up, run a clean stretch, then inject each fault. Returns the
    report (also what `main` prints and writes as JSON)."""
    names = list(faults or DEFAULT_FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f'unknown fault(s) {unknown}; known: {", ".join(FAULTS)}')
    report: dict = {'faults': []}
    with fault_pipeline(runtime, context, overrides, command_interface) as runner:
        report['setup'] = {'command_interface': command_interface,
                           'control_period_ms': runner.period_s * 1e3,
                           'camera_period_ms': round(runner.frame_s * 1e3, 1),
                           'chunk_s': runner.chunk_s,
                           'watchdog': {k: v for k, v in runner.wd.config.flat().items()}}
        if clean_seconds > 0:
            report['clean'] = runner.clean(clean_seconds, progress)
        for name in names:
            if not runner.ready():
                raise RuntimeError(f'before {name}: the pipeline did not recover')
            if progress:
                print(f'fault {name}: {FAULTS[name].description_for(bool(runner.pos))}',
                      flush=True)
            report['faults'].append(runner.run(FAULTS[name]))
        report['unexpected_latches'] = runner.unexpected
    rows = report['faults']
    report['summary'] = {
        'all_caught': all(r['caught'] for r in rows),
        'all_within_target': all(r['within_target'] for r in rows),
        'unsafe_total': sum(r['unsafe'] for r in rows) + report.get('clean', {}).get('unsafe', 0),
        'false_vetoes': report.get('clean', {}).get('false_vetoes'),
        'unexpected_latches': len(report.get('unexpected_latches', []))}
    return report


def format_report(report: dict) -> str:
    lines = [f'{"fault":<13} {"caught by":<34} {"detect ms":>9} {"target ms":>9} {"ok":>3} '
             f'{"latch ms":>8} {"unsafe":>6} {"leaks":>5}']
    for r in report['faults']:
        ok = 'yes' if r['caught'] and r['within_target'] else 'NO'
        det = '-' if r['detection_ms'] is None else f'{r["detection_ms"]:.1f}'
        latch = '-' if r.get('latch_ms') is None else f'{r["latch_ms"]:.0f}'
        lines.append(f'{r["fault"]:<13} {", ".join(r["caught_by"])[:34]:<34} {det:>9} '
                     f'{r["target_ms"]:>9.1f} {ok:>3} {latch:>8} {r["unsafe"]:>6} '
                     f'{r.get("leaks", 0):>5}')
        if r['unsafe']:
            lines.append(f'  {r["fault"]} unsafe, first: ' + '; '.join(r.get('unsafe_examples',
                                                                            [])))
    clean = report.get('clean')
    if clean:
        lines.append(f'clean run {clean["seconds"]:.0f} s: {clean["false_vetoes"]} false vetoes, '
                     f'{clean["unsafe"]} unsafe commands, {clean["clamped"]} clamped, '
                     f'{clean["episodes"]} episodes ({clean["successes"]} successes), max '
                     f'command gap {clean["max_command_gap_ms"]} ms, watchdog stalls '
                     f'{clean.get("watchdog_stalls", 0)}')
    s = report['summary']
    lines.append(f'all caught: {s["all_caught"]}, all within target: {s["all_within_target"]}, '
                 f'unsafe commands: {s["unsafe_total"]}, latches outside the injected faults: '
                 f'{s["unexpected_latches"]}')
    for latch in report.get('unexpected_latches', []):
        if not isinstance(latch, dict):   # a report saved before session 17: reasons only
            latch = {'after': 'an unrecorded phase', 'reasons': latch}
        lines.append(f'  unexpected latch after {latch["after"]}: '
                     + '; '.join(latch['reasons'])[:200])
    return '\n'.join(lines)


def fault_list(text: str) -> list[str]:
    """'black, nan_chunk' -> ['black', 'nan_chunk']; refuses an empty list and unknown names
    while parsing (an empty list would otherwise mean every fault)."""
    names = [f.strip() for f in text.split(',') if f.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f'name at least one fault, from: {", ".join(FAULTS)}')
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise argparse.ArgumentTypeError(f'unknown fault(s) {", ".join(unknown)}; known: '
                                         f'{", ".join(FAULTS)}')
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    from vla_edge.arg_types import non_negative_float, output_file

    p.add_argument('--faults', type=fault_list, default=list(DEFAULT_FAULTS),
                   help=f'comma-separated faults to inject (default: all), from: '
                        f'{", ".join(FAULTS)}')
    p.add_argument('--clean-seconds', type=non_negative_float, default=300.0,
                   help='clean run before the faults, counting false vetoes (0: none)')
    p.add_argument('--json', type=output_file, default='out/faults.json',
                   help='write the report as JSON here')
    p.add_argument('--no-progress', action='store_true', help='no progress output')
    p.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                   default=DEFAULT_COMMAND_INTERFACE,
                   help='the pipeline on velocity commands, or on position targets '
                        '(config/position_targets.yaml)')


def cmd_faults(args: argparse.Namespace) -> int:
    """The `vla-edge faults` verb. Exit status 1 if a fault was missed, late or let an unsafe
    command through, or the clean run vetoed."""
    report = run_faults(list(args.faults), args.clean_seconds, progress=not args.no_progress,
                        command_interface=args.command_interface)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=float))
        print(f'report: {args.json}')
    s = report['summary']
    return 0 if s['all_caught'] and s['all_within_target'] and not s['unsafe_total'] and \
        not s['false_vetoes'] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vla-edge faults', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return cmd_faults(parser.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())

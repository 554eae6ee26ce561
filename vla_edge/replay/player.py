"""Replay publisher: republishes a bag's serialized messages with their recorded timing.

The bytes go out exactly as recorded (`publisher.publish(bytes)` publishes a serialized message),
so images, compressed images and any encoding are reproduced byte for byte, with no
deserialize/serialize round trip.

Timing. A dedicated thread publishes each message at an absolute deadline on
`time.monotonic()` computed by `schedule.ReplaySchedule` (rate, start offset, loop, pause/step):
it sleeps (on a condition, so pause/stop/step wake it) until `spin_s` before the deadline, then
busy-waits the rest. A rclpy timer would add the executor's latency and jitter. `precise_timing`
shortens the GIL switch interval while playing and can give the thread real-time priority.
Each publish is logged (deadline, actual time) for `timing_stats()`.

Control: `pause()`, `resume()`, `step()` (publish the next message while paused), `stop()`; as
services `~/pause`, `~/resume`, `~/play_next` (std_srvs/Trigger) when the node is spun.
With `clock_hz > 0` it publishes /clock (rosgraph_msgs/Clock) with the bag's time, frozen while
paused, for nodes running with use_sim_time.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_srvs.srv import Trigger

from vla_edge.core.errors import VlaEdgeError
from vla_edge.replay.bag_reader import BagMessage, BagReader
from vla_edge.replay.message_source import PRELOAD_MAX_BYTES, MessageSource
from vla_edge.replay.msg_types import import_message_class
from vla_edge.replay.precise_timing import gil_switch_interval, tune_publishing_thread
from vla_edge.replay.qos import publisher_qos
from vla_edge.replay.schedule import ReplaySchedule
from vla_edge.replay.stop_signals import stop_requested


@dataclass
class PlayerOptions:
    """What to play and how; the CLI maps its flags one to one onto these fields."""

    rate: float = 1.0                    # playback speed factor (2.0 = twice as fast)
    start_offset_s: float = 0.0          # skip this much of the bag's beginning
    loop: bool = False
    topics: list[str] | None = None      # bag topics to play (None: all playable)
    exclude_topics: list[str] = field(default_factory=list)
    remap: dict[str, str] = field(default_factory=dict)     # bag topic -> published topic
    start_paused: bool = False
    clock_hz: float = 0.0                # > 0: publish /clock at this rate
    loop_gap_s: float | None = None      # pause between loops (None: mean message interval)
    spin_s: float = 0.001                # busy-wait window before each deadline
    start_lead_s: float = 0.01           # the first message is due this long after play()
    gil_switch_interval_s: float | None = 0.0005   # see `precise_timing`; None: untouched
    realtime_priority: int = 0           # 1-99: SCHED_FIFO for the publishing thread (if allowed)
    preload_max_bytes: int = PRELOAD_MAX_BYTES


def parse_remaps(items: Iterable[str]) -> dict[str, str]:
    """['old:=new', ...] -> {'old': 'new'}; ValueError names a malformed entry."""
    remap = {}
    for item in items:
        old, sep, new = item.partition(':=')
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f'remap {item!r} is not of the form old_topic:=new_topic')
        remap[old.strip()] = new.strip()
    return remap


def _absolute(topic: str) -> str:
    return topic if topic.startswith('/') else f'/{topic}'


def _stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class Player(Node):
    """Replays one bag; see the module docstring. `play()` starts, `wait()` joins."""

    def __init__(self, bag_path: str | Path, options: PlayerOptions | None = None, *,
                 node_name: str = 'vla_edge_player', **node_kwargs):
        o = options or PlayerOptions()
        self.options = o = dataclasses.replace(
            o, exclude_topics=[_absolute(t) for t in o.exclude_topics],
            remap={_absolute(old): new for old, new in o.remap.items()})
        # Validate the whole bag before creating anything that could publish.
        bag = BagReader(bag_path, o.topics).open()
        bag.selected = [t for t in bag.selected if t not in set(o.exclude_topics)]
        try:
            self.source = MessageSource(bag, o.loop, o.preload_max_bytes)
            self.schedule = ReplaySchedule(self.source.timestamps_ns, o.rate, o.start_offset_s,
                                           o.loop, o.loop_gap_s)
        except BaseException:
            bag.close()
            raise
        super().__init__(node_name, **node_kwargs)
        self.bag_path = Path(bag_path)
        self._topic_pubs = {}
        for topic in bag.selected:
            info = bag.topics[topic]
            self._topic_pubs[topic] = self.create_publisher(
                import_message_class(info.msgtype), o.remap.get(topic, topic),
                publisher_qos(info.offered_qos))
        self._clock_pub = None
        if o.clock_hz > 0:
            self._clock_pub = self.create_publisher(Clock, '/clock', QoSProfile(
                depth=10, reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.VOLATILE))
        self.create_service(Trigger, '~/pause', self._srv(self.pause, 'paused'))
        self.create_service(Trigger, '~/resume', self._srv(self.resume, 'resumed'))
        self.create_service(Trigger, '~/play_next', self._srv(self.step, 'published'))
        self._cond = threading.Condition()
        self._stopping = False
        self._done = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_clock_s = math.inf
        self.error: BaseException | None = None
        # (topic, timeline index, deadline_s, publish_s); deadline is nan for stepped messages.
        self.publish_log: deque[tuple[str, int, float, float]] = deque(maxlen=1_000_000)

    @property
    def topic_names(self) -> dict[str, str]:
        """Bag topic -> topic it is published on."""
        return {t: self.options.remap.get(t, t) for t in self._topic_pubs}

    def subscriber_counts(self) -> dict[str, int]:
        return {t: p.get_subscription_count() for t, p in self._topic_pubs.items()}

    # -- control -------------------------------------------------------------------------------

    def play(self) -> Player:
        """Start the publishing thread (paused if options.start_paused)."""
        if self._thread is not None:
            return self
        self.source.start(self.schedule.first)
        self._thread = threading.Thread(target=self._run, name='bag-player', daemon=True)
        self._thread.start()
        self._started.wait(5.0)
        return self

    def wait(self, timeout_s: float | None = None) -> bool:
        """True when playback is over (end of bag, stop() or an error: see `error`)."""
        return self._done.wait(timeout_s)

    def pause(self) -> None:
        with self._cond:
            self.schedule.pause(time.monotonic())
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self.schedule.resume(time.monotonic())
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self.schedule.paused

    def step(self) -> BagMessage | None:
        """While paused, publish the next message now; None if not paused or at the end."""
        with self._cond:
            due = self.schedule.step()
            if due is None:
                return None
            msg = self.source.get(due.index)
            self._publish(msg, due.index, math.nan)
            self._cond.notify_all()
            return msg

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._done.set()

    def destroy_node(self) -> None:
        self.stop()
        self.source.close()
        super().destroy_node()

    def _srv(self, action, verb: str):
        def handle(request, response):
            result = action()
            response.success = result is not None or verb != 'published'
            response.message = verb if response.success else 'nothing to publish (not paused?)'
            return response
        return handle

    # -- the publishing thread -----------------------------------------------------------------

    def _publish(self, msg: BagMessage, index: int, deadline_s: float) -> None:
        publish_s = time.monotonic()
        self._topic_pubs[msg.topic].publish(msg.data)
        self.publish_log.append((msg.topic, index, deadline_s, publish_s))

    def _publish_clock(self, now_s: float) -> None:
        self._clock_pub.publish(Clock(clock=_stamp(self.schedule.bag_time_ns(now_s))))
        period = 1.0 / self.options.clock_hz
        self._next_clock_s += period
        if self._next_clock_s < now_s:     # fell behind (e.g. a long step): no burst to catch up
            self._next_clock_s = now_s + period

    def _run(self) -> None:
        spin_s = self.options.spin_s
        try:
            tune_publishing_thread(self.options.realtime_priority, self.get_logger())
            with gil_switch_interval(self.options.gil_switch_interval_s), self._cond:
                # Anchored here, not in play(): thread start-up must not make the first one late.
                now = time.monotonic()
                self.schedule.start(now + self.options.start_lead_s,
                                    paused=self.options.start_paused)
                if self._clock_pub is not None:
                    self._next_clock_s = now
                self._started.set()
                while not self._stopping:
                    due = self.schedule.next_due()
                    if due is None:
                        break
                    target = min(due.due_s, self._next_clock_s)
                    now = time.monotonic()
                    if target - now > spin_s:
                        self._cond.wait(min(target - now - spin_s, 1.0))
                        continue        # re-read the schedule: pause/step/stop may have changed it
                    while time.monotonic() < target:
                        pass            # the last ~ms: busy-wait, sleep would overshoot
                    if target == self._next_clock_s:
                        self._publish_clock(target)
                    if due.due_s <= target:
                        self._publish(self.source.get(due.index), due.index, due.due_s)
                        self.schedule.advance()
                if self._clock_pub is not None and not self._stopping:
                    self._publish_clock(time.monotonic())   # final time, so waiters see the end
        except BaseException as exc:    # reported by wait()/replay_main, never swallowed
            self.error = exc
            self.get_logger().error(f'playback of {self.bag_path} failed: {exc}')
        finally:
            self._started.set()
            self._done.set()

    # -- timing --------------------------------------------------------------------------------

    def timing_stats(self) -> dict[str, float]:
        """Publisher-side timing of the scheduled (not stepped) messages, in milliseconds.

        `lateness`: publish time - deadline. `interval_error`: |actual - scheduled| gap between
        consecutive publishes, the figure that matters to a consumer measuring rates.
        """
        rows = [(d, p) for _, _, d, p in self.publish_log if not math.isnan(d)]
        if not rows:
            return {'count': 0}
        deadlines, actual = np.array(rows).T
        late_ms = (actual - deadlines) * 1e3
        err_ms = np.abs(np.diff(actual) - np.diff(deadlines)) * 1e3
        out = {'count': float(len(rows)), 'lateness_p50_ms': float(np.percentile(late_ms, 50)),
               'lateness_p95_ms': float(np.percentile(late_ms, 95)),
               'lateness_max_ms': float(late_ms.max())}
        if len(err_ms):
            out.update(interval_error_p95_ms=float(np.percentile(err_ms, 95)),
                       interval_error_max_ms=float(err_ms.max()))
        return out


def make_player(bag_path: str | Path, remap: Mapping[str, str] | None = None,
                **options) -> Player:
    """Shortcut: `make_player(bag, rate=2.0, context=ctx)`; node kwargs (context) pass through."""
    node_kwargs = {k: options.pop(k) for k in ('context', 'parameter_overrides', 'namespace')
                   if k in options}
    opts = PlayerOptions(remap=dict(remap or {}), **options)
    return Player(bag_path, opts, **node_kwargs)


# -- the `vla-edge replay` verb ----------------------------------------------------------------

def add_replay_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `vla-edge replay`; `run_replay(args)` executes them."""
    from vla_edge.arg_types import (
        non_negative_float,
        output_file,
        positive_float,
        realtime_priority,
    )

    p.add_argument('bag', type=Path, help='bag folder (or a .mcap/.db3 file)')
    p.add_argument('-r', '--rate', type=positive_float, default=1.0,
                   help='playback speed factor (default: 1.0)')
    p.add_argument('--start-offset', type=non_negative_float, default=0.0,
                   help='skip this many seconds of the bag (default: 0)')
    p.add_argument('-l', '--loop', action='store_true', help='play again from the start, forever')
    p.add_argument('--topics', nargs='+', default=None,
                   help='play only these bag topics (default: all whose type imports here)')
    p.add_argument('--exclude', nargs='+', default=[], help='bag topics not to play')
    p.add_argument('--remap', nargs='+', default=[], metavar='OLD:=NEW',
                   help='publish bag topic OLD on NEW')
    p.add_argument('--start-paused', action='store_true',
                   help='start paused; ~/resume or ~/play_next (std_srvs/Trigger) to go on')
    p.add_argument('--clock', type=non_negative_float, nargs='?', const=100.0, default=0.0,
                   metavar='HZ',
                   help='publish /clock with the bag time at HZ (100 when given without a value)'
                        ' for nodes with use_sim_time (default: off)')
    p.add_argument('--realtime-priority', type=realtime_priority, default=0, metavar='N',
                   help='run the publishing thread as SCHED_FIFO priority N (1-99; needs '
                        'CAP_SYS_NICE) for precise timing under CPU load (default: 0 = off)')
    p.add_argument('--delay', type=non_negative_float, default=0.5,
                   help='seconds to wait after start-up before playing, so subscribers are '
                        'matched (default: 0.5)')
    p.add_argument('--json', type=output_file, default=None,
                   help='also write the publish timing statistics as JSON to this file')


def check_topics(bag_path: Path, options: PlayerOptions) -> None:
    """A replay that would publish nothing must not exit 0: named topics (--topics, --exclude,
    --remap) the bag lacks (a typo), a selection with no messages, a start offset past the last
    message. ValueError naming what the bag has."""
    with BagReader(bag_path, require_importable=False) as bag:   # Player warns about those
        have = bag.topics
        duration_s = (bag.end_ns - bag.start_ns) * 1e-9
    listed = ', '.join(f'{t} [{i.msgtype}, {i.message_count}]' for t, i in sorted(have.items()))
    named = [*(options.topics or []), *options.exclude_topics, *options.remap]
    missing = [t for t in dict.fromkeys(_absolute(t) for t in named) if t not in have]
    if missing:
        raise ValueError(f'bag {bag_path} has no topic {", ".join(missing)}; it has: '
                         f'{listed or "no topics"}')
    excluded = {_absolute(t) for t in options.exclude_topics}
    chosen = [_absolute(t) for t in options.topics] if options.topics else list(have)
    chosen = [t for t in chosen if t not in excluded]
    if not sum(have[t].message_count for t in chosen):
        raise ValueError(f'nothing to play from {bag_path}: the selected topics have no '
                         f'messages; it has: {listed or "no topics"}')
    if options.start_offset_s > duration_s:
        raise ValueError(f'--start-offset {options.start_offset_s:g} s is past the end of '
                         f'{bag_path} ({duration_s:.3f} s long)')


def options_from_args(args: argparse.Namespace) -> PlayerOptions:
    return PlayerOptions(rate=args.rate, start_offset_s=args.start_offset, loop=args.loop,
                         topics=args.topics, exclude_topics=list(args.exclude),
                         remap=parse_remaps(args.remap), start_paused=args.start_paused,
                         clock_hz=args.clock, realtime_priority=args.realtime_priority)


def run_replay(args: argparse.Namespace) -> int:
    """Play the bag to its end (or until Ctrl-C); print the publish timing.

    Raises BagError (a VlaEdgeError) for a missing, truncated or corrupt bag, before publishing.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    options = options_from_args(args)
    check_topics(args.bag, options)         # before rclpy: a bad bag or topic publishes nothing
    # args=[]: rcl would otherwise read this tool's own argv (a `--remap OLD:=NEW` value looks
    # like a legacy node-wide remap rule to it)
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor()
    player = None
    try:
        with stop_requested() as stop:
            try:
                player = Player(args.bag, options)
                executor.add_node(player)
                for topic, name in player.topic_names.items():
                    print(f'playing {topic}' + (f' as {name}' if name != topic else ''))
                start = time.monotonic()
                while not stop.is_set() and time.monotonic() - start < args.delay:
                    executor.spin_once(timeout_sec=0.05)
                player.play()
                while not stop.is_set() and not player.wait(0.0):
                    executor.spin_once(timeout_sec=0.1)
            except KeyboardInterrupt:
                pass
            finally:
                if player is not None:
                    executor.remove_node(player)
                    player.destroy_node()
    finally:
        executor.shutdown()
        rclpy.try_shutdown()
    if player is None:      # Ctrl-C before the bag was loaded
        return 130
    stats = player.timing_stats()
    print(f'published {len(player.publish_log)} messages; ' + ', '.join(
        f'{k} {v:.3f}' for k, v in stats.items() if k != 'count'))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(stats, indent=2))
    if player.error is not None:
        raise player.error
    return 0


def replay_main(argv: list[str] | None = None) -> int:
    """Standalone `replay` (python -m vla_edge.replay.player BAG ...)."""
    from vla_edge.arg_types import HelpFormatter

    parser = argparse.ArgumentParser(prog='vla-edge replay', description=__doc__.split('\n')[0],
                                     formatter_class=HelpFormatter)
    add_replay_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_replay(args)
    except (VlaEdgeError, ValueError) as exc:
        print(f'vla-edge replay: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(replay_main())

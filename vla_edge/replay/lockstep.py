"""Lockstep replay: a bag's inputs one message at a time, each camera frame gated on the answer.

Why not play on the recorded timing? A policy node's output for a frame depends on more than the
frame: `vla_node` plans from the robot state stamped nearest to the frame among those it has
received when its action thread gets to the frame (or the newest one, `state_pairing: newest`),
and its vision thread keeps only the newest frame. Played in real time (even with a fixed noise
seed and sim time), which state was newest and which frames were skipped depend on thread
scheduling, so two replays of one bag differ: with the reference model, a state 20 ms newer moves
the chunk by up to ~2 (normalised units). A regression gate that flakes is worse than none.

Lockstep removes the races, on sim time (/clock published here, `use_sim_time` in the SUT):

- inputs go out in bag order, recorded bytes unchanged, /clock set to each one's bag time first;
- a *trigger* (a camera frame) goes out only when every other input topic has had a message
  (earlier frames are skipped: the SUT could not act on them) and every input before it has
  reached this node's probe subscription, plus `settle_s` for the SUT's own subscriptions;
- then the clock stands still until the answer comes: a message on `response_topic` whose
  header.stamp is the frame's (within `stamp_tolerance_s`; any new one for a trigger without a
  header), or `response_timeout_s`; then `settle_s` again, for the SUT's consumers of it;
- with `tick_period_s`, the clock also stops at every multiple of the period (rcl timers on sim
  time fire on that grid) until the SUT's periodic output (`tick_topic`) appears, so a control
  loop ticks exactly once per period, between the same inputs, in every replay;
- `record` (a BagWriter) takes the SUT's outputs stamped with this clock *as it stood when they
  arrived* (frozen while waited for), so output timestamps are reproducible too.

A SUT that answers every frame once (vla_node with `plan_on_frame`, nothing else requesting)
then sees the same inputs in the same order at the same clock in every replay. A frame goes out
after the states recorded before it, so vla_node pairs it with the nearest of those; live, a
state received just after the frame but stamped nearer it could have been chosen. Limits: wall time
is not the recording's, so latency and timing behaviour are not exercised (use the real-time
`Player`); the settle periods are grace periods, not proofs that the SUT's callbacks ran.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock

from vla_edge.core.errors import VlaEdgeError
from vla_edge.replay.bag_reader import BagReader
from vla_edge.replay.bag_writer import BagSummary, BagWriter
from vla_edge.replay.errors import BagError
from vla_edge.replay.message_source import MessageSource
from vla_edge.replay.msg_types import import_message_class, normalize_msgtype
from vla_edge.replay.qos import publisher_qos, subscription_qos, to_bag_qos

CAMERA_TOPICS = ('/camera/image_raw', '/camera/image_raw/compressed')


@dataclass
class LockstepOptions:
    """What gates what; the defaults fit the vla_edge pipeline (see the module docstring)."""

    topics: list[str] | None = None           # bag topics to play (None: all playable)
    trigger_topics: tuple[str, ...] = CAMERA_TOPICS
    response_topic: str = '/action_chunk'
    response_timeout_s: float = 5.0
    first_response_timeout_s: float = 30.0    # model warm-up, instruction embedding
    stamp_tolerance_s: float = 1e-5           # stamps that went through float seconds
    delivery_timeout_s: float = 1.0
    settle_s: float = 0.01
    tick_topic: str = '/command_raw'          # the SUT's periodic output on sim time ...
    tick_period_s: float | None = None        # ... and its period (None: no tick gating)
    tick_timeout_s: float = 0.5
    max_unanswered_in_a_row: int = 5          # then the SUT is taken as dead: NoAnswerError
    record_topics: tuple[str, ...] = ()       # outputs written to `record` (with the above)
    discovery_timeout_s: float = 5.0


@dataclass
class LockstepStats:
    """What happened; `timed_out_stamps_s` names frames the SUT did not answer."""

    messages: int = 0
    triggers: int = 0
    answered: int = 0
    timed_out: int = 0
    skipped_before_ready: int = 0
    undelivered: int = 0
    missed_ticks: int = 0
    wall_s: float = 0.0
    timed_out_stamps_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        text = (f'lockstep replay: {self.messages} messages, {self.answered} of {self.triggers} '
                f'frames answered in {self.wall_s:.1f} s')
        if self.skipped_before_ready:
            text += (f'; {self.skipped_before_ready} frames skipped before every input topic '
                     f'had a message')
        if self.timed_out:
            text += f'; {self.timed_out} frames unanswered (e.g. at {self.timed_out_stamps_s[:3]})'
        if self.missed_ticks:
            text += f'; {self.missed_ticks} clock steps without the expected tick'
        if self.undelivered:
            text += f'; {self.undelivered} inputs not seen delivered within the timeout'
        return text


class NoAnswerError(VlaEdgeError):
    """The system under test stopped answering frames (crashed, hung, or drops every chunk)."""


def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _time(t_ns: int) -> Time:
    return Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)


class LockstepPlayer(Node):
    """Plays `bag` in lockstep with the SUT: spin this node, bring the SUT up, call `run()`.

    `record`: an opened BagWriter for the outputs (the caller closes it)."""

    def __init__(self, bag_path: str | Path, options: LockstepOptions | None = None, *,
                 record: BagWriter | None = None, node_name: str = 'vla_edge_lockstep_player',
                 **node_kwargs):
        o = self.options = options or LockstepOptions()
        bag = BagReader(bag_path, o.topics).open()     # validated before anything is created
        try:
            self.source = MessageSource(bag)
        except BaseException:
            bag.close()
            raise
        super().__init__(node_name, **node_kwargs)
        self.bag_path = Path(bag_path)
        self.record = record
        self.topics = list(bag.selected)
        self._classes = {t: import_message_class(bag.topics[t].msgtype) for t in self.topics}
        self._pubs, self._delivered = {}, dict.fromkeys(self.topics, 0)
        self._published = dict.fromkeys(self.topics, 0)
        self._unsettled = False          # inputs published since the SUT last had time to take them
        self._cond = threading.Condition()
        self._answers: deque[int] = deque(maxlen=100)     # header stamps of recent responses
        self._answer_count = self._ticks = self._tick_ns = 0
        for topic in self.topics:
            qos = publisher_qos(bag.topics[topic].offered_qos)
            self._pubs[topic] = self.create_publisher(self._classes[topic], topic, qos)
            if topic not in o.trigger_topics:
                probe_qos = QoSProfile(depth=1000, reliability=qos.reliability,
                                       durability=DurabilityPolicy.VOLATILE)
                self.create_subscription(self._classes[topic], topic, self._probe(topic),
                                         probe_qos, raw=True)
        self._clock_pub = self.create_publisher(Clock, '/clock', QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE))
        self._clock_ns: int | None = None
        self._unanswered_in_a_row = 0
        self._stop = threading.Event()
        self._external_stop: threading.Event | None = None

    # -- subscriptions ---------------------------------------------------------------------------
    def _probe(self, topic: str):
        def on_message(data):
            with self._cond:
                self._delivered[topic] += 1
                self._cond.notify_all()
        return on_message

    def subscriber_counts(self) -> dict[str, int]:
        """SUT subscriptions per input topic (the probe's own are not counted)."""
        return {t: p.get_subscription_count() - (t not in self.options.trigger_topics)
                for t, p in self._pubs.items()}

    def _graph_type(self, topic: str) -> str | None:
        end = time.monotonic() + self.options.discovery_timeout_s
        while not self._stopping():
            types = dict(self.get_topic_names_and_types()).get(topic)
            if types and self.get_publishers_info_by_topic(topic):
                return normalize_msgtype(types[0])
            if time.monotonic() > end:
                return None
            time.sleep(0.05)
        return None

    def _subscribe_outputs(self) -> None:
        """Raw subscriptions to the SUT's outputs (types and QoS from the graph: it is up)."""
        o = self.options
        wanted = dict.fromkeys([o.response_topic, *o.record_topics]
                               + ([o.tick_topic] if o.tick_period_s else []))
        matched = []
        for topic in wanted:
            msgtype = self._graph_type(topic)
            if msgtype is None:
                self.get_logger().warning(f'lockstep: nothing publishes {topic}'
                                          + ('; frames will time out'
                                             if topic == o.response_topic else ''))
                continue
            offers = self.get_publishers_info_by_topic(topic)
            if self.record is not None and topic in o.record_topics:
                self.record.add_topic(topic, msgtype, [to_bag_qos(i.qos_profile) for i in offers])
            cls = import_message_class(msgtype)
            if cls is None:
                raise BagError(f'lockstep: {topic} has type {msgtype}, which does not import')
            qos = subscription_qos([i.qos_profile for i in offers])
            sub = self.create_subscription(cls, topic, self._on_output(topic, cls), qos, raw=True)
            matched.append((sub, len(offers)))
            if topic == o.tick_topic and o.tick_period_s:
                self._tick_ns = int(round(o.tick_period_s * 1e9))
        # Matched before the first /clock, or the first tick's output could go unseen.
        self._wait(lambda: all(s.get_publisher_count() >= n for s, n in matched),
                   o.discovery_timeout_s)

    def _on_output(self, topic: str, cls):
        o = self.options
        is_response, is_tick = topic == o.response_topic, topic == o.tick_topic
        recorded = self.record is not None and topic in o.record_topics

        def on_message(data):
            header = getattr(deserialize_message(data, cls), 'header', None) \
                if is_response else None
            with self._cond:
                if recorded and self._clock_ns is not None:
                    self.record.write(topic, self._clock_ns, data)
                if is_response:
                    if header is not None:
                        self._answers.append(_stamp_ns(header.stamp))
                    self._answer_count += 1
                if is_tick:
                    self._ticks += 1
                self._cond.notify_all()
        return on_message

    def _stopping(self) -> bool:
        return self._stop.is_set() or (self._external_stop is not None
                                       and self._external_stop.is_set())

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    # -- the clock -------------------------------------------------------------------------------
    def _publish_clock(self, t_ns: int, stats: LockstepStats, wait_tick: bool) -> None:
        with self._cond:
            ticks = self._ticks
            self._clock_ns = t_ns
        self._clock_pub.publish(Clock(clock=_time(t_ns)))
        if wait_tick and not self._wait(lambda: self._ticks > ticks, self.options.tick_timeout_s):
            stats.missed_ticks += 1

    def _set_clock(self, t_ns: int, stats: LockstepStats) -> None:
        """Advance /clock to t_ns, stopping at every tick boundary on the way."""
        if self._clock_ns is None:          # the jump from 0 fires the SUT's timers once
            self._publish_clock(t_ns, stats, wait_tick=bool(self._tick_ns))
            return
        if t_ns <= self._clock_ns:
            return
        if self._tick_ns:
            first = (self._clock_ns // self._tick_ns + 1) * self._tick_ns
            if first <= t_ns:
                self._settle_inputs(stats)
            for point in range(first, t_ns + 1, self._tick_ns):
                self._publish_clock(point, stats, wait_tick=True)
        if self._clock_ns < t_ns:
            self._publish_clock(t_ns, stats, wait_tick=False)

    def _settle_inputs(self, stats: LockstepStats, always: bool = False) -> None:
        """Every input published so far has arrived (+ settle_s): before a trigger (`always`),
        and before a control tick when inputs went out since the last settle, so a tick never
        races an input sent before it (e.g. a new instruction that resets the executor's queue
        lands before the tick in every replay, not in some)."""
        if not (always or self._unsettled):
            return
        if not self._wait(lambda: all(self._delivered[t] >= self._published[t]
                                      for t in self._published), self.options.delivery_timeout_s):
            stats.undelivered += 1
        time.sleep(self.options.settle_s)
        self._unsettled = False

    # -- playback --------------------------------------------------------------------------------
    def _wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        with self._cond:
            while not condition() and not self._stopping():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))     # stop() may come from another thread
            return condition()

    def _answered(self, stamp_ns: int | None, count_before: int) -> Callable[[], bool]:
        if stamp_ns is None:
            return lambda: self._answer_count > count_before
        tol_ns = int(self.options.stamp_tolerance_s * 1e9)
        return lambda: any(abs(a - stamp_ns) <= tol_ns for a in self._answers)

    def _trigger_stamp_ns(self, topic: str, data: bytes) -> int | None:
        header = getattr(deserialize_message(data, self._classes[topic]), 'header', None)
        return None if header is None else _stamp_ns(header.stamp)

    def _play_trigger(self, topic: str, t_ns: int, data: bytes, stats: LockstepStats) -> None:
        o = self.options
        others = [t for t in self.topics if t not in o.trigger_topics]
        if not all(self._published[t] for t in others):
            stats.skipped_before_ready += 1
            return
        self._settle_inputs(stats, always=True)   # `others` are all that _published counts
        self._set_clock(t_ns, stats)
        stamp = self._trigger_stamp_ns(topic, data)
        with self._cond:
            count = self._answer_count
        self._pubs[topic].publish(data)
        stats.messages += 1
        timeout = o.first_response_timeout_s if not stats.answered else o.response_timeout_s
        if self._wait(self._answered(stamp, count), timeout):
            stats.answered += 1
            self._unanswered_in_a_row = 0
            time.sleep(o.settle_s)
        elif not self._stopping():
            stats.timed_out += 1
            stats.timed_out_stamps_s.append((stamp if stamp is not None else t_ns) / 1e9)
            self._unanswered_in_a_row += 1
            if self._unanswered_in_a_row >= o.max_unanswered_in_a_row:
                raise NoAnswerError(
                    f'nothing answered the last {self._unanswered_in_a_row} frames on '
                    f'{o.response_topic} (within {timeout:g} s each; {stats.answered} answered '
                    f'before): the system under test crashed, hangs, or drops its outputs '
                    f'(e.g. a model producing NaN); see its log above')

    def run(self, progress: Callable[[LockstepStats], None] | None = None,
            progress_every: int = 50, stop: threading.Event | None = None) -> LockstepStats:
        """Play the whole bag (or until `stop()` or the `stop` event); returns what happened."""
        stats, started = LockstepStats(), time.monotonic()
        self._external_stop = stop
        self._subscribe_outputs()
        self.source.start(0)
        for index, (t_ns, topic) in enumerate(zip(self.source.timestamps_ns,
                                                  self.source.topics)):
            if self._stopping():
                break
            data = self.source.get(index).data
            if topic in self.options.trigger_topics:
                stats.triggers += 1
                self._play_trigger(topic, t_ns, data, stats)
                if progress is not None and stats.triggers % progress_every == 0:
                    progress(stats)
                continue
            self._set_clock(t_ns, stats)
            self._pubs[topic].publish(data)
            self._published[topic] += 1
            self._unsettled = True
            stats.messages += 1
        self._wait(lambda: False, self.options.settle_s * 5)    # the last outputs come in
        stats.wall_s = time.monotonic() - started
        return stats

    def destroy_node(self) -> None:
        self.stop()
        self.source.close()
        super().destroy_node()


def record_lockstep(bag: str | Path, options: LockstepOptions, out: str | Path, context, *,
                    storage: str = 'mcap', discovery_timeout_s: float = 10.0,
                    stop: threading.Event | None = None,
                    say: Callable[[str], None] = print) -> tuple[LockstepStats, BagSummary]:
    """Play `bag` in lockstep into a running system and record `options.record_topics` into
    the bag `out`; returns (stats, the recording's BagSummary). The system under test must be
    up (on `context`, use_sim_time) before this is called; `stop` ends the replay early."""
    from vla_edge.core.polling import wait_until
    from vla_edge.nodes.isolated_executors import IsolatedExecutors

    stop = stop or threading.Event()
    writer = BagWriter(out, storage=storage).open()
    player = executors = None
    reason = ''
    try:
        player = LockstepPlayer(bag, options, record=writer, context=context)
        executors = IsolatedExecutors([player], context=context).start()
        if not wait_until(lambda: all(player.subscriber_counts().values()), discovery_timeout_s,
                          stop=stop):
            say(f'warning: inputs without subscribers: {player.subscriber_counts()}')
        say(f'replaying {", ".join(player.topics)} from {bag} in lockstep on sim time')
        stats = player.run(lambda s: say(f'  {s.triggers} frames, {s.answered} answered'),
                           stop=stop)
        say(stats.describe())
    except BaseException as exc:
        reason = f'replay failed: {exc}'
        raise
    finally:
        if executors is not None:
            executors.shutdown()
        summary = writer.close('interrupted' if stop.is_set() else reason)
        if player is not None:
            player.destroy_node()
    say(summary.describe())
    return stats, summary


def input_topics(bag_path: str | Path, wanted: Iterable[str]) -> list[str]:
    """The `wanted` topics the bag has (and can play here), in the order given."""
    with BagReader(bag_path) as bag:
        return [t for t in wanted if t in bag.selected]

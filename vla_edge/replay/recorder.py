"""Recorder node: subscribes to topics as serialized bytes and writes them to a rosbag2.

What `ros2 bag record` does, without rosbag2: topic types come from the ROS graph (or are given
as `topic:pkg/msg/Type`), subscriptions are raw (`raw=True`: the CDR bytes, never deserialized),
QoS adapts to the publishers' offers, which the bag keeps as `offered_qos_profiles`. Topics that
appear later are picked up by a discovery timer. The timestamp of each message is its receive
time in nanoseconds (the middleware's `received_timestamp`, system clock) or, with
`use_sim_time`, the node clock at the callback.

Safety: the bag is a `BagWriter` (staging folder, atomic rename). `close()` always finalizes;
`run_record` turns Ctrl-C/SIGTERM into a normal stop, and an error into a closed bag plus a
message saying what it holds and why recording stopped.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from rclpy.node import Node

from vla_edge.core.errors import VlaEdgeError
from vla_edge.replay.bag_writer import COMPRESSIONS, STORAGES, BagSummary, BagWriter
from vla_edge.replay.msg_types import import_message_class, normalize_msgtype
from vla_edge.replay.qos import subscription_qos, to_bag_qos
from vla_edge.replay.stop_signals import stop_requested

# Recorded with --all only when named: the graph's own chatter, not the system's data.
IMPLICITLY_EXCLUDED = ('/rosout', '/parameter_events')


def parse_topic_specs(specs: Iterable[str]) -> dict[str, str | None]:
    """['/a', '/b:std_msgs/msg/String'] -> {'/a': None, '/b': 'std_msgs/msg/String'}.

    ValueError for a name ROS would refuse or a type that does not import here: either would
    otherwise give an empty bag and nothing but "no messages were recorded".
    """
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.validate_topic_name import validate_topic_name

    out: dict[str, str | None] = {}
    for spec in specs:
        topic, sep, msgtype = spec.partition(':')
        topic = topic.strip()
        if not topic:
            raise ValueError(f'topic spec {spec!r} has no topic name')
        topic = topic if topic.startswith('/') else f'/{topic}'
        try:
            validate_topic_name(topic)
        except InvalidTopicNameException as exc:
            reason = str(exc).splitlines()[0].removeprefix('Invalid topic name: ').rstrip(':')
            raise ValueError(f'{topic!r} is not a valid topic name ({reason})') from None
        if sep:
            msgtype = normalize_msgtype(msgtype)
            if import_message_class(msgtype) is None:
                raise ValueError(f'{spec!r}: message type {msgtype} does not import here (a '
                                 f'typo, or install/source its interface package)')
        out[topic] = msgtype if sep else None
    return out


class Recorder(Node):
    """Records `topics` (None: every topic seen) into an opened `BagWriter` until `close()`."""

    def __init__(self, writer: BagWriter, topics: Mapping[str, str | None] | None = None, *,
                 use_sim_time_stamps: bool = False, max_messages: int = 0,
                 discovery_period_s: float = 0.1, node_name: str = 'vla_edge_recorder',
                 **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self.writer = writer
        self.requested = None if topics is None else dict(topics)
        self.use_sim_time_stamps = use_sim_time_stamps
        self.max_messages = max_messages
        self.error: BaseException | None = None
        self.done = False            # max_messages reached, or an error: the caller closes
        self._subs = {}
        self._warned: set[str] = set()
        self._count = 0
        self._closed = False
        self._discovery = self.create_timer(discovery_period_s, self.discover)
        self.discover()

    @property
    def subscribed_topics(self) -> list[str]:
        return sorted(self._subs)

    def _warn_once(self, topic: str, text: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            self.get_logger().warning(text)

    def discover(self) -> None:
        """Subscribe to wanted topics that now have publishers (QoS needs their offers)."""
        if self._closed:
            return
        graph = dict(self.get_topic_names_and_types())
        wanted = self.requested if self.requested is not None else {
            t: None for t in graph if t not in IMPLICITLY_EXCLUDED}
        for topic, given_type in wanted.items():
            if topic in self._subs or topic not in graph:
                continue
            offers = self.get_publishers_info_by_topic(topic)
            if not offers:
                continue
            types = sorted(normalize_msgtype(t) for t in graph[topic])
            msgtype = given_type or (types[0] if len(types) == 1 else None)
            if msgtype is None:
                self._warn_once(topic, f'not recording {topic}: it has several types {types}; '
                                       f'name one as {topic}:<type>')
                continue
            cls = import_message_class(msgtype)
            if cls is None:
                self._warn_once(topic, f'not recording {topic}: type {msgtype} does not import '
                                       f'here (install or source its interface package)')
                continue
            qos = subscription_qos([o.qos_profile for o in offers])
            self._subs[topic] = self.create_subscription(
                cls, topic, self._callback(topic, msgtype, offers), qos, raw=True)
            self.get_logger().info(f'recording {topic} [{msgtype}]')
        if self.requested is not None and len(self._subs) == len(self.requested):
            self._discovery.cancel()

    def _callback(self, topic: str, msgtype: str, offers):
        bag_qos = [to_bag_qos(o.qos_profile) for o in offers]

        def on_message(data: bytes, info) -> None:
            if self._closed or self.done:
                return
            if self.use_sim_time_stamps:
                stamp = self.get_clock().now().nanoseconds
            else:
                stamp = info.get('received_timestamp') or time.time_ns()
            try:
                if not self.writer.has_topic(topic):
                    self.writer.add_topic(topic, msgtype, bag_qos)
                self.writer.write(topic, stamp, data)
            except Exception as exc:
                if self._closed:        # close() raced this callback: the bag is already final
                    return
                self.error, self.done = exc, True
                self.get_logger().error(f'recording stopped: cannot write {topic}: {exc}')
                return
            self._count += 1
            if self.max_messages and self._count >= self.max_messages:
                self.done = True
        return on_message

    def close(self, stopped_early: str = '') -> BagSummary:
        """Stop receiving, finalize the bag; the summary says what it holds."""
        if not self._closed:
            self._closed = True
            self._discovery.cancel()
            for sub in self._subs.values():
                self.destroy_subscription(sub)
            if self.error is not None and not stopped_early:
                stopped_early = f'write error: {self.error}'
        return self.writer.close(stopped_early=stopped_early)

    def destroy_node(self) -> None:
        if not self._closed:
            self.close(stopped_early='recorder node destroyed')
        super().destroy_node()


def start_recording(path: str | Path, topics: Iterable[str] | None, storage: str = 'mcap',
                    compression: str = 'none', **recorder_kwargs) -> Recorder:
    """Open a bag and a Recorder on it (`topics` as for parse_topic_specs; None = all).

    `recorder_kwargs` go to `Recorder` (and on to rclpy's Node: `context=...`).
    """
    specs = None if topics is None else parse_topic_specs(topics)
    writer = BagWriter(path, storage=storage, compression=compression).open()
    try:
        return Recorder(writer, specs, **recorder_kwargs)
    except BaseException:
        writer.close(stopped_early='recorder failed to start')
        raise


# -- the `vla-edge record` verb ----------------------------------------------------------------

def add_record_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `vla-edge record`; `run_record(args)` executes them."""
    from vla_edge.arg_types import non_negative_float, non_negative_int, output_file

    p.add_argument('topics', nargs='*',
                   help='topics to record, each optionally as topic:pkg/msg/Type (the type is '
                        'otherwise taken from the ROS graph)')
    p.add_argument('-a', '--all', action='store_true',
                   help=f'record every topic that appears (except {", ".join(IMPLICITLY_EXCLUDED)}'
                        f' unless named)')
    p.add_argument('-o', '--output', type=_new_bag_path, default=None,
                   help='bag folder to create (default: rosbag2_<date>-<time>); never overwritten')
    p.add_argument('-s', '--storage', choices=STORAGES, default='mcap',
                   help='storage format (default: mcap)')
    p.add_argument('--compression', choices=COMPRESSIONS, default='none',
                   help='zstd per message or per file (default: none)')
    p.add_argument('--duration', type=non_negative_float, default=None,
                   help='stop after this many seconds (default, or 0: until Ctrl-C)')
    p.add_argument('--max-messages', type=non_negative_int, default=0,
                   help='stop after this many messages in total (default: 0 = no limit)')
    p.add_argument('--use-sim-time', action='store_true',
                   help='stamp messages with the node clock on /clock instead of receive time')
    p.add_argument('--json', type=output_file, default=None,
                   help='also write the recording summary as JSON to this file')


def _new_bag_path(text: str) -> Path:
    from vla_edge.arg_types import output_folder

    path = output_folder(text)
    if path.exists():
        raise argparse.ArgumentTypeError(f'{path} exists already; a bag is never overwritten')
    return path


def run_record(args: argparse.Namespace) -> int:
    """Record until Ctrl-C/SIGTERM, --duration or --max-messages; print what was written.

    Raises BagError (a VlaEdgeError) for an unusable output path or a failed finalize.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions

    if not args.topics and not args.all:
        raise ValueError('name the topics to record, or pass --all')
    if args.topics:
        parse_topic_specs(args.topics)      # a bad name or type: refused before any bag exists
    duration = args.duration or 0.0
    output = args.output or Path(time.strftime('rosbag2_%Y_%m_%d-%H_%M_%S'))
    # args=[]: rcl would otherwise read this tool's own argv (a `--remap OLD:=NEW` value looks
    # like a legacy node-wide remap rule to it)
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    recorder = None
    executor = SingleThreadedExecutor()
    reason = ''
    try:
        with stop_requested() as stop:
            try:
                recorder = start_recording(
                    output, args.topics if args.topics and not args.all else None,
                    args.storage, args.compression, use_sim_time_stamps=args.use_sim_time,
                    max_messages=args.max_messages,
                    parameter_overrides=[Parameter('use_sim_time', value=args.use_sim_time)])
                executor.add_node(recorder)
                until = f'for {duration:g} s' if duration > 0 else '(Ctrl-C to stop)'
                print(f'recording to {output} {until}', flush=True)
                end = time.monotonic() + duration if duration > 0 else math.inf
                while not stop.is_set() and not recorder.done and time.monotonic() < end:
                    executor.spin_once(timeout_sec=0.1)
            except KeyboardInterrupt:
                reason = 'interrupted (second Ctrl-C)'
            finally:
                if recorder is not None:
                    executor.remove_node(recorder)
                    summary = recorder.close(stopped_early=reason)
                    recorder.destroy_node()
                    print(summary.describe())
                    if args.json is not None:
                        args.json.parent.mkdir(parents=True, exist_ok=True)
                        args.json.write_text(json.dumps(summary.to_dict(), indent=2))
    finally:
        executor.shutdown()
        rclpy.try_shutdown()
    return 1 if recorder is not None and recorder.error is not None else 0


def record_main(argv: list[str] | None = None) -> int:
    """Standalone `record` (python -m vla_edge.replay.recorder ...)."""
    from vla_edge.arg_types import HelpFormatter

    parser = argparse.ArgumentParser(prog='vla-edge record', description=__doc__.split('\n')[0],
                                     formatter_class=HelpFormatter)
    add_record_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_record(args)
    except (VlaEdgeError, ValueError) as exc:
        print(f'vla-edge record: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(record_main())

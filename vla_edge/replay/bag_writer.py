"""A rosbag2 writer that never leaves a half-written bag under the name you asked for.

rosbags' `Writer` writes the storage file and, at `close()`, the mcap summary/index and
`metadata.yaml`. Killed in between, a folder is left that looks like a bag and is not. So this
writer fills a staging folder `.<name>.partial/<name>/` next to the target and renames it into
place only after a successful close. On an error or Ctrl-C inside `with BagWriter(...)`, the bag
is still closed properly (everything received so far is kept, and the summary says the recording
stopped early and why); only if closing itself fails is the staging folder left behind, under
its `.partial` name, with an error that says so.

The bag is version 9 (Jazzy/Kilted), `cdr` serialization, with each topic's message definition,
RIHS01 hash and offered QoS profiles, which is what `ros2 bag info/play` and Foxglove expect.

No rclpy import here (`write_bag` imports rclpy's serializer lazily, for message objects).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from vla_edge.replay.errors import BagWriteError
from vla_edge.replay.msg_types import decode_cdr, message_definition, normalize_msgtype

log = logging.getLogger('vla_edge.replay')

STORAGES = ('mcap', 'sqlite3')
COMPRESSIONS = ('none', 'message', 'file')
_PLUGINS = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
_MODES = {'message': CompressionMode.MESSAGE, 'file': CompressionMode.FILE}


@dataclass
class BagSummary:
    """What a recording wrote: read `describe()` (humans) or `to_dict()` (JSON)."""

    path: Path
    storage: str
    message_counts: dict[str, int] = field(default_factory=dict)
    start_ns: int | None = None
    end_ns: int | None = None
    stopped_early: str = ''     # why recording ended before it was asked to; '' when it did not

    @property
    def message_count(self) -> int:
        return sum(self.message_counts.values())

    @property
    def duration_s(self) -> float:
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return (self.end_ns - self.start_ns) / 1e9

    def describe(self) -> str:
        lines = [f'bag {self.path} ({self.storage}): {self.message_count} messages over '
                 f'{self.duration_s:.3f} s']
        for topic, count in sorted(self.message_counts.items()):
            lines.append(f'  {topic}: {count}')
        if not self.message_count:
            lines.append('  no messages were recorded: were the topics published, with types '
                         'that import here?')
        if self.stopped_early:
            lines.append(f'  recording stopped early: {self.stopped_early} (the bag is closed and '
                         f'valid; it holds the messages above)')
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        return {'path': str(self.path), 'storage': self.storage,
                'message_count': self.message_count, 'message_counts': dict(self.message_counts),
                'start_ns': self.start_ns, 'end_ns': self.end_ns, 'duration_s': self.duration_s,
                'stopped_early': self.stopped_early}


class BagWriter:
    """Thread-safe rosbag2 writer with staging and a summary; use as a context manager.

    Every storage operation runs on one worker thread that owns the rosbags Writer: the sqlite3
    storage refuses use from any thread but its creator, and a subscription callback should not
    wait for the disk. `write()` only queues (at most `max_pending` messages, then it waits); a
    storage error stops the bag and is raised by the next call and by `close()`.
    """

    def __init__(self, path: str | Path, storage: str = 'mcap', compression: str = 'none',
                 custom_data: Mapping[str, str] | None = None, version: int = 9,
                 max_pending: int = 1000):
        if storage not in STORAGES:
            raise BagWriteError(f'storage {storage!r} is not one of {list(STORAGES)}')
        if compression not in COMPRESSIONS:
            raise BagWriteError(f'compression {compression!r} is not one of {list(COMPRESSIONS)}')
        self.path = Path(path).absolute()
        self.storage = storage
        self.staging_root = self.path.parent / f'.{self.path.name}.partial'
        self._compression = compression
        self._version = version
        # rosbag2 parses custom_data as a map; rosbags writes null when empty, so always fill it.
        self._custom_data = {'recorded_by': 'vla_edge.replay', **dict(custom_data or {})}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending = threading.BoundedSemaphore(max_pending)
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}
        self._summary = BagSummary(self.path, storage)
        self._error: BaseException | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def _run(self, fn, *args):
        """Run fn on the worker thread and wait for it."""
        return self._pool.submit(fn, *args).result()

    def open(self) -> BagWriter:
        if self.path.exists():
            raise BagWriteError(f'{self.path} exists already; choose another output path '
                                f'(a bag is never overwritten)')
        if self.staging_root.exists():
            raise BagWriteError(f'{self.staging_root} is left from a recording that did not '
                                f'finish; inspect or delete it, then record again')
        self.staging_root.mkdir(parents=True)
        writer = Writer(self.staging_root / self.path.name, version=self._version,
                        storage_plugin=_PLUGINS[self.storage])
        if self._compression != 'none':
            writer.set_compression(_MODES[self._compression], CompressionFormat.ZSTD)
        for key, value in self._custom_data.items():
            writer.set_custom_data(key, str(value))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix='bag-writer')
        try:
            self._run(writer.open)
        except Exception as exc:
            self._pool.shutdown()
            shutil.rmtree(self.staging_root, ignore_errors=True)
            raise BagWriteError(f'cannot create bag {self.path}: {exc}') from exc
        self._writer = writer
        return self

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._writer is None or self._closed:
            return False
        if exc_type is None:
            self.close()
        else:
            reason = 'interrupted (Ctrl-C)' if exc_type is KeyboardInterrupt else repr(exc)
            summary = self.close(stopped_early=reason)
            log.warning('%s', summary.describe())
        return False

    def close(self, stopped_early: str = '') -> BagSummary:
        """Finalize (index, metadata.yaml), move into place and return what was written.

        A storage error during recording does not prevent finalizing what was written before
        it; the summary's `stopped_early` then names the error.
        """
        with self._lock:
            if self._closed:
                return self._summary
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is None:
                raise BagWriteError(f'bag {self.path} was never opened')
            if self._error is not None and not stopped_early:
                stopped_early = f'write error: {self._error!r}'
            self._summary.stopped_early = stopped_early
            try:
                self._run(writer.close)     # queued writes run first: the worker is FIFO
            except BaseException as exc:
                with contextlib.suppress(Exception):   # the original error is the one to report
                    self._run(writer.abort)
                raise BagWriteError(
                    f'could not finalize bag {self.path}: {exc!r}. What was received is left, '
                    f'without index or metadata, in {self.staging_root}; it is NOT a valid bag '
                    f'(an mcap file may be salvageable with `mcap recover`)') from exc
            finally:
                self._pool.shutdown()
            try:
                os.replace(self.staging_root / self.path.name, self.path)
                self.staging_root.rmdir()
            except OSError as exc:
                raise BagWriteError(f'bag was finalized in {self.staging_root / self.path.name} '
                                    f'but could not be moved to {self.path}: {exc}') from exc
            return self._summary

    # -- content -------------------------------------------------------------------------------

    def _check_writable(self) -> Writer:
        if self._error is not None:
            raise BagWriteError(f'bag {self.path} stopped taking messages: {self._error!r}')
        if self._writer is None:
            raise BagWriteError(f'bag {self.path} is not open')
        return self._writer

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def add_topic(self, topic: str, msgtype: str, offered_qos: Sequence[Qos] = (),
                  msgdef: str | None = None, rihs01: str | None = None) -> None:
        """Register a topic. The definition comes from `msg_types` unless given explicitly."""
        msgtype = normalize_msgtype(msgtype)
        if msgdef is None or rihs01 is None:
            msgdef, rihs01 = message_definition(msgtype)
        with self._lock:
            writer = self._check_writable()
            if topic in self._connections:
                raise BagWriteError(f'topic {topic} is already in bag {self.path}')
            self._connections[topic] = self._run(functools.partial(
                writer.add_connection, topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                serialization_format='cdr', offered_qos_profiles=list(offered_qos)))
            self._summary.message_counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Queue one serialized (CDR) message received at `timestamp_ns` (ns)."""
        with self._lock:
            writer = self._check_writable()
            connection = self._connections.get(topic)
            if connection is None:
                raise BagWriteError(f'topic {topic} was not added to bag {self.path}')
            self._pending.acquire()
            self._pool.submit(self._write, writer, connection, int(timestamp_ns), data)

    def _write(self, writer: Writer, connection: Connection, stamp: int, data) -> None:
        try:
            if self._error is None:
                writer.write(connection, stamp, data)
                s = self._summary
                s.message_counts[connection.topic] += 1
                s.start_ns = stamp if s.start_ns is None else min(s.start_ns, stamp)
                s.end_ns = stamp if s.end_ns is None else max(s.end_ns, stamp)
        except Exception as exc:
            self._error = exc
            log.error('bag %s: writing %s failed: %r', self.path, connection.topic, exc)
        finally:
            self._pending.release()

    def flush(self) -> None:
        """Wait until every queued message is in the storage (raises a pending write error)."""
        with self._lock:
            self._run(lambda: None)
            self._check_writable()

    @property
    def summary(self) -> BagSummary:
        """What is written so far (counts lag `write()` by the queue)."""
        return self._summary


def msgtype_of(message: object) -> str:
    """'pkg/msg/Name' of a rosidl message object (e.g. sensor_msgs.msg.Image() -> ...)."""
    cls = type(message)
    return f'{cls.__module__.split(".")[0]}/msg/{cls.__name__}'


def serialize_exact(message: object) -> bytes:
    """rclpy's serialize_message, cut to the bytes the message uses (see `decode_cdr`)."""
    from rclpy.serialization import serialize_message

    data = serialize_message(message)
    try:
        _, used = decode_cdr(data, msgtype_of(message))
    except Exception:   # a type rosbags cannot describe: keep rclpy's buffer as it is
        return data
    return data[:used]


def write_bag(path: str | Path, messages: Iterable[tuple], storage: str = 'mcap',
              qos: Mapping[str, Sequence[Qos]] | None = None) -> BagSummary:
    """Write a bag from `(topic, message, timestamp_ns)` or `(topic, cdr_bytes, timestamp_ns,
    msgtype)` tuples; message objects are serialized with rclpy. Topics appear as first seen.
    """
    with BagWriter(path, storage=storage) as bag:
        for item in messages:
            topic, payload, stamp_ns = item[:3]
            if isinstance(payload, (bytes, bytearray, memoryview)):
                if len(item) < 4:
                    raise BagWriteError(f'raw bytes on {topic} need a msgtype (4th element)')
                msgtype, data = item[3], bytes(payload)
            else:
                msgtype, data = msgtype_of(payload), serialize_exact(payload)
            if not bag.has_topic(topic):
                bag.add_topic(topic, msgtype, (qos or {}).get(topic, ()))
            bag.write(topic, stamp_ns, data)
    return bag.summary

"""Read a rosbag2 (mcap or sqlite3) as (topic, msgtype, timestamp_ns, raw CDR bytes).

Robust by contract, because a replay test that silently plays half a bag proves nothing:

- a missing, truncated or corrupt bag raises `BagReadError` naming the bag and the problem; the
  player runs `scan()` (a full read) before it publishes anything, so a bad bag publishes nothing;
- a full read also checks every topic's message count against the bag's own index/metadata, so a
  storage file cut short is reported even when what is left still parses;
- topics whose type does not import here (a package this machine lacks) are skipped with one
  warning per topic; requested topics the bag lacks produce a warning listing what it has.

`path` may be a bag folder (with metadata.yaml) or a bare `.mcap` / `.db3` file.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rosbags.interfaces import ConnectionExtRosbag2, Qos
from rosbags.rosbag2 import Reader

from vla_edge.replay.errors import BagError, BagReadError
from vla_edge.replay.msg_types import import_message_class

log = logging.getLogger('vla_edge.replay')


class BagMessage(NamedTuple):
    """One recorded message: receive time and the serialized bytes, exactly as stored."""

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes


@dataclass(frozen=True)
class TopicInfo:
    """A topic of the bag; `playable` is False when its type does not import here."""

    name: str
    msgtype: str
    message_count: int
    offered_qos: tuple[Qos, ...]
    playable: bool


class BagReader:
    """Open with `with BagReader(path, topics=[...]) as bag:`; iterate `bag.messages()`."""

    def __init__(self, path: str | Path, topics: Iterable[str] | None = None,
                 skip_unknown: bool = True, require_importable: bool = True):
        """`topics`: names as in the bag (a missing leading '/' is added); None = all.

        `require_importable=False` keeps topics whose rosidl class is absent here (for readers
        that decode with rosbags' typestore instead, e.g. `compare`).
        """
        self.path = Path(path)
        self.requested = None if topics is None else list(dict.fromkeys(
            t if t.startswith('/') else f'/{t}' for t in topics))
        self.skip_unknown = skip_unknown
        self.require_importable = require_importable
        self._reader: Reader | None = None
        self.topics: dict[str, TopicInfo] = {}
        self.selected: list[str] = []

    # -- open/close ----------------------------------------------------------------------------

    def open(self) -> BagReader:
        partial = self.path.parent / f'.{self.path.name}.partial'
        if not self.path.exists():
            hint = (f'; a recording to it did not finish: {partial} holds what was received, '
                    f'without index or metadata (not a valid bag)' if partial.exists() else '')
            raise BagReadError(f'no bag at {self.path}{hint}')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            raise BagReadError(f'{self.path} is not a rosbag2 folder: no metadata.yaml (a bag '
                               f'recorded by rosbag2 and killed can be fixed with '
                               f'`ros2 bag reindex`)')
        try:
            reader = Reader(self.path)
            reader.open()
        except Exception as exc:
            raise BagReadError(f'cannot open bag {self.path}: {exc} (truncated or corrupt?)') \
                from exc
        self._reader = reader
        try:
            self._describe_topics()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader.is_open:
            reader.close()

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def _describe_topics(self) -> None:
        grouped: dict[str, list] = {}
        for conn in self._open_reader.connections:
            grouped.setdefault(conn.topic, []).append(conn)
        for topic, conns in grouped.items():
            types = {c.msgtype for c in conns}
            qos = tuple(q for c in conns if isinstance(c.ext, ConnectionExtRosbag2)
                        for q in c.ext.offered_qos_profiles)
            msgtype = conns[0].msgtype if len(types) == 1 else ' | '.join(sorted(types))
            playable = len(types) == 1 and (not self.require_importable
                                            or import_message_class(msgtype) is not None)
            self.topics[topic] = TopicInfo(topic, msgtype, sum(c.msgcount for c in conns), qos,
                                           playable)
        wanted = list(self.topics) if self.requested is None else self.requested
        missing = [t for t in wanted if t not in self.topics]
        if missing:
            have = ', '.join(f'{t} [{i.msgtype}]' for t, i in sorted(self.topics.items()))
            log.warning('bag %s has no topic %s; it has: %s', self.path, ', '.join(missing),
                        have or 'no topics')
        self.selected = []
        for topic in wanted:
            info = self.topics.get(topic)
            if info is None:
                continue
            if not info.playable:
                if not self.skip_unknown:
                    raise BagReadError(f'topic {topic} of bag {self.path} has type '
                                       f'{info.msgtype}, which does not import here')
                log.warning('skipping topic %s of bag %s: message type %s does not import here '
                            '(install its interface package, or source its workspace)',
                            topic, self.path, info.msgtype)
                continue
            self.selected.append(topic)

    @property
    def _open_reader(self) -> Reader:
        if self._reader is None:
            raise BagReadError(f'bag {self.path} is not open')
        return self._reader

    # -- facts ---------------------------------------------------------------------------------

    @property
    def start_ns(self) -> int:
        return self._open_reader.start_time

    @property
    def end_ns(self) -> int:
        """Timestamp of the last message (inclusive; rosbags reports one past it)."""
        reader = self._open_reader
        return reader.end_time - 1 if reader.message_count else reader.start_time

    @property
    def message_count(self) -> int:
        return self._open_reader.message_count

    @property
    def storage(self) -> str:
        suffix = {'.mcap': 'mcap', '.db3': 'sqlite3'}
        if self.path.is_file():
            return suffix.get(self.path.suffix, self.path.suffix)
        files = [p for p in self.path.iterdir() if p.suffix in suffix]
        return suffix[files[0].suffix] if files else 'unknown'

    # -- messages ------------------------------------------------------------------------------

    def messages(self, start_ns: int | None = None,
                 stop_ns: int | None = None) -> Iterator[BagMessage]:
        """Selected topics' messages in timestamp order; `stop_ns` is exclusive.

        A full read (no start/stop) ends with a count check against the bag's index.
        """
        reader = self._open_reader
        conns = [c for c in reader.connections if c.topic in self.selected]
        if not conns:
            return
        counts = dict.fromkeys(self.selected, 0)
        try:
            for conn, stamp, data in reader.messages(conns, start=start_ns, stop=stop_ns):
                counts[conn.topic] += 1
                yield BagMessage(conn.topic, conn.msgtype, stamp, bytes(data))
        except BagError:
            raise
        except Exception as exc:
            raise BagReadError(f'bag {self.path} is unreadable after {sum(counts.values())} '
                               f'messages: {exc} (truncated or corrupt?)') from exc
        if start_ns is None and stop_ns is None:
            short = [f'{t}: {counts[t]} of {self.topics[t].message_count}' for t in self.selected
                     if counts[t] < self.topics[t].message_count]
            if short:
                raise BagReadError(f'bag {self.path} is truncated: its index promises more '
                                   f'messages than its storage holds ({"; ".join(short)})')

    def scan(self) -> list[tuple[int, str]]:
        """Read the whole selection once (validates it) -> [(timestamp_ns, topic)] in order."""
        return [(m.timestamp_ns, m.topic) for m in self.messages()]


def read_messages(path: str | Path, topics: Iterable[str] | None = None) -> list[BagMessage]:
    """All (playable, selected) messages of a bag, in memory; for tests and small bags."""
    with BagReader(path, topics) as bag:
        return list(bag.messages())

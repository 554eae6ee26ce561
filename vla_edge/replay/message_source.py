"""The player's supply of recorded messages: validated up front, then served in timeline order.

The first pass reads the whole selection (so a truncated or corrupt bag fails before anything is
published) and builds the timeline the schedule needs. A bag up to `preload_max_bytes` keeps its
data from that pass in memory; a larger one is streamed again by a prefetch thread into a
bounded queue, so neither memory nor disk reads stall the publishing thread.
"""
from __future__ import annotations

import queue
import threading

from vla_edge.replay.bag_reader import BagMessage, BagReader
from vla_edge.replay.errors import BagReadError

PRELOAD_MAX_BYTES = 256 * 1024 * 1024
PREFETCH_MESSAGES = 256


class MessageSource:
    """`get(index)` returns timeline message `index`; calls must follow the timeline's order."""

    def __init__(self, bag: BagReader, loop: bool = False,
                 preload_max_bytes: int = PRELOAD_MAX_BYTES, prefetch: int = PREFETCH_MESSAGES):
        self.bag = bag
        self.loop = loop
        self.timestamps_ns: list[int] = []
        self.topics: list[str] = []
        kept: list[BagMessage] | None = []
        size = 0
        for msg in bag.messages():      # full read: raises BagReadError on a bad bag
            self.timestamps_ns.append(msg.timestamp_ns)
            self.topics.append(msg.topic)
            if kept is not None:
                size += len(msg.data)
                kept = kept if size <= preload_max_bytes else None
                if kept is not None:
                    kept.append(msg)
        self._preloaded = kept
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_ns = 0

    @property
    def streaming(self) -> bool:
        return self._preloaded is None

    def start(self, first_index: int) -> None:
        """Begin serving from `first_index` (the schedule's first message after the offset)."""
        if not self.streaming or first_index >= len(self.timestamps_ns):
            return
        self._start_ns = self.timestamps_ns[first_index]
        self._thread = threading.Thread(target=self._prefetch, name='bag-prefetch', daemon=True)
        self._thread.start()

    def _prefetch(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self.bag.messages(start_ns=self._start_ns):
                    if not self._put(msg):
                        return
                if not self.loop:
                    return
        except Exception as exc:    # handed to the publishing thread, which reports it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, index: int) -> BagMessage:
        if self._preloaded is not None:
            return self._preloaded[index]
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stop.is_set() or self._thread is None or not self._thread.is_alive():
                    raise BagReadError(f'bag {self.bag.path}: the reader stopped before message '
                                       f'{index}') from None
        if isinstance(item, Exception):
            raise item
        if item.timestamp_ns != self.timestamps_ns[index] or item.topic != self.topics[index]:
            raise BagReadError(f'bag {self.bag.path} changed during playback (message {index} '
                               f'is not the one scanned)')
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.bag.close()

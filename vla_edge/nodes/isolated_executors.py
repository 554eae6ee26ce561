"""Composition with one SingleThreadedExecutor per node, each spinning in its own thread.

This is what rclcpp's `component_container_isolated` does, and it is how this package composes
nodes in one process. rclpy's MultiThreadedExecutor (the Kilted wheels installed here) re-yields a
callback that was handed to its thread pool but has not started yet, so under load its spin thread
loops at 100% CPU holding the GIL while the pool starves (upstream rclpy issue #1452, fixed by
rclpy PR #1547). Measured with the full sim pipeline on this 2-core machine: the spin thread used
9.6 s of CPU in 10 s, the 30 Hz camera ran at 2.8 Hz, the 50 Hz control timer at 5.7 Hz. Our
nodes keep their callbacks short (heavy work runs in the vla_node's own threads), so one
single-threaded executor per node loses nothing, and a slow callback in one node can never delay
another node's timer.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable

from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    ShutdownException,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.utilities import get_default_context

EXECUTOR_KINDS = ('events', 'single')


def default_executor_kind() -> str:
    """The pipeline's executor: $VLA_EDGE_EXECUTOR ('events' or 'single'), else 'single'.

    'events' (rclpy's experimental EventsExecutor, Jazzy+) is opt-in. It cuts ~0.5 ms of
    dispatch from each camera frame's path (docs/measurements.md, "ROS 2 pipeline benchmarks"),
    but with Kilted's wheels it fails on subscriptions whose callback takes the message info
    ("SystemError: null argument to internal routine" in spin_once; raw ones alone work, as the
    pipeline's chunk and request subscriptions are; the recorder and the replay tests' collector
    take the info, so tools that record stay on 'single'), and the fault-injection test missed
    the hang fault once in 11 runs on it (0 in 9 on 'single'). The whole test suite otherwise
    passes with VLA_EDGE_EXECUTOR=events."""
    kind = os.environ.get('VLA_EDGE_EXECUTOR', '').strip().lower() or 'single'
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f'VLA_EDGE_EXECUTOR must be one of {EXECUTOR_KINDS}, got {kind!r}')
    if kind == 'events':
        try:
            from rclpy.experimental import EventsExecutor  # noqa: F401
        except ImportError as exc:
            raise ValueError('VLA_EDGE_EXECUTOR=events needs rclpy.experimental.EventsExecutor '
                             '(ROS 2 Jazzy or newer)') from exc
    return kind


@contextlib.contextmanager
def _stderr_with_fileno():
    """rclpy's EventsExecutor calls `faulthandler.enable()`, which needs `sys.stderr.fileno()`:
    where stderr is captured (pytest, a GUI, a log wrapper) the process's real stderr stands in."""
    try:
        sys.stderr.fileno()
        usable = True
    except (AttributeError, OSError, ValueError):
        usable = False
    with contextlib.ExitStack() as stack:
        if not usable:   # the real stderr; devnull in a process without one (a daemon)
            real = sys.__stderr__ or stack.enter_context(open(os.devnull, 'w'))
            stack.enter_context(contextlib.redirect_stderr(real))   # process-wide, briefly
        yield


def make_executor(kind: str, context=None) -> Executor:
    """One executor of `kind`: 'single' is the SingleThreadedExecutor; 'events' is rclpy's
    EventsExecutor (dispatch in C++; see `default_executor_kind` for what it gains and breaks)."""
    if kind == 'events':
        from rclpy.experimental import EventsExecutor
        with _stderr_with_fileno():
            return EventsExecutor(context=context)
    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    raise ValueError(f'executor kind must be one of {EXECUTOR_KINDS}, got {kind!r}')


class IsolatedExecutors:
    """Spin each node on its own executor and thread; `shutdown()` stops them all."""

    def __init__(self, nodes: Iterable[Node], context=None, kind: str = 'single'):
        self.nodes = list(nodes)
        self.context = context or get_default_context()
        self.kind = kind
        self.executors = [make_executor(self.kind, context) for _ in self.nodes]
        for executor, node in zip(self.executors, self.nodes):
            executor.add_node(node)
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._stopping = False

    def start(self) -> IsolatedExecutors:
        for executor, node in zip(self.executors, self.nodes):
            t = threading.Thread(target=self._spin, args=(executor,), daemon=True,
                                 name=f'spin:{node.get_name()}')
            t.start()
            self.threads.append(t)
        return self

    def _spin(self, executor: Executor) -> None:
        """Spin in short waits, so that the thread always ends soon after shutdown or Ctrl-C.

        A thread blocked in an endless wait when the process exits takes FastDDS down with
        "terminate called without an active exception" (seen at Ctrl-C under load)."""
        try:
            while not self._stopping and self.context.ok():
                executor.spin_once(timeout_sec=0.1)
        except (ExternalShutdownException, ShutdownException):
            pass
        except Exception as exc:   # rclpy raises from a wait set whose context just shut down
            if not self._stopping and self.context.ok():
                self.errors.append(exc)
                raise

    def alive(self) -> bool:
        return bool(self.threads) and all(t.is_alive() for t in self.threads)

    def wait(self, poll_s: float = 0.2) -> None:
        """Block until one spin thread ends (Ctrl-C, rclpy shutdown, or an error)."""
        while self.alive():
            self.threads[0].join(timeout=poll_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop spinning first, then the caller may destroy the nodes."""
        self._stopping = True
        for t in self.threads:
            t.join(timeout=timeout_s)
        for executor, node in zip(self.executors, self.nodes):
            try:
                executor.shutdown(timeout_sec=timeout_s)
                executor.remove_node(node)
            except Exception:   # the context may be gone already (Ctrl-C): nothing to undo
                if self.context.ok():
                    raise

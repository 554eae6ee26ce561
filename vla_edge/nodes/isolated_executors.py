"""Composition with one executor per node, each spinning in its own thread (the kind per node:
`executor_kind_for`).

This is what rclcpp's `component_container_isolated` does, and it is how this package composes
nodes in one process. rclpy's MultiThreadedExecutor (the Kilted wheels installed here) re-yields a
callback that was handed to its thread pool but has not started yet, so under load its spin thread
loops at 100% CPU holding the GIL while the pool starves (upstream rclpy issue #1452, fixed by
rclpy PR #1547). Measured with the full sim pipeline on this 2-core machine: the spin thread used
9.6 s of CPU in 10 s, the 30 Hz camera ran at 2.8 Hz, the 50 Hz control timer at 5.7 Hz. Our
nodes keep their callbacks short (heavy work runs in the vla_node's own threads), so one
executor per node loses nothing, and a slow callback in one node can never delay another node's
timer.
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


def forced_executor_kind() -> str | None:
    """$VLA_EDGE_EXECUTOR ('events' or 'single'): one kind for every node; None when unset.

    For comparisons and as a way out: 'single' puts vla_node back on the SingleThreadedExecutor,
    'events' puts every node on the EventsExecutor, which costs the chunk executor its control
    jitter (`executor_kind_for`) and fails on subscriptions whose callback takes the message info
    (Kilted's wheels: "SystemError: null argument to internal routine" in spin_once; the recorder
    and the replay tests' collector take it, so they always use 'single')."""
    kind = os.environ.get('VLA_EDGE_EXECUTOR', '').strip().lower()
    if not kind:
        return None
    if kind not in EXECUTOR_KINDS:
        raise ValueError(f'VLA_EDGE_EXECUTOR must be one of {EXECUTOR_KINDS}, got {kind!r}')
    if kind == 'events' and not events_executor_available():
        raise ValueError('VLA_EDGE_EXECUTOR=events needs rclpy.experimental.EventsExecutor '
                         '(ROS 2 Jazzy or newer)')
    return kind


def events_executor_available() -> bool:
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


def executor_kind_for(node: Node) -> str:
    """The executor a node spins on: $VLA_EDGE_EXECUTOR when set, else the node's own
    `preferred_executor` ('single' for a node without one), 'single' where rclpy has no
    EventsExecutor (Humble).

    Why per node (docs/measurements.md, "ROS 2 pipeline benchmarks"): vla_node prefers 'events',
    whose dispatch runs in C++ and so takes ~0.3 ms less of each camera frame's path and of the
    GIL its vision and action threads need (pipeline overhead 1.13 -> 1.10). A node that keeps
    time with a timer stays on 'single': the EventsExecutor fires timers from a thread of its own
    at normal priority, so the chunk executor's SCHED_FIFO spin thread waits on it (control
    jitter p99 2.1 and 3.1 ms at 100 Hz against 0.20 and 0.12 ms on 'single')."""
    forced = forced_executor_kind()
    if forced is not None:
        return forced
    preferred = getattr(node, 'preferred_executor', 'single')
    if preferred not in EXECUTOR_KINDS:
        raise ValueError(f'{type(node).__name__}.preferred_executor must be one of '
                         f'{EXECUTOR_KINDS}, got {preferred!r}')
    if preferred == 'events' and not events_executor_available():
        return 'single'
    return preferred


def say_executor(node: Node, kind: str) -> None:
    """Log, for a node that prefers an executor, which one it spins on (the preference falls
    back on rclpy without an EventsExecutor, or is overridden by $VLA_EDGE_EXECUTOR)."""
    preferred = getattr(node, 'preferred_executor', None)
    if preferred is not None:
        node.get_logger().info(f'spinning on the {kind} executor (prefers {preferred})')


def shared_executor_kind(nodes: Iterable[Node]) -> str:
    """One executor for several nodes (a node executable's process): the kind they all prefer,
    'single' when they differ."""
    kinds = {executor_kind_for(node) for node in nodes}
    return kinds.pop() if len(kinds) == 1 else 'single'


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
    EventsExecutor (dispatch in C++; see `executor_kind_for` and `forced_executor_kind` for what it
    gains and breaks)."""
    if kind == 'events':
        from rclpy.experimental import EventsExecutor
        with _stderr_with_fileno():
            return EventsExecutor(context=context)
    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    raise ValueError(f'executor kind must be one of {EXECUTOR_KINDS}, got {kind!r}')


class IsolatedExecutors:
    """Spin each node on its own executor and thread; `shutdown()` stops them all."""

    def __init__(self, nodes: Iterable[Node], context=None, kind: str | None = 'single'):
        """`kind` None: each node on the executor `executor_kind_for` gives it (the pipeline);
        else every node on that kind (tools, whose recorders must stay on 'single')."""
        self.nodes = list(nodes)
        self.context = context or get_default_context()
        self.kinds = [kind or executor_kind_for(node) for node in self.nodes]
        self.executors = [make_executor(k, context) for k in self.kinds]
        for node, k in zip(self.nodes, self.kinds):
            say_executor(node, k)
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

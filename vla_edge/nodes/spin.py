"""The one `main()` body every node executable shares (Humble/Jazzy/Kilted-safe shutdown)."""
from __future__ import annotations

import faulthandler
import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import NameValidationException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from vla_edge.core.errors import VlaEdgeError, one_line
from vla_edge.nodes.isolated_executors import make_executor, say_executor, shared_executor_kind
from vla_edge.nodes.python_logging import forward_python_logging

STOP_REPORT_S = 3.0   # under the 5 s after which bringup kills a node (ros2 launch: SIGTERM)


def spin_nodes(make_nodes: Callable[[], list[Node]], args=None) -> None:
    """rclpy.init, spin the nodes in the main thread until Ctrl-C, clean up.

    One executor of the kind the nodes prefer (`isolated_executors.executor_kind_for`: the
    EventsExecutor for vla_node, the SingleThreadedExecutor for the others); never rclpy's
    MultiThreadedExecutor, which starves under load (see isolated_executors).
    """
    try:
        # parses --ros-args: a params file that does not parse fails here. Without rclpy's
        # signal handlers: theirs shut the context down on Ctrl-C before the nodes are
        # destroyed, and a node destroyed on a dead context cannot send the robot its last,
        # safe command (node_lifecycle.send_last_command). StopSignals handles them instead.
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as exc:
        _fatal(exc)
        raise SystemExit(1) from None
    forward_python_logging()   # the runtime's notes, in the ROS log format
    nodes: list[Node] = []
    failed = False
    stop = StopSignals(on_stop=report_if_stop_hangs)
    try:
        try:
            nodes = make_nodes()
        except (VlaEdgeError, ValueError, NameValidationException) as exc:
            # A bad parameter, topic name or model folder: say what is wrong in one line (a
            # traceback buries it) and exit non-zero. Errors while spinning keep theirs.
            _fatal(exc)
            failed = True
            return
        kind = shared_executor_kind(nodes)
        executor = make_executor(kind)
        for node in nodes:
            say_executor(node, kind)
        for node in nodes:
            executor.add_node(node)
        while rclpy.ok() and not stop.requested:   # back here at least every 0.1 s
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    except Exception:
        # A context shut down from elsewhere while spin_once builds its wait set: an error
        # after shutdown is part of shutting down, any other is a real failure.
        if rclpy.ok():
            raise
    finally:
        stop.defer()   # kept until the process exits: nothing follows this in a node executable
        if not stop.requested:   # a signal armed it already, when the stop began
            report_if_stop_hangs()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        if failed:
            raise SystemExit(1)


def report_if_stop_hangs(after_s: float = STOP_REPORT_S) -> None:
    """If this process is still alive `after_s` after its stop began, print the stack of every
    Python thread to stderr (faulthandler's "Timeout (0:00:03)!" and the stacks; a slow stop,
    not an error, unless the process is then killed). bringup kills a node 5 s after its SIGINT
    (ros2 launch: SIGTERM at 5 s, SIGKILL at 10 s), and a killed process says nothing; this
    names the Python call it is stuck in (a destroy in rclpy, a thread join), not the native lock
    cycle below it. Not cancelled: a hang at interpreter exit, after the caller, counts too.
    Never raises: a stderr without a file descriptor (captured, or none) means no report."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            faulthandler.dump_traceback_later(after_s, exit=False, file=stream)
            return
        except (AttributeError, OSError, RuntimeError, ValueError):
            continue   # io.UnsupportedOperation is an OSError and a ValueError


def _fatal(exc: BaseException) -> None:
    rclpy.logging.get_logger('vla_edge').fatal(f'{type(exc).__name__}: {one_line(exc)}')


class StopSignals:
    """How a vla_edge process stops on SIGINT (Ctrl-C, ros2 launch) and SIGTERM (launch's second
    request, systemd, docker stop): the first one sets `requested`, which the main loop polls,
    with the ROS context still up; any further one is noted. Nothing is raised from the handler:
    a KeyboardInterrupt landing inside rclpy's executor (in a pybind11 conversion) surfaced as a
    RuntimeError and exit status 1, and one landing in the stop itself left spin threads running
    and aborted the process before the robot got its last command. SIGKILL still ends it.

    Installed for both signals explicitly: a process started with SIGINT ignored (a background
    job of a shell script) would otherwise not stop on it at all.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_stop: Callable[[], None] | None = None,
                 signals: tuple[signal.Signals, ...] = SIGNALS) -> None:
        """`on_stop` runs in the handler of the first signal (keep it short and signal-safe).
        `signals`: the ones that stop (bringup --processes adds SIGHUP)."""
        self.requested = False
        self._on_stop = on_stop
        self.signals = signals
        self._previous = {sig: signal.signal(sig, self._first) for sig in self.signals}
        self._noted = False

    def _first(self, signum, frame) -> None:
        self.requested = True
        self.defer()
        if self._on_stop is not None:
            self._on_stop()

    def _later(self, signum, frame) -> None:
        if not self._noted:
            self._noted = True
            print('vla_edge: stopping, sending the robot its last command (SIGKILL aborts)',
                  file=sys.stderr, flush=True)

    def defer(self) -> None:
        """From now on a signal is noted, not raised (call before stopping the nodes)."""
        for sig in self.signals:
            signal.signal(sig, self._later)

    def restore(self) -> None:
        """The handlers from before (for callers that go on after the stop, e.g. tests)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

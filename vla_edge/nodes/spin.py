"""The one `main()` body every node executable shares (Humble/Jazzy/Kilted-safe shutdown)."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import NameValidationException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from vla_edge.core.errors import VlaEdgeError, one_line


def spin_nodes(make_nodes: Callable[[], list[Node]], args=None) -> None:
    """rclpy.init, spin the nodes in the main thread until Ctrl-C, clean up.

    A SingleThreadedExecutor: our callbacks are short (heavy work runs in the nodes' own
    threads), and rclpy's MultiThreadedExecutor starves under load (see isolated_executors).
    """
    try:
        rclpy.init(args=args)   # parses --ros-args: a params file that does not parse fails here
    except RCLError as exc:
        _fatal(exc)
        raise SystemExit(1) from None
    nodes: list[Node] = []
    failed = False
    try:
        try:
            nodes = make_nodes()
        except (VlaEdgeError, ValueError, NameValidationException) as exc:
            # A bad parameter, topic name or model folder: say what is wrong in one line (a
            # traceback buries it) and exit non-zero. Errors while spinning keep theirs.
            _fatal(exc)
            failed = True
            return
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # On SIGINT rclpy may invalidate the context while spin() is building a wait set; an
        # error after shutdown is part of shutting down, any other is a real failure.
        if rclpy.ok():
            raise
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        if failed:
            raise SystemExit(1)


def _fatal(exc: BaseException) -> None:
    rclpy.logging.get_logger('vla_edge').fatal(f'{type(exc).__name__}: {one_line(exc)}')

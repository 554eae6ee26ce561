"""The one `main()` body every node executable shares (Humble/Jazzy/Kilted-safe shutdown)."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def spin_nodes(make_nodes: Callable[[], list[Node]], args=None) -> None:
    """rclpy.init, spin the nodes in the main thread until Ctrl-C, clean up.

    A SingleThreadedExecutor: our callbacks are short (heavy work runs in the nodes' own
    threads), and rclpy's MultiThreadedExecutor starves under load (see isolated_executors).
    """
    rclpy.init(args=args)
    nodes: list[Node] = []
    try:
        nodes = make_nodes()
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

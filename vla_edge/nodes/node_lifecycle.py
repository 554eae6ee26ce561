"""What every vla_edge node does at the edges of its life, so that it composes into a larger stack.

- A constructor that refuses its parameters has already registered the node with rcl (rclpy's
  `Node.__init__` ran first). Left alone, the half-built node stays in the ROS graph until the
  cyclic garbage collector finds it, and its later collection unregisters the /rosout publisher
  of a node retried under the same name. `destroyed_if_refused` destroys it before re-raising.
- /diagnostics is one absolute topic for the whole robot: a status names its node with the
  namespace, or two composed pipelines (robot1/, robot2/) report under one name.
- A node that commands the robot leaves it on the safe command when it stops, with its velocity
  dimensions zero whatever the hold mode: a ros2_control forward command controller keeps the
  last command it got, so a velocity sent just before the node went away would keep the robot
  moving.
"""
from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable

from rclpy.node import Node

FINAL_REPEATS = 3   # the last command is sent this many times, one control period apart


def destroyed_if_refused(init: Callable) -> Callable:
    """Decorate a Node subclass's __init__: on any exception, destroy what was built, re-raise."""
    @functools.wraps(init)
    def guarded(self: Node, *args, **kwargs) -> None:
        try:
            init(self, *args, **kwargs)
        except BaseException:
            try:
                self.destroy_node()
            except Exception:   # Node.__init__ itself failed: nothing was registered
                pass
            raise
    return guarded


def diagnostic_name(node: Node) -> str:
    """The node's full name without the leading slash ('robot1/chunk_executor'; at the root,
    just 'chunk_executor'), for DiagnosticStatus.name and hardware_id."""
    return node.get_fully_qualified_name().lstrip('/')


def send_last_command(node: Node, send: Callable[[], None], period_s: float) -> None:
    """At destruction: `send()` the robot's last command FINAL_REPEATS times, one control period
    apart. Nothing will re-send it, and between processes DDS confirms delivery only with its
    next heartbeat (seconds later), so repeating is what makes one lost sample harmless. Where the
    context is already down nothing can be sent; the robot's own command timeout is then the last
    line, and the log says so."""
    if not node.context.ok():
        return
    try:
        for i in range(FINAL_REPEATS):
            if i:
                time.sleep(period_s)
            send()
    except Exception as exc:   # torn down under us while shutting down
        with contextlib.suppress(Exception):
            node.get_logger().warning(f'could not send the robot its last command ({exc}); its '
                                      'own command timeout must stop it')

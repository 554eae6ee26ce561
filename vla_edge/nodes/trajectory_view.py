"""What the nodes read from a JointTrajectory (a chunk or a chunk request), whichever way it came:
as the serialized bytes of a raw subscription, or as a message object (composed code, tests).

Why: the executor's control loop and the chunk's other readers only need the stamp, the frame_id,
the joint names and a position array. Bytes in the layout vla_node and the executor write are
read with numpy (`trajectory_cdr.decode_uniform`, ~0.03 ms for 50 points instead of rclpy's
~0.3 ms); any other layout goes through rclpy, so every valid message is still understood, and
its problems (no points, ragged widths) read the same either way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.serialization import deserialize_message
from trajectory_msgs.msg import JointTrajectory

from vla_edge.nodes.messages import NO_POINTS, point_times_s, stamp_to_s, trajectory_to_chunk
from vla_edge.nodes.trajectory_cdr import decode_uniform


@dataclass(frozen=True)
class TrajectoryView:
    """The fields of one JointTrajectory the nodes use, with its points as one array."""

    stamp_s: float
    frame_id: str
    joint_names: tuple[str, ...]
    times_s: np.ndarray               # (H,) each point's time_from_start
    positions: np.ndarray | None      # (H, width); None with `problem`
    problem: str | None = None        # why the points are not one (H, width) array

    @property
    def n_points(self) -> int:
        return len(self.times_s)

    def actions(self) -> np.ndarray:
        """(H, width) positions; ValueError for an empty or ragged trajectory (as
        `messages.trajectory_to_chunk`)."""
        if self.positions is None:
            raise ValueError(self.problem)
        return self.positions


def read_trajectory(msg: JointTrajectory | bytes) -> TrajectoryView:
    """The view of a message or its serialized bytes; ValueError for bytes that are no
    JointTrajectory."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        try:
            fast = decode_uniform(msg)
        except ValueError as exc:
            raise ValueError(f'not a serialized JointTrajectory ({exc})') from exc
        if fast is not None:
            if fast.times_s.size == 0:
                return TrajectoryView(fast.stamp_s, fast.frame_id, fast.joint_names, fast.times_s,
                                      None, NO_POINTS)
            return TrajectoryView(fast.stamp_s, fast.frame_id, fast.joint_names, fast.times_s,
                                  fast.positions)
        try:
            msg = deserialize_message(bytes(msg), JointTrajectory)
        except Exception as exc:   # rclpy raises RuntimeError or others for bad bytes
            raise ValueError(f'not a serialized JointTrajectory ({exc})') from exc
    try:
        positions, problem = trajectory_to_chunk(msg), None
    except ValueError as exc:
        positions, problem = None, str(exc)
    return TrajectoryView(stamp_to_s(msg.header.stamp), msg.header.frame_id,
                          tuple(msg.joint_names), np.asarray(point_times_s(msg), dtype=float),
                          positions, problem)

"""An action chunk straight to the CDR bytes of a trajectory_msgs/JointTrajectory.

Why: building 50 rosidl JointTrajectoryPoint objects and letting rclpy convert them back to C
costs ~0.5 ms per chunk in Python (README "Pipeline overhead"), on the path from camera frame to
published chunk. `Publisher.publish` also takes serialized bytes, so vla_node writes them
directly: numpy fills the fixed-layout point array in one go.

Layout (XCDR1 little-endian, what rmw implementations put on the wire for ROS 2 messages): a
4-byte encapsulation header, then every primitive aligned to its own size relative to the end of
that header (float64 to 8). Checked byte for byte against rclpy's own serialization in the tests.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from vla_edge.nodes.messages import sec_nanosec

_ENCAPSULATION_CDR_LE = b'\x00\x01\x00\x00'


class _Writer:
    """Appends aligned little-endian primitives; offsets exclude the encapsulation header."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def align(self, n: int) -> None:
        self.buf.extend(b'\x00' * (-len(self.buf) % n))

    def u32(self, value: int) -> None:
        self.align(4)
        self.buf.extend(struct.pack('<I', value))

    def i32(self, value: int) -> None:
        self.align(4)
        self.buf.extend(struct.pack('<i', value))

    def string(self, text: str) -> None:
        data = text.encode('utf-8') + b'\x00'
        self.u32(len(data))
        self.buf.extend(data)


def _point_dtype(width: int, lead_pad: int) -> np.dtype:
    """One JointTrajectoryPoint with `width` positions, no velocities/accelerations/effort."""
    fields = [('n_positions', '<u4')]
    if lead_pad:
        fields.append(('pad', f'V{lead_pad}'))
    fields += [('positions', '<f8', (width,)), ('n_velocities', '<u4'),
               ('n_accelerations', '<u4'), ('n_effort', '<u4'), ('sec', '<i4'),
               ('nanosec', '<u4')]
    return np.dtype(fields)


def chunk_to_trajectory_cdr(actions: np.ndarray, stamp_s: float, rate_hz: float,
                            joint_names: Sequence[str], frame_id: str = '') -> bytes:
    """The serialized JointTrajectory that `messages.chunk_to_trajectory` builds (same fields:
    header.stamp = stamp_s, point k at time_from_start = k / rate_hz, positions = actions[k])."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] == 0:
        raise ValueError(f'actions must be (H, joints >= 1), got shape {actions.shape}')
    height, width = actions.shape
    if joint_names and len(joint_names) != width:   # none: the columns go by position
        raise ValueError(f'{len(joint_names)} joint names for {width} values per point')
    w = _Writer()
    sec, nanosec = sec_nanosec(stamp_s)
    w.i32(sec)
    w.u32(nanosec)
    w.string(frame_id)
    w.u32(len(joint_names))
    for name in joint_names:
        w.string(str(name))
    w.u32(height)
    if height == 0:
        return _ENCAPSULATION_CDR_LE + bytes(w.buf)
    # Every point has the same size (a multiple of 8 once its positions are 8-aligned), so only
    # the first point can need padding before its positions; the rest repeat the same layout.
    start = len(w.buf)
    first_pad = -(start + 4) % 8
    rest = np.zeros(height, dtype=_point_dtype(width, 0))
    rest['n_positions'] = width
    rest['positions'] = actions
    t = np.arange(height) / rate_hz
    whole = np.floor(t)
    rest['sec'] = whole.astype(np.int32)
    rest['nanosec'] = np.round((t - whole) * 1e9).astype(np.uint32)
    if first_pad:
        first = np.zeros(1, dtype=_point_dtype(width, first_pad))
        for name in rest.dtype.names:
            first[name] = rest[name][:1]
        body = first.tobytes() + rest[1:].tobytes()
    else:
        body = rest.tobytes()
    return _ENCAPSULATION_CDR_LE + bytes(w.buf) + body

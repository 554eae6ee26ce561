"""An action chunk straight to and from the CDR bytes of a trajectory_msgs/JointTrajectory.

Why: building 50 rosidl JointTrajectoryPoint objects and letting rclpy convert them back to C
costs ~0.5 ms per chunk in Python (docs/measurements.md, "ROS 2 pipeline benchmarks"), on the
path from camera frame to published chunk. `Publisher.publish` also takes serialized bytes, so
vla_node writes them directly: numpy fills the fixed-layout point array in one go. The other
way, rclpy turning a received chunk into 50 point objects costs ~0.3 ms, on the control loop's
thread in the executor: a raw subscription hands over the bytes, and `decode_uniform` reads the
same layout back with numpy. Anything else (velocities, ragged points, another encapsulation)
is left to rclpy (`trajectory_view.py`).

Layout (XCDR1 little-endian, what rmw implementations put on the wire for ROS 2 messages): a
4-byte encapsulation header, then every primitive aligned to its own size relative to the end of
that header (float64 to 8). Checked byte for byte against rclpy's own serialization in the tests.
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from vla_edge.nodes.messages import sec_nanosec

_ENCAPSULATION_CDR_LE = b'\x00\x01\x00\x00'
_CDR_LE = b'\x00\x01'   # the representation id; the two option bytes may count end padding


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


def point_dtype(width: int, lead_pad: int) -> np.dtype:
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
    # the first point can need padding before its positions (right after its count); the rest
    # repeat the same layout.
    points = _point_template(height, width, float(rate_hz)).copy()
    points['positions'] = actions
    body = points.tobytes()
    first_pad = -(len(w.buf) + 4) % 8
    if first_pad:
        body = body[:4] + bytes(first_pad) + body[4:]
    return _ENCAPSULATION_CDR_LE + bytes(w.buf) + body


@functools.lru_cache(maxsize=16)
def _point_template(height: int, width: int, rate_hz: float) -> np.ndarray:
    """The points of a chunk without their positions (counts, time_from_start): the same for
    every chunk of a node, so built once (this runs right after the ONNX stages, on the path
    from frame to published chunk). Read-only: callers copy it."""
    points = np.zeros(height, dtype=point_dtype(width, 0))
    points['n_positions'] = width
    t = np.arange(height) / rate_hz
    whole = np.floor(t)
    points['sec'] = whole.astype(np.int32)
    points['nanosec'] = np.round((t - whole) * 1e9).astype(np.uint32)
    points.flags.writeable = False
    return points


# A point in any layout: four sequence counts and time_from_start, even with no values at all.
MIN_POINT_BYTES = 4 * 4 + 8


class UniformTrajectory(NamedTuple):
    """The fields of a JointTrajectory whose points all carry positions only, of one width."""
    stamp_s: float
    frame_id: str
    joint_names: tuple[str, ...]
    positions: np.ndarray   # (H, width), float64; (0, 0) without points
    times_s: np.ndarray     # (H,) time_from_start of each point


class _OtherLayoutError(Exception):
    """Not this writer's layout, but maybe a valid message: rclpy decides."""


class _Reader:
    """Reads aligned little-endian primitives; raises ValueError past the end."""

    def __init__(self, body: memoryview) -> None:
        self.body = body
        self.pos = 0

    def take(self, fmt: str, size: int) -> int:
        self.pos += -self.pos % size
        if self.pos + size > len(self.body):
            raise ValueError('truncated')
        (value,) = struct.unpack_from(fmt, self.body, self.pos)
        self.pos += size
        return value

    def left(self) -> int:
        return len(self.body) - self.pos

    def string(self) -> str:
        n = self.take('<I', 4)
        if n == 0:
            raise _OtherLayoutError   # no terminator counted: not what rclpy or this module write
        if n > self.left():
            raise ValueError(f'a string of {n} bytes with {self.left()} bytes left')
        try:
            text = bytes(self.body[self.pos:self.pos + n - 1]).decode('utf-8')
        except UnicodeDecodeError:
            raise _OtherLayoutError from None
        self.pos += n
        return text


def _positions_only(points: np.ndarray, width: int) -> bool:
    return bool(np.all(points['n_positions'] == width)) and not np.any(
        points['n_velocities'] | points['n_accelerations'] | points['n_effort'])


def decode_uniform(raw: bytes) -> UniformTrajectory | None:
    """The fields of serialized JointTrajectory bytes in the layout `chunk_to_trajectory_cdr`
    writes (any width, names, stamp), or None for any other layout: the caller then asks rclpy,
    which reads every layout and says what is wrong.

    ValueError for bytes that no layout can read: a header cut short, or counts (names, points,
    positions) that need more bytes than there are. rclpy's deserializer would refuse those too,
    but after printing a line to stderr for each: on a topic flooded with such bytes, a flood of
    unthrottled lines."""
    view = memoryview(raw)
    if len(view) < 4 or bytes(view[:2]) != _CDR_LE:
        return None
    r = _Reader(view[4:])
    try:
        sec = r.take('<i', 4)
        nanosec = r.take('<I', 4)
        frame_id = r.string()
        n_names = r.take('<I', 4)
        if n_names * 5 > r.left():   # each name takes at least 5 bytes
            raise ValueError(f'{n_names} joint names declared with {r.left()} bytes left')
        names = tuple(r.string() for _ in range(n_names))
        height = r.take('<I', 4)
    except _OtherLayoutError:
        return None
    stamp_s = sec + nanosec * 1e-9
    if height == 0:
        return UniformTrajectory(stamp_s, frame_id, names, np.zeros((0, 0)), np.zeros(0))
    if height * MIN_POINT_BYTES > r.left():
        raise ValueError(f'{height} points declared with {r.left()} bytes left')
    start = r.pos
    (width,) = struct.unpack_from('<I', r.body, start)   # 4 bytes are there: checked above
    if width * 8 > r.left():
        raise ValueError(f'{width} positions declared with {r.left()} bytes left')
    if width == 0 or width * 8 * height > len(r.body):
        return None
    first_pad = -(start + 4) % 8
    first_type, rest_type = point_dtype(width, first_pad), point_dtype(width, 0)
    if start + first_type.itemsize + (height - 1) * rest_type.itemsize > len(r.body):
        return None   # (bytes after the message are ignored, as rclpy does)
    first = np.frombuffer(r.body, first_type, 1, start)
    rest = np.frombuffer(r.body, rest_type, height - 1, start + first_type.itemsize)
    # Each point's counts sit where this layout puts them up to the first point that differs,
    # and that point's counts show the difference: checking them all proves the layout.
    if not (_positions_only(first, width) and _positions_only(rest, width)):
        return None
    positions = np.concatenate([first['positions'], rest['positions']])
    times = np.concatenate([first['sec'] + first['nanosec'] * 1e-9,
                            rest['sec'] + rest['nanosec'] * 1e-9])
    return UniformTrajectory(stamp_s, frame_id, names, positions, times)

"""Conversions between ROS messages and the numpy arrays `core` works with."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_edge.nodes.twist_command import TwistLayout

# The robot-side command interfaces: a ros2_control forward command controller, a trajectory
# controller (one point, applied now), a velocity-commanded base (a twist: twist_command).
COMMAND_TYPES = {'float64_multi_array': Float64MultiArray, 'joint_trajectory': JointTrajectory,
                 'twist_stamped': TwistStamped}


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_nanosec(seconds: float) -> tuple[int, int]:
    """Rounded to the nearest nanosecond, carrying into the seconds (59.99999999999999 s is
    60 s, not 59 s + 0 ns)."""
    return divmod(int(round(seconds * 1e9)), 1_000_000_000)


def s_to_stamp(seconds: float) -> Time:
    sec, nanosec = sec_nanosec(seconds)
    return Time(sec=sec, nanosec=nanosec)


def chunk_to_trajectory(actions: np.ndarray, stamp_s: float, rate_hz: float,
                        joint_names: Sequence[str]) -> JointTrajectory:
    """Action k goes at time_from_start = k / rate; header.stamp = the observation time.

    Built on the hot path of every chunk: fields are set on the points' own default members
    (no extra Duration objects, one tolist for all rows), ~30% faster than keyword construction.
    """
    msg = JointTrajectory()
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.joint_names = list(joint_names)
    points = []
    for k, row in enumerate(np.asarray(actions, dtype=np.float64).tolist()):
        t = k / rate_hz
        point = JointTrajectoryPoint()
        point.positions = row
        offset = point.time_from_start
        offset.sec = int(t)
        offset.nanosec = int(round((t - int(t)) * 1e9))
        points.append(point)
    msg.points = points
    return msg


REQUEST_ID_PREFIX = 'vla_edge/request/'


def request_id(epoch: int, seq: int) -> str:
    """The id a chunk_request carries in header.frame_id and its action_chunk echoes back.

    `epoch` changes at every executor reset, so a chunk planned before a reset is recognised
    when it lands after it (plain JointTrajectory has no other field for a correlation id)."""
    return f'{REQUEST_ID_PREFIX}{epoch}/{seq}'


def parse_request_id(frame_id: str) -> tuple[int, int] | None:
    """(epoch, seq) of a request id, or None for any other frame_id (e.g. a foreign planner)."""
    if not frame_id.startswith(REQUEST_ID_PREFIX):
        return None
    epoch, _, seq = frame_id[len(REQUEST_ID_PREFIX):].partition('/')
    try:
        return int(epoch), int(seq)
    except ValueError:
        return None


NO_POINTS = 'trajectory has no points'


def trajectory_to_chunk(msg: JointTrajectory) -> np.ndarray:
    """(H, dims) array; raises ValueError for an empty or ragged trajectory."""
    if not msg.points:
        raise ValueError(NO_POINTS)
    widths = {len(p.positions) for p in msg.points}
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f'trajectory points have inconsistent or zero widths {sorted(widths)}')
    return np.array([list(p.positions) for p in msg.points], dtype=np.float64)


def point_times_s(msg: JointTrajectory) -> list[float]:
    """Each point's time_from_start, in seconds (when it applies, from the header stamp)."""
    return [stamp_to_s(p.time_from_start) for p in msg.points]   # a Duration: sec, nanosec


def command_message(kind: str, command: np.ndarray, stamp_s: float,
                    joint_names: Sequence[str], twist: TwistLayout | None = None):
    """One control command as the message of `kind` (a COMMAND_TYPES key). A twist carries the
    dimensions `twist` maps to its fields (default: the first two as linear x and y)."""
    if kind == 'twist_stamped':
        return (twist or TwistLayout()).message(command, s_to_stamp(stamp_s))
    values = np.asarray(command, dtype=np.float64).tolist()
    if kind == 'float64_multi_array':
        return Float64MultiArray(data=values)
    if kind == 'joint_trajectory':
        msg = JointTrajectory(joint_names=list(joint_names),
                              points=[JointTrajectoryPoint(positions=values)])
        msg.header.stamp = s_to_stamp(stamp_s)
        return msg
    raise ValueError(f'command type must be one of {list(COMMAND_TYPES)}, got {kind!r}')


def status(name: str, level: bytes, message: str, values: dict[str, object],
           hardware_id: str = '') -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])

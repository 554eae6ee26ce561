"""The policy's state vector from a sensor_msgs/JointState, without rclpy.

One definition for every place that turns joint states into the model's `state` input (the live
`vla_node`, calibration from a bag): positions of `position_joints`, then velocities of
`velocity_joints`, looked up by name so the message's joint order does not matter. A state the
model must not see (a joint missing, NaN/inf) is a ValueError naming the problem; the caller
decides whether to skip the message or stop.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from vla_edge.core.errors import shown

DEFAULT_POSITION_JOINTS = ('x', 'y', 'gripper')
DEFAULT_VELOCITY_JOINTS = ('x', 'y')


def state_vector(names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                 position_joints: Sequence[str] = DEFAULT_POSITION_JOINTS,
                 velocity_joints: Sequence[str] = DEFAULT_VELOCITY_JOINTS) -> np.ndarray:
    """float32 [position of each position_joint..., velocity of each velocity_joint...].

    `names`, `position`, `velocity` are the JointState fields (lists, arrays or rosidl arrays).
    Raises ValueError when a joint is not named, named twice, or its field is too short, or a
    value is NaN/inf.
    """
    names = list(names)
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        twice = sorted(n for n, count in Counter(names).items() if count > 1)   # linear
        raise ValueError(f'joint_states names {shown(twice)} more than once (has '
                         f'{shown(names)})')
    values = []
    for wanted, field in ((position_joints, position), (velocity_joints, velocity)):
        for n in wanted:
            if n not in index:
                raise ValueError(f'joint_states lacks {n!r} (has {shown(names)})')
            if index[n] >= len(field):
                kind = 'position' if field is position else 'velocity'
                raise ValueError(f'joint_states {kind} has {len(field)} values for '
                                 f'{len(names)} names, so none for {n!r}')
            values.append(field[index[n]])
    state = np.array(values, dtype=np.float32)
    if not np.all(np.isfinite(state)):
        raise ValueError(f'joint_states has NaN/inf: {shown(state.tolist())}')
    return state

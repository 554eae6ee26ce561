"""How a command vector becomes a geometry_msgs/TwistStamped for a velocity-commanded base.

A policy's action dimensions are its own (vx, vy, a yaw rate, a gripper...); a twist has six fixed
fields. `twist.fields` says, per command dimension, which field carries it, so a base that turns
gets its yaw rate as angular.z, and a dimension no twist can carry (a gripper) is left out rather
than sent as a velocity. `twist.frame_id` names the frame the velocities are in (REP 105: the
base's own frame, `base_link`), which a controller checks before it moves the base.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TwistStamped

from vla_edge.nodes.params import ParameterError, Spec

TWIST_FIELDS = ('linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z')

TWIST_PARAMETERS = (
    Spec('twist.fields', ['linear.x', 'linear.y', ''], 'command_type twist_stamped: per command '
         'dimension, the twist field that carries it (linear.x|y|z, angular.x|y|z), or "" for a '
         'dimension a twist cannot carry (a gripper); one entry per dimension.'),
    Spec('twist.frame_id', 'base_link', 'command_type twist_stamped: header.frame_id of the '
         'twist, the frame its velocities are in.'),
)


@dataclass(frozen=True)
class TwistLayout:
    """Which twist field each command dimension is sent as ('' = not sent)."""

    fields: tuple[str, ...] = ('linear.x', 'linear.y')
    frame_id: str = 'base_link'

    def message(self, command: Sequence[float], stamp) -> TwistStamped:
        """The twist for one command; `stamp` is a builtin_interfaces Time. Fields no dimension
        maps to are zero."""
        msg = TwistStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.frame_id
        for value, field in zip(np.asarray(command, dtype=np.float64).tolist(), self.fields):
            if field:
                part, axis = field.split('.')
                setattr(getattr(msg.twist, part), axis, value)
        return msg


def twist_layout(params: dict, dims: int) -> TwistLayout:
    """The layout the `twist.*` parameters describe for a command of `dims` dimensions; raises
    ParameterError naming the problem."""
    fields = [str(f) for f in params['twist.fields']]
    if len(fields) != dims:
        raise ParameterError(f"parameter 'twist.fields' = {fields} needs one entry per command "
                             f'dimension ({dims}; "" for one a twist does not carry)')
    unknown = [f for f in fields if f and f not in TWIST_FIELDS]
    if unknown:
        raise ParameterError(f"parameter 'twist.fields': {unknown} are not twist fields "
                             f'{list(TWIST_FIELDS)} (or "")')
    used = [f for f in fields if f]
    if not used or len(set(used)) != len(used):
        raise ParameterError(f"parameter 'twist.fields' = {fields} must send at least one "
                             'dimension, and no field twice')
    return TwistLayout(tuple(fields), str(params['twist.frame_id']))


def command_twist(params: dict, dims: int) -> TwistLayout | None:
    """The twist layout of a node whose `command_type` is twist_stamped (checked at start-up, so
    a wrong mapping never reaches the base); None for the other command types."""
    return twist_layout(params, dims) if params['command_type'] == 'twist_stamped' else None

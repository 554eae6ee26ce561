"""Declared, described, validated parameters, so `ros2 param describe` is useful on the robot.

A bad value is refused at start-up (the node does not come up half-configured) and in the
set-parameters callback, with a message naming the parameter, the value and what is allowed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

# Declared by rclpy on every node: a parameter file may set them for any node.
BUILTIN_PARAMETERS = {'use_sim_time': False, 'start_type_description_service': True}


class ParameterError(ValueError):
    """A parameter value outside what the node accepts."""


def distinct_names(names: Sequence[str]) -> bool:
    """Every name non-empty and none twice: what a list naming joints or dimensions must be."""
    return all(names) and len(set(names)) == len(names)


@dataclass(frozen=True)
class Spec:
    """One parameter: default, meaning, allowed values. Read-only unless the node re-reads it."""

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: Sequence[str] | None = None
    read_only: bool = True

    def check(self, value: Any) -> None:
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            raise ParameterError(f'parameter {self.name!r} = {value!r} must be finite')
        if self.range is not None:
            lo, hi = self.range
            if not lo <= value <= hi:
                raise ParameterError(f'parameter {self.name!r} = {value!r} is outside the allowed '
                                     f'range [{lo}, {hi}]')
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f'parameter {self.name!r} = {value!r} must be one of '
                                 f'{list(self.choices)}')

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices is not None:
            text += f' One of: {", ".join(self.choices)}.'
        d = ParameterDescriptor(description=text, read_only=self.read_only)
        if self.range is not None and isinstance(self.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(self.range[0]),
                                                         to_value=float(self.range[1]))]
        elif self.range is not None and isinstance(self.default, int) \
                and not isinstance(self.default, bool):
            d.integer_range = [IntegerRange(from_value=int(self.range[0]),
                                            to_value=int(self.range[1]), step=1)]
        return d


def _coerce_override(node: Node, spec: Spec) -> None:
    """Take an override in the form the spec means where rclpy would refuse it on type alone:
    `max_action_age_s: 0` (YAML, or `-p name:=0`) arrives as an integer, a fine float; so does
    `[1, 1, 1]` for a list of floats. An empty list cannot be typed at all (rclpy reads `[]` as
    a byte array, the command line as no value), so say that instead of rclpy's type error."""
    overrides = getattr(node, '_parameter_overrides', None)   # rclpy keeps them by name
    given = overrides.get(spec.name) if isinstance(overrides, dict) else None
    if given is None:
        return
    if isinstance(spec.default, float) and given.type_ == Parameter.Type.INTEGER:
        overrides[spec.name] = Parameter(spec.name, Parameter.Type.DOUBLE, float(given.value))
    elif isinstance(spec.default, list) and spec.default and isinstance(spec.default[0], float) \
            and given.type_ == Parameter.Type.INTEGER_ARRAY:   # [1, 1, 1] for a float list
        overrides[spec.name] = Parameter(spec.name, Parameter.Type.DOUBLE_ARRAY,
                                         [float(v) for v in given.value])
    elif isinstance(spec.default, list) and not given.value \
            and given.type_ in (Parameter.Type.NOT_SET, Parameter.Type.BYTE_ARRAY):
        raise ParameterError(f'parameter {spec.name!r}: ROS 2 parameters cannot carry an empty '
                             'list (its element type is unknown); give at least one element')


def _warn_undeclared(node: Node, declared: dict[str, Spec]) -> None:
    """A parameter given for this node that it does not declare is a typo or a stale file; rclpy
    ignores it silently. Warn (not refuse: a `/**` section may address other nodes)."""
    overrides = getattr(node, '_parameter_overrides', None)
    if not isinstance(overrides, dict):
        return
    unknown = sorted(n for n in overrides if n not in declared and n not in BUILTIN_PARAMETERS
                     and not n.startswith('qos_overrides.'))
    if unknown:
        node.get_logger().warning(f'ignoring parameters this node does not declare: '
                                  f'{", ".join(unknown)}')


def declare_all(node: Node, specs: Sequence[Spec]) -> dict[str, Any]:
    """Declare every spec, check the values given at start-up, and guard later changes.

    Returns {name: value}. Raises ParameterError for a bad start-up value.
    """
    values = {}
    for spec in specs:
        _coerce_override(node, spec)
        try:
            value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except Exception as exc:   # e.g. a YAML value of the wrong type
            raise ParameterError(f'parameter {spec.name!r}: {exc}') from exc
        spec.check(value)
        values[spec.name] = value
    by_name = {s.name: s for s in specs}
    _warn_undeclared(node, by_name)

    def on_set(params) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            try:
                spec.check(p.value)
            except ParameterError as exc:
                node.get_logger().error(str(exc))
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values

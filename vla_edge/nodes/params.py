"""Declared, described, validated parameters, so `ros2 param describe` is useful on the robot.

A bad value is refused at start-up (the node does not come up half-configured) and in the
set-parameters callback, with a message naming the parameter, the value and what is allowed.
"""
from __future__ import annotations

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


class ParameterError(ValueError):
    """A parameter value outside what the node accepts."""


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


def _float_from_int_override(node: Node, spec: Spec) -> None:
    """`max_action_age_s: 0` in YAML (or `-p name:=0`) arrives as an integer, which rclpy would
    refuse for a float parameter; a whole number is a fine float, so take it as one."""
    overrides = getattr(node, '_parameter_overrides', None)   # rclpy keeps them by name
    given = overrides.get(spec.name) if isinstance(overrides, dict) else None
    if isinstance(spec.default, float) and given is not None \
            and given.type_ == Parameter.Type.INTEGER:
        overrides[spec.name] = Parameter(spec.name, Parameter.Type.DOUBLE, float(given.value))


def declare_all(node: Node, specs: Sequence[Spec]) -> dict[str, Any]:
    """Declare every spec, check the values given at start-up, and guard later changes.

    Returns {name: value}. Raises ParameterError for a bad start-up value.
    """
    values = {}
    for spec in specs:
        _float_from_int_override(node, spec)
        try:
            value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except Exception as exc:   # e.g. a YAML value of the wrong type
            raise ParameterError(f'parameter {spec.name!r}: {exc}') from exc
        spec.check(value)
        values[spec.name] = value
    by_name = {s.name: s for s in specs}

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

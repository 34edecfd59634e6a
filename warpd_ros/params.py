"""Node parameters, declared up front from a table, so rqt_reconfigure shows every one of them with
a description, a range or the allowed values, and whether it is read-only.

A node lists its parameters as `Param`s and calls `declare_parameters(node, PARAMS, on_change)`.
Ranges are enforced by rclpy itself (FloatingPointRange / IntegerRange); allowed string values and
any node-specific checks run in one on-set callback, which refuses the whole change with a
reason if any value is bad, and otherwise hands the accepted values to `on_change` so the node
applies them without a restart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False  # a change needs a restart (rclpy refuses it at run time)

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of: {', '.join(self.choices)}." if self.choices else "")
        descriptor = ParameterDescriptor(name=self.name, description=text, read_only=self.read_only)
        if self.min is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(self.min), to_value=float(self.max))]
        elif self.min is not None and isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.min), to_value=int(self.max), step=1)]
        return descriptor


Validator = Callable[[str, object], "str | None"]  # (name, value) -> reason to refuse, or None


def declare_parameters(node, params: list[Param], on_change: Callable[[dict], None] | None = None,
                       validate: Validator | None = None) -> dict:
    """Declare `params` on `node`; returns their current values (after overrides from YAML/CLI)."""
    by_name = {p.name: p for p in params}

    def on_set(changes: list[Parameter]) -> SetParametersResult:
        accepted = {}
        for change in changes:
            spec = by_name.get(change.name)
            if spec is None:
                continue
            if spec.choices and change.value not in spec.choices:
                return SetParametersResult(successful=False,
                                           reason=f"{change.name} must be one of {', '.join(spec.choices)}")
            reason = validate(change.name, change.value) if validate else None
            if reason:
                return SetParametersResult(successful=False, reason=f"{change.name}: {reason}")
            accepted[change.name] = change.value
        if on_change and accepted:
            on_change(accepted)
        return SetParametersResult(successful=True)

    for p in params:
        node.declare_parameter(p.name, p.default, p.descriptor())
    values = {p.name: node.get_parameter(p.name).value for p in params}
    for p in params:  # values from YAML / --ros-args were not seen by the callback: check them now
        if p.choices and values[p.name] not in p.choices:
            raise ValueError(f"parameter {p.name}={values[p.name]!r} must be one of {', '.join(p.choices)}")
        reason = validate(p.name, values[p.name]) if validate else None
        if reason:
            raise ValueError(f"parameter {p.name}={values[p.name]!r}: {reason}")
    node.add_on_set_parameters_callback(on_set)
    return values

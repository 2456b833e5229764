"""Node parameters from one table: declared with descriptors, read in one place, checked on set.

Each node lists its parameters as `ParamSpec`s (name, default, kind, description, range or
choices, whether it can change at run time). `declare_parameters(node, specs)` declares them all
with a `ParameterDescriptor` (description, range, read-only flag; `ros2 param describe` shows
them), reads and checks every value, and raises one `ConfigError` listing every bad value.
`validate(spec, value)` is the check alone (no node): it coerces integers given for floating
point parameters (``-p slop:=1``), takes an empty list (``-p topics:=[]``, which ROS stores as
"not set") for list parameters, and returns a reason for anything else it rejects.
`set_parameters_callback(specs, ...)` is the node's on-set-parameters callback: read-only ones are
refused with "restart the node", bad values with the same reason as at start-up.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.errors import ConfigError

__all__ = ["ParamSpec", "validate", "declare_parameters", "unknown_overrides",
           "set_parameters_callback", "format_table", "format_value"]

KINDS = ("bool", "int", "float", "str", "str_list", "float_list")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. kind in KINDS; low/high: inclusive numeric range (for lists: of every
    element); choices: allowed strings; read_only: read at start-up only; rule: extra check
    returning a reason (or None) for a value that passed the others."""

    name: str
    default: Any
    kind: str
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = True
    rule: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"ParamSpec {self.name}: kind {self.kind!r} not in {KINDS}")

    @property
    def constraints(self) -> str:
        """Human-readable range / choices ('' when none)."""
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            parts.append(f"in [{lo}, {hi}]")
        if not self.read_only:
            parts.append("changeable at run time")
        return "; ".join(parts)


def _number(value: Any, integer: bool) -> Any:
    if isinstance(value, bool):
        return None
    if integer:
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def validate(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """(coerced value, None) or (value, reason it is rejected) for ``spec``."""
    kind = spec.kind
    if kind.endswith("_list"):
        if value is None:
            value = []
        if not isinstance(value, (list, tuple)):
            return value, f"must be a list, got {value!r}"
        if kind == "str_list":
            if not all(isinstance(v, str) for v in value):
                return value, f"must be a list of strings, got {value!r}"
            value = list(value)
        else:
            nums = [_number(v, False) for v in value]
            if any(v is None for v in nums):
                return value, f"must be a list of numbers, got {value!r}"
            value = nums
        items = value
    elif kind == "bool":
        if not isinstance(value, bool):
            return value, f"must be true or false, got {value!r}"
        items = []
    elif kind in ("int", "float"):
        num = _number(value, kind == "int")
        if num is None:
            return value, f"must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}"
        if kind == "float" and not math.isfinite(num):
            return value, f"must be finite, got {value!r}"
        value, items = num, [num]
    else:
        if not isinstance(value, str):
            return value, f"must be a string, got {value!r}"
        items = []
    if kind in ("int", "float", "float_list"):
        for v in items:
            if (spec.low is not None and v < spec.low) or (spec.high is not None and v > spec.high):
                return value, f"{v!r} is out of range ({spec.constraints})"
    if spec.choices:
        for v in (value if kind == "str_list" else [value]):
            if v not in spec.choices:
                return value, f"{v!r} is not one of {', '.join(spec.choices)}"
    if spec.rule is not None:
        reason = spec.rule(value)
        if reason:
            return value, reason
    return value, None


def _descriptor(spec: ParamSpec) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {"bool": ParameterType.PARAMETER_BOOL, "int": ParameterType.PARAMETER_INTEGER,
             "float": ParameterType.PARAMETER_DOUBLE, "str": ParameterType.PARAMETER_STRING,
             "str_list": ParameterType.PARAMETER_STRING_ARRAY,
             "float_list": ParameterType.PARAMETER_DOUBLE_ARRAY}
    d = ParameterDescriptor(name=spec.name, type=types[spec.kind], description=spec.description,
                            additional_constraints=spec.constraints, read_only=spec.read_only,
                            # integers are accepted for doubles and [] for lists; the node checks
                            dynamic_typing=True)
    if spec.kind == "int" and (spec.low is not None or spec.high is not None):
        d.integer_range = [IntegerRange(from_value=int(spec.low if spec.low is not None else -2**63),
                                        to_value=int(spec.high if spec.high is not None else 2**63 - 1),
                                        step=0)]
    elif spec.kind == "float" and spec.low is not None and spec.high is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.low),
                                                     to_value=float(spec.high), step=0.0)]
    return d


def declare_parameters(node: Any, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node``; return {name: checked value}. Raises ConfigError naming
    every bad value (from --ros-args, a params file or a launch file) and why."""
    from rclpy.exceptions import InvalidParameterValueException

    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        default = None if (spec.kind.endswith("_list") and not spec.default) else spec.default
        try:
            raw = node.declare_parameter(spec.name, default, _descriptor(spec)).value
        except InvalidParameterValueException as err:  # rclpy's own range check at declare
            problems.append(f"{spec.name}: {err}")
            continue
        value, reason = validate(spec, raw)
        if reason:
            problems.append(f"{spec.name}: {reason}")
        values[spec.name] = value
    if problems:
        raise ConfigError(f"node '{node.get_name()}': bad parameter(s): " + "; ".join(problems))
    unknown = unknown_overrides(node)
    if unknown:  # a misspelt name would otherwise be ignored without a word
        node.get_logger().warning(
            f"unknown parameter(s) {unknown} given to node '{node.get_name()}' (params file, "
            f"launch file or -p) are ignored; its parameters: "
            f"{', '.join(sorted(s.name for s in specs))}")
    return values


def unknown_overrides(node: Any) -> list[str]:
    """Names given to ``node`` as parameter overrides (params file, launch file, ``-p``) that it
    never declared (qos_overrides.* are rclpy's and not counted)."""
    given = getattr(node, "_parameter_overrides", {}) or {}
    return sorted(n for n in given
                  if not node.has_parameter(n) and not n.startswith("qos_overrides."))


def set_parameters_callback(specs: Sequence[ParamSpec],
                            cross_check: Callable[[dict[str, Any]], str | None] | None = None,
                            current: Callable[[], dict[str, Any]] | None = None
                            ) -> Callable[[list], Any]:
    """An on-set-parameters callback: refuses read-only parameters ("restart the node") and bad
    values (with the reason); ``cross_check(values)`` sees the would-be values of all
    parameters (``current()`` plus the change) and may refuse a combination."""
    from rcl_interfaces.msg import SetParametersResult

    by_name = {s.name: s for s in specs}

    def callback(params: list) -> SetParametersResult:
        changed: dict[str, Any] = {}
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue  # use_sim_time and other parameters the node does not own
            if spec.read_only:
                return SetParametersResult(successful=False, reason=(
                    f"{p.name} is read at start-up; restart the node to change it"))
            value, reason = validate(spec, p.value)
            if reason:
                return SetParametersResult(successful=False, reason=f"{p.name}: {reason}")
            changed[p.name] = value
        if cross_check is not None and changed:
            merged = {**(current() if current else {}), **changed}
            reason = cross_check(merged)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    return callback


def format_table(specs: Sequence[ParamSpec]) -> str:
    """A Markdown table of the parameters (name, default, meaning and range)."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for s in specs:
        extra = f" ({s.constraints})" if s.constraints else ""
        rows.append(f"| `{s.name}` | `{format_value(s.default)}` | {s.description}{extra} |")
    return "\n".join(rows)


def format_value(value: Any) -> str:
    """A parameter value as it is written in a params YAML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(float(value)) if isinstance(value, float) else str(value)

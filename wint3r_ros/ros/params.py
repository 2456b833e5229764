"""Node parameters from one table: declared with descriptors, read in one place, checked on set.

The tables and the checks are ROS-free and shared with process-bag (`core.pipeline.params`:
`ParamSpec`, `validate`, SYNC_PARAMETERS, FUSION_PARAMETERS); this module puts them on a node.
`declare_parameters(node, specs)` declares them all
with a `ParameterDescriptor` (description, range, read-only flag; `ros2 param describe` shows
them), reads and checks every value, and raises one `ConfigError` listing every bad value.
`validate(spec, value)` is the check alone (no node).
`set_parameters_callback(specs, ...)` is the node's on-set-parameters callback: read-only ones are
refused with "restart the node", bad values with the same reason as at start-up.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wint3r_ros.core.pipeline.params import ParamSpec, format_table, format_value, validate
from wint3r_ros.errors import ConfigError

__all__ = ["ParamSpec", "validate", "declare_parameters", "unknown_overrides", "load_rig_file",
           "set_parameters_callback", "format_table", "format_value"]


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


def load_rig_file(path: str) -> Any:
    """The rig of a node's ``rig_file`` parameter (None when empty); a bad file is a
    ConfigError naming the parameter."""
    from wint3r_ros.data.rig_files import load_rig
    from wint3r_ros.errors import CalibrationError

    if not path:
        return None
    try:
        return load_rig(path)
    except CalibrationError as err:
        raise ConfigError(f"rig_file: {err}") from err

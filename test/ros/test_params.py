"""ros/params: one table declares the parameters with descriptors, checks values at start-up
(one error naming every bad value) and refuses bad or read-only changes at run time."""
from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.parameter import Parameter  # noqa: E402

from wint3r_ros.errors import ConfigError  # noqa: E402
from wint3r_ros.ros.params import ParamSpec, declare_parameters, set_parameters_callback, validate  # noqa: E402

SPECS = (
    ParamSpec("names", [], "str_list", "camera names"),
    ParamSpec("slop", 0.02, "float", "sync slop", low=0.0, high=1.0, read_only=False),
    ParamSpec("size", 4, "int", "window", low=1, high=64),
    ParamSpec("mode", "raw", "str", "transport", choices=("raw", "jpeg"), read_only=False),
    ParamSpec("cov", [0.1] * 6, "float_list", "variances", low=0.0,
              rule=lambda v: None if len(v) == 6 else f"needs 6 values, got {len(v)}"),
    ParamSpec("tf", True, "bool", "publish tf"),
)


@pytest.mark.parametrize("name,value,expect", [
    ("slop", 1, 1.0), ("slop", 0.5, 0.5), ("names", None, []), ("names", ["a", "b"], ["a", "b"]),
    ("cov", [1, 2, 3, 4, 5, 6], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), ("tf", False, False),
    ("mode", "jpeg", "jpeg")])
def test_validate_coerces_what_ros_hands_over(name, value, expect):
    spec = next(s for s in SPECS if s.name == name)
    got, reason = validate(spec, value)
    assert reason is None and got == expect and type(got) is type(expect)


@pytest.mark.parametrize("name,value,needle", [
    ("slop", 2.0, "out of range (in [0, 1]"), ("slop", "fast", "must be a number"),
    ("size", 2.5, "must be an integer"), ("size", True, "must be an integer"),
    ("mode", "h264", "'h264' is not one of raw, jpeg"), ("cov", [1.0], "needs 6 values, got 1"),
    ("cov", [-1.0] * 6, "out of range"), ("names", [1, 2], "list of strings"),
    ("tf", "yes", "true or false"), ("slop", float("nan"), "finite")])
def test_validate_rejects_with_a_reason(name, value, needle):
    spec = next(s for s in SPECS if s.name == name)
    _, reason = validate(spec, value)
    assert reason is not None and needle in reason


def test_declare_reads_overrides_and_reports_every_bad_value(rclpy_context):
    node = rclpy.create_node("p_ok", context=rclpy_context, parameter_overrides=[
        Parameter("slop", value=1), Parameter("names", value=["a", "b"])])
    values = declare_parameters(node, SPECS)
    assert values["slop"] == 1.0 and values["names"] == ["a", "b"] and values["size"] == 4
    d = node.describe_parameter("slop")
    assert d.description == "sync slop" and "in [0, 1]" in d.additional_constraints
    assert d.floating_point_range[0].to_value == 1.0
    assert node.describe_parameter("size").read_only
    node.destroy_node()
    bad = rclpy.create_node("p_bad", context=rclpy_context, parameter_overrides=[
        Parameter("mode", value="h264"), Parameter("size", value="four")])
    with pytest.raises(ConfigError) as err:
        declare_parameters(bad, SPECS)
    assert "size: must be an integer, got 'four'" in str(err.value)
    assert "mode: 'h264' is not one of raw, jpeg" in str(err.value)
    bad.destroy_node()


def test_set_parameters_refuses_read_only_and_bad_values_with_reasons(rclpy_context):
    node = rclpy.create_node("p_set", context=rclpy_context)
    declare_parameters(node, SPECS)
    node.add_on_set_parameters_callback(set_parameters_callback(
        SPECS, lambda v: "slop 0.9 and mode jpeg do not mix" if v["slop"] == 0.9 and v["mode"] == "jpeg" else None,
        lambda: {"slop": node.get_parameter("slop").value, "mode": node.get_parameter("mode").value}))
    ok, = node.set_parameters([Parameter("slop", value=0.05)])
    assert ok.successful and node.get_parameter("slop").value == 0.05
    ro, = node.set_parameters([Parameter("size", value=8)])
    assert not ro.successful and "read" in ro.reason.lower()
    out, = node.set_parameters([Parameter("slop", value=3.0)])
    assert not out.successful and "out of range" in out.reason
    assert node.get_parameter("slop").value == 0.05
    node.set_parameters([Parameter("slop", value=0.9)])
    cross, = node.set_parameters([Parameter("mode", value="jpeg")])
    assert not cross.successful and cross.reason == "slop 0.9 and mode jpeg do not mix"
    node.destroy_node()

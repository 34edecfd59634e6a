"""Command limits (warpd_core/runtime/command_limits.py): no policy output, however hostile, leaves the
envelope — as a property over random limits and adversarial commands, and through a real controller process."""
import math
import time
from importlib import resources

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from warpd_core.errors import WarpdError
from warpd_core.runtime.command_limits import (JointLimits, limit_command, limits_from_mjcf, limits_from_model,
                                                velocity_bounds)
from warpd_core.runtime.command_pipeline import Mode

JOINTS = ("shoulder", "elbow", "wrist")
MJCF = resources.files("warpd_core").joinpath("assets/reach_around.xml")
TOL = 1e-9

finite = st.floats(-1e3, 1e3, allow_nan=False)
hostile = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e30, -1e30, 0.0]))


@st.composite
def limits_and_start(draw):
    n = draw(st.integers(1, 4))
    lower = np.array([draw(st.floats(-5, 4)) for _ in range(n)])
    upper = lower + np.array([draw(st.floats(0.01, 5)) for _ in range(n)])
    velocity = np.array([draw(st.floats(0.05, 5)) for _ in range(n)])
    accel = np.array([draw(st.one_of(st.floats(0.5, 500), st.just(math.inf))) for _ in range(n)])
    limits = JointLimits.create([f"j{i}" for i in range(n)], lower, upper, velocity, accel)
    fraction = np.array([draw(st.floats(0, 1)) for _ in range(n)])
    dt = draw(st.sampled_from([0.001, 0.004, 0.02]))
    return limits, lower + fraction * (upper - lower), dt


@settings(max_examples=300, deadline=None, derandomize=True)
@given(setup=limits_and_start(), data=st.data())
def test_no_command_sequence_leaves_the_envelope(setup, data):
    """Huge, sign-flipping, NaN/inf or limit-seeking requests; the joint tracks each command exactly."""
    limits, q, dt = setup
    n = q.size
    style = data.draw(st.sampled_from(["hostile", "flip", "push_up", "push_down"]))
    previous = np.zeros(n)
    for k in range(60):
        if style == "hostile":
            request = np.array([data.draw(hostile) for _ in range(n)])
        elif style == "flip":
            request = np.full(n, 1e6 * (-1) ** k)
        else:
            request = np.full(n, 1e6 if style == "push_up" else -1e6)
        command = limit_command(request, q, previous, limits, dt)
        assert np.isfinite(command).all()
        assert (np.abs(command) <= limits.velocity_limit + TOL).all()
        low, high = velocity_bounds(q, limits, dt)
        rate_ok = np.abs(command - previous) <= limits.acceleration_limit * dt * (1 + 1e-9) + TOL
        at_bound = np.isclose(command, low, rtol=0, atol=TOL) | np.isclose(command, high, rtol=0, atol=TOL)
        assert (rate_ok | at_bound).all(), "the rate limit gives way only to the position/velocity envelope"
        q = q + command * dt
        assert (q >= limits.position_lower - 1e-9).all() and (q <= limits.position_upper + 1e-9).all()
        previous = command


def test_pushing_into_a_stop_brakes_within_the_rate_limit_until_the_last_ticks():
    """With an acceleration limit the joint slows down before the stop instead of slamming into it."""
    limits = JointLimits.create(("j",), -1.0, 1.0, 2.0, 10.0)
    dt, q, previous, violations, commands = 0.001, np.zeros(1), np.zeros(1), 0, []
    for _ in range(3000):
        command = limit_command(np.array([5.0]), q, previous, limits, dt)
        violations += bool(abs(command[0] - previous[0]) > 10.0 * dt + 1e-9)
        q, previous = q + command * dt, command
        commands.append(command[0])
    assert 1.0 - 1e-3 < q[0] <= 1.0
    assert max(commands) == pytest.approx(2.0)  # reached the velocity limit on the way
    assert violations <= 3  # only the final approach, where one period's d/dt bound is below the brake curve


def test_a_joint_beyond_a_limit_may_only_move_back():
    limits = JointLimits.create(JOINTS, -1.0, 1.0, 1.5)
    q = np.array([1.2, -1.3, 0.0])
    command = limit_command(np.array([1.0, -1.0, 1.0]), q, None, limits, 0.001)
    np.testing.assert_array_equal(command, [0.0, 0.0, 1.0])
    command = limit_command(np.array([-1.0, 1.0, -9.0]), q, None, limits, 0.001)
    np.testing.assert_array_equal(command, [-1.0, 1.0, -1.5])  # moving back inside is allowed, not forced


def test_zero_is_always_allowed_at_once_without_a_previous_command():
    """The controller's HOLD passes no previous command: stopping is never rate-limited."""
    limits = JointLimits.create(JOINTS, -1.0, 1.0, 1.5, 10.0)
    np.testing.assert_array_equal(limit_command(np.zeros(3), np.zeros(3), None, limits, 0.001), np.zeros(3))
    ramped = limit_command(np.zeros(3), np.zeros(3), np.full(3, 1.5), limits, 0.001)
    np.testing.assert_allclose(ramped, np.full(3, 1.49))  # with a previous command it would ramp


@pytest.mark.parametrize("changes,message", [
    ({"position_lower": [1.0], "position_upper": [0.0]}, "below position_upper"),
    ({"velocity_limit": [1.0, 0.0, 1.0]}, "velocity_limit must be > 0"),
    ({"acceleration_limit": [-1.0]}, "acceleration_limit must be > 0"),
    ({"velocity_limit": [1.0, 2.0]}, "1 or 3 values"),
    ({"position_upper": [math.nan]}, "NaN"),
])
def test_bad_limits_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        JointLimits.create(JOINTS, **changes)


def test_limits_from_the_task_model_and_the_shipped_configs_agree():
    limits = limits_from_mjcf(MJCF, JOINTS)
    np.testing.assert_array_equal(limits.position_lower, [-2.8] * 3)
    np.testing.assert_array_equal(limits.position_upper, [2.8] * 3)
    np.testing.assert_array_equal(limits.velocity_limit, [1.5] * 3)
    np.testing.assert_array_equal(limits.effort_limit, [6.0] * 3)
    assert np.isinf(limits.acceleration_limit).all()
    for kind in ("sim", "hil"):
        ctrl = yaml.safe_load((REPO / "config" / f"{kind}.yaml").read_text())["warpd_controller"]["ros__parameters"]
        for name in ("position_lower", "position_upper", "velocity_limit", "effort_limit"):
            np.testing.assert_array_equal(ctrl[name], getattr(limits, name), err_msg=f"{kind}.yaml {name}")
        assert all(a > 0 and math.isfinite(a) for a in ctrl["acceleration_limit"])
    with pytest.raises(WarpdError, match="no hinge/slide joints"):
        limits_from_mjcf(MJCF, ("shoulder", "knee"))
    with pytest.raises(WarpdError, match="cannot read MJCF"):
        limits_from_mjcf(REPO / "README.md")


def test_the_panda_config_carries_the_panda_models_limits():
    from warpd_core.tasks import make_task

    task = make_task("panda_reach_around")
    limits = limits_from_model(task.model, task.spec.joint_names)
    ctrl = yaml.safe_load((REPO / "config" / "sim_panda.yaml").read_text())["warpd_controller"]["ros__parameters"]
    for name in ("position_lower", "position_upper", "velocity_limit", "effort_limit"):
        np.testing.assert_allclose(ctrl[name], getattr(limits, name), atol=1e-4, err_msg=f"sim_panda.yaml {name}")
    assert ctrl["action_limit"] == pytest.approx(max(task.spec.action_high))
    assert len(ctrl["acceleration_limit"]) == 7 and all(a > 0 for a in ctrl["acceleration_limit"])
    planner = yaml.safe_load((REPO / "config" / "sim_panda.yaml").read_text())["warpd_planner"]["ros__parameters"]
    for node in (ctrl, planner):  # the nodes' joints and features are the task's
        assert tuple(node["joint_names"]) == task.spec.joint_names
        assert node["n_task_features"] == task.spec.obs_dim - 2 * len(task.spec.joint_names)


# ------------------------------------------------------------------- through a real controller process

RATE_HZ, VEL, ACCEL = 250.0, 0.8, 20.0
LOWER, UPPER = [-1.0, -1.0, -1.0], [1.0, 1.0, 1.2]


@pytest.fixture
def limited_controller(tmp_path):
    from warpd_ros.testing.processes import start_module, stop_process
    from warpd_ros.testing.standin import NOMINAL, RobotStandIn, running

    log_path = tmp_path / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {
        "control_rate_hz": RATE_HZ, "position_lower": LOWER, "position_upper": UPPER, "velocity_limit": [VEL],
        "acceleration_limit": [ACCEL], "stale_timeout_s": 0.5}, log_path=log_path)
    try:
        with running(RobotStandIn, NOMINAL, name="test_limits_stand_in") as harness:
            harness.wait_for_controller(proc, 15)
            assert proc.poll() is None and harness.status() is not None, log_path.read_text()
            time.sleep(1.0)
            yield harness
    finally:
        stop_process(proc)


@pytest.mark.ros
def test_a_hostile_policy_cannot_exceed_the_limits_of_a_real_controller(limited_controller):
    from warpd_ros.modes import status_mode
    from warpd_ros.testing.policies import hostile_policy
    from warpd_ros.testing.standin import NOMINAL, Q, diagnostic_values, feed

    h = limited_controller
    dt = 1.0 / RATE_HZ
    status = h.send_and_wait(hostile_policy(JOINTS, 1))  # action = 1e6 * q_shoulder on every joint
    assert status.swaps_accepted == 1, status.last_rejection_reason
    h.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN")
    # sign flips: the shoulder alternates around 0 at every joint state (~100 Hz), the action with it (±1e6)
    flips = [{**Q, "shoulder": 0.3}, {**Q, "shoulder": -0.3}]
    for k in range(30):
        h.feed = feed(flips[k % 2])
        time.sleep(0.01)
    flipping = h.settled_commands(40)
    # pushing: every joint at its upper limit (the policy pushes up), then at its lower limit (pushes down)
    h.feed = feed(dict(zip(("shoulder", "elbow", "wrist"), UPPER)))
    at_upper = h.settled_commands(20)
    h.feed = feed(dict(zip(("shoulder", "elbow", "wrist"), LOWER)))
    at_lower = h.settled_commands(20)
    h.feed = NOMINAL
    commands = np.array(flipping + at_upper + at_lower)
    assert np.isfinite(commands).all() and np.abs(commands).max() <= VEL + 1e-9
    assert np.abs(commands).max() > 0.5 * VEL  # it did try
    steps = np.abs(np.diff(np.array(flipping), axis=0))
    assert steps.max() <= ACCEL * dt + 1e-9  # the sign flips were smoothed to the rate limit
    assert (np.array(at_upper[-5:]) == 0).all() and (np.array(at_lower[-5:]) == 0).all()  # stopped at the stops
    diag = diagnostic_values(h.fresh_diagnostic())
    assert diag["velocity_limit"] == "0.8 0.8 0.8" and diag["position_upper"] == "1 1 1.2"
    # the envelope is fixed at start: nobody on the graph can widen it through the parameter services
    for name, value in (("velocity_limit", [5.0]), ("acceleration_limit", [1e6]), ("position_upper", [5.0])):
        assert not h.set_param(name, value).successful, name
    assert h.set_param("action_limit", 10.0).successful  # the live clip may grow, but only up to the envelope
    h.feed = feed({**Q, "shoulder": 0.3})
    assert np.abs(np.array(h.settled_commands(20)[-5:])).max() == pytest.approx(VEL)
    h.feed = NOMINAL


def test_a_controller_with_bad_limits_refuses_to_start(run_warpd):
    from conftest import run_module

    proc = run_module("warpd_ros.nodes.controller", "--ros-args", "-p", "velocity_limit:=[1.0, 2.0]", timeout=30)
    assert proc.returncode == 1 and "velocity_limit needs 1 or 3 values" in proc.stderr, proc.stderr
    proc = run_module("warpd_ros.nodes.controller", "--ros-args", "-p", "acceleration_limit:=[0.0]", timeout=30)
    assert proc.returncode == 1 and "acceleration_limit" in proc.stderr and "> 0" in proc.stderr, proc.stderr

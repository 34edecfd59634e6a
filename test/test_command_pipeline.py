"""The controller's per-tick command pipeline (warpd_core/runtime/command_pipeline.py), without ROS."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpd_core.runtime.command_limits import JointLimits, limit_command
from warpd_core.runtime.command_pipeline import (
    REASON_EXPIRED,
    REASON_NO_POLICY,
    REASON_STALE,
    CommandPipeline,
    Mode,
)

JOINTS = ("shoulder", "elbow", "wrist")
NOW = 1_000 * 10**9
MS = 10**6
Q = np.zeros(3)


def test_policy_command_clips_to_the_action_limit_when_no_joint_limits():
    pipe = CommandPipeline.for_joints(JOINTS, 1.5)
    out = pipe.policy_command(np.array([3.0, -0.2, -9.0]), Q, None)
    np.testing.assert_array_equal(out, [1.5, -0.2, -1.5])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_action_gives_no_policy_command_and_the_tick_holds(bad):
    pipe = CommandPipeline.for_joints(JOINTS, 1.5)
    assert pipe.policy_command(np.array([0.1, bad, 0.1]), Q, None) is None
    result = pipe.tick(Mode.RUN, "running policy 1", np.array([0.1, bad, 0.1]), Q, np.zeros(3), None, None, NOW)
    np.testing.assert_array_equal(result.command, np.zeros(3))
    assert result.policy_command is None


def test_joint_limits_come_after_the_clip():
    limits = JointLimits.create(JOINTS, -1.0, 1.0, 0.5)
    pipe = CommandPipeline(limits, action_limit=1.5, dt=1e-3)
    out = pipe.policy_command(np.array([1.0, -1.0, 0.3]), Q, None)
    np.testing.assert_array_equal(out, [0.5, -0.5, 0.3])  # clip 1.5 does nothing here; velocity 0.5 does
    q_at_upper = np.array([1.0, 0.0, -1.0])
    out = pipe.policy_command(np.array([0.4, 0.4, -0.4]), q_at_upper, None)
    np.testing.assert_array_equal(out, [0.0, 0.4, 0.0])  # a joint at its limit may not go further


def test_rate_limit_uses_the_previous_command_and_dt():
    limits = JointLimits.create(JOINTS, acceleration_limit=10.0)
    pipe = CommandPipeline(limits, action_limit=1.5, dt=1e-3)
    out = pipe.policy_command(np.full(3, 1.0), Q, np.zeros(3))
    np.testing.assert_allclose(out, np.full(3, 0.01))
    slower = pipe.with_changes(dt=2e-3)
    np.testing.assert_allclose(slower.policy_command(np.full(3, 1.0), Q, np.zeros(3)), np.full(3, 0.02))


def test_hold_zero_velocity_and_last_command():
    pipe = CommandPipeline.for_joints(JOINTS, 1.5, hold_mode="zero_velocity")
    last = np.array([0.2, -0.1, 0.3])
    held = pipe.tick(Mode.HOLD, REASON_EXPIRED, None, Q, last, last, NOW - MS, NOW)
    np.testing.assert_array_equal(held.command, np.zeros(3))
    assert held.policy_command is None

    pipe = pipe.with_changes(hold_mode="last_command", stale_timeout_s=0.1)
    bridged = pipe.tick(Mode.HOLD, REASON_NO_POLICY, None, Q, last, last, NOW - MS, NOW)
    np.testing.assert_array_equal(bridged.command, last)
    too_old = pipe.tick(Mode.HOLD, REASON_EXPIRED, None, Q, last, last, NOW - 200 * MS, NOW)
    np.testing.assert_array_equal(too_old.command, np.zeros(3))
    blind = pipe.tick(Mode.HOLD, REASON_STALE, None, Q, last, last, NOW - MS, NOW)
    np.testing.assert_array_equal(blind.command, np.zeros(3))  # stale inputs: never keep moving


def test_a_held_last_command_still_respects_the_position_envelope():
    limits = JointLimits.create(JOINTS, -1.0, 1.0)
    pipe = CommandPipeline(limits, 1.5, 1e-3, hold_mode="last_command")
    last = np.array([0.5, 0.5, 0.5])
    q = np.array([1.0, 0.0, 0.0])  # shoulder is at its upper limit
    held = pipe.tick(Mode.HOLD, REASON_NO_POLICY, None, q, last, last, NOW - MS, NOW)
    np.testing.assert_array_equal(held.command, [0.0, 0.5, 0.5])


def test_the_hold_is_not_rate_limited():
    limits = JointLimits.create(JOINTS, acceleration_limit=1.0)
    pipe = CommandPipeline(limits, 1.5, 1e-3)
    held = pipe.tick(Mode.HOLD, REASON_STALE, None, Q, np.full(3, 1.0), None, None, NOW)
    np.testing.assert_array_equal(held.command, np.zeros(3))  # stop at once, not 1e-3 per tick


def test_run_and_shadow_return_the_policy_command_for_last_command_memory():
    limits = JointLimits.create(JOINTS, velocity_limit=1.0)
    pipe = CommandPipeline(limits, 1.5, 1e-3)
    for mode in (Mode.RUN, Mode.SHADOW):
        result = pipe.tick(mode, "x", np.array([2.0, 0.5, -2.0]), Q, None, None, None, NOW)
        np.testing.assert_array_equal(result.command, [1.0, 0.5, -1.0])
        assert result.policy_command is result.command


def test_mode_is_one_vocabulary_that_prints_as_its_name():
    assert Mode.HOLD == "HOLD" and str(Mode.SHADOW) == "SHADOW" and f"{Mode.RUN}" == "RUN"
    assert Mode("RUN") is Mode.RUN


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="action_limit"):
        CommandPipeline.for_joints(JOINTS, math.nan)
    with pytest.raises(ValueError, match="dt"):
        CommandPipeline.for_joints(JOINTS, 1.0, dt=0.0)
    with pytest.raises(ValueError, match="hold_mode"):
        CommandPipeline.for_joints(JOINTS, 1.0, hold_mode="zeros")


@settings(max_examples=300, deadline=None)
@given(action=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3),
       q=st.lists(st.floats(-2, 2), min_size=3, max_size=3),
       previous=st.lists(st.floats(-2, 2), min_size=3, max_size=3),
       mode=st.sampled_from(list(Mode)), hold_mode=st.sampled_from(["zero_velocity", "last_command"]))
def test_every_tick_is_finite_and_inside_the_envelope(action, q, previous, mode, hold_mode):
    limits = JointLimits.create(JOINTS, -1.0, 1.0, 0.8, 50.0)
    pipe = CommandPipeline(limits, 1.5, 1e-3, hold_mode=hold_mode)
    last = np.array([0.3, -0.3, 0.9])
    result = pipe.tick(mode, "x", np.array(action), np.array(q), np.array(previous), last, NOW - MS, NOW)
    assert np.isfinite(result.command).all()
    assert (np.abs(result.command) <= 0.8 + 1e-12).all()
    # the envelope is the same one limit_command enforces with no rate limit
    np.testing.assert_array_equal(limit_command(result.command, np.array(q), None, limits, 1e-3), result.command)


def test_limited_execution_ramps_velocities_from_rest_and_targets_from_the_measured_position():
    from warpd_core.runtime.command_pipeline import LimitedExecution

    limits = JointLimits.create(JOINTS, velocity_limit=2.0, acceleration_limit=5.0)
    velocity = LimitedExecution(CommandPipeline(limits, action_limit=2.0, dt=0.02))
    steps = [velocity.execute(np.ones(3), Q)[0] for _ in range(3)]
    np.testing.assert_allclose(steps, [0.1, 0.2, 0.3])  # 5 rad/s^2 x 20 ms per command, from rest
    velocity.held()  # the robot stopped: the next command ramps from zero again
    assert velocity.execute(np.ones(3), Q)[0] == pytest.approx(0.1)
    assert velocity.execute([np.nan, 0, 0], Q) is None  # not executable: the caller holds

    position = LimitedExecution(CommandPipeline(limits, action_limit=2.0, dt=0.02, command_interface="position"))
    q = np.array([0.5, -0.5, 0.0])
    first = position.execute(q + 0.15, q)
    np.testing.assert_allclose(first, q + 0.04)  # a target moves 2 rad/s x 20 ms from the measured position
    np.testing.assert_allclose(position.execute(q + 0.15, q), q + 0.08)  # ... then from the target before

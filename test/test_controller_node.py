"""The warpd_controller node in a real process, driven from a real rclpy node in this one (loopback, private
domain; no mocks). One controller process is shared by the tests of this file, which run in order."""
import threading
import time

import numpy as np
import pytest

from warpd_core.runtime.command_pipeline import Mode
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_ros.modes import status_mode
from warpd_ros.testing.policies import PIPELINE_PARAMETERS, clipping_policy, expected_command as pipeline_command
from warpd_ros.testing.policies import policy_for
from warpd_ros.testing.policies import pipeline_from_parameters
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import JOINTS, NOMINAL, Q, RobotStandIn, diagnostic_values, feed, observation, running

pytestmark = pytest.mark.ros

LAYERS = (8, 16, 16, 3)
OBS = observation(JOINTS)  # the joint states are published in the driver's order, exercising JointIndex
CONTROL_RATE_HZ = 250.0  # plenty for the checks here, and light on a shared 2-core machine
STALE_TIMEOUT_S = 0.2


def make_policy(policy_id, planner="test_planner", valid_for=30.0, stamp_ns=None, layers=LAYERS, seed=0):
    # synthetic weights are small; the output is scaled so clipping at a small action_limit is visible
    return clipping_policy(JOINTS if layers[0] == 8 else (), policy_id, layers=layers, seed=seed, planner=planner,
                           valid_for_s=valid_for, stamp_ns=stamp_ns)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The controller process and the stand-in that drives it; `harness.pipeline` is the controller's command
    pipeline from its own parameters, and `harness.action_limit` its configured action_limit."""
    log_path = tmp_path_factory.mktemp("controller") / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": CONTROL_RATE_HZ,
                                                       "stale_timeout_s": STALE_TIMEOUT_S}, log_path=log_path)
    try:
        with running(RobotStandIn, NOMINAL, name="test_controller_harness") as h:
            status = h.wait_for_controller(proc, 15)
            assert proc.poll() is None, f"controller exited with {proc.returncode}: {log_path.read_text()}"
            assert status is not None, "no ControllerStatus within 15 s"
            params = h.controller_parameters(PIPELINE_PARAMETERS)
            h.pipeline, h.action_limit = pipeline_from_parameters(params), float(params["action_limit"])
            time.sleep(2.0)  # warm-up: discovery stalls of a few hundred ms happen in the first seconds
            yield h
    finally:
        stop_process(proc)


def expected_command(harness, policy, limit=None):
    """What the controller publishes for `policy` on OBS, at its configured action_limit or at `limit`."""
    pipeline = harness.pipeline if limit is None else harness.pipeline.with_changes(action_limit=limit)
    return pipeline_command(policy, OBS, pipeline)


def assert_commands(commands, expected, atol=1e-6):
    assert commands, "no commands"
    for c in commands:
        np.testing.assert_allclose(c, expected, atol=atol, rtol=0)


def test_holds_with_zero_commands_before_any_policy(harness):
    status = harness.fresh_status()
    assert (status_mode(status), status.mode_reason) == (Mode.HOLD, "no valid policy")
    assert not status.has_active_policy and status.swaps_accepted == 0
    assert status.target_rate_hz == CONTROL_RATE_HZ and status.loop_rate_hz > 0.8 * CONTROL_RATE_HZ
    assert 0 <= status.period_error_p50 <= status.period_error_p99 <= status.period_error_max
    assert_commands(harness.settled_commands(), np.zeros(3), atol=0)
    diag = harness.fresh_diagnostic()
    values = diagnostic_values(diag)
    assert diag.level == diag.WARN and "no valid policy" in diag.message
    assert values["mode"] == "HOLD" and values["swaps_accepted"] == "0" and float(values["loop_rate_hz"]) > 0


def test_a_valid_policy_runs_with_the_exact_commands(harness):
    policy = make_policy(1)
    status = harness.send_and_wait(policy)
    assert status.swaps_accepted == 1 and status.swaps_rejected == 0
    status = harness.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN")
    assert status.has_active_policy and status.active_policy_id == 1 and status.active_task == "reach_around"
    assert 0 <= status.active_policy_age < 5
    expected = expected_command(harness, policy)
    assert np.abs(expected).max() > 0.05  # a real, non-trivial action
    assert_commands(harness.settled_commands(), expected)
    diag = harness.fresh_diagnostic()
    assert diag.level == diag.OK and diagnostic_values(diag)["active_policy_id"] == "1"


@pytest.mark.parametrize("kind,reason", [
    ("nan_weight", "weights_nonfinite"),
    ("wrong_dims", "architecture_mismatch"),
    ("replayed", "replayed"),
    ("expired", "expired"),
    ("future", "future_stamp"),
])
def test_bad_policies_are_rejected_while_the_active_one_keeps_running(harness, kind, reason):
    if kind == "nan_weight":
        bad = make_policy(100)
        bad.weights = bad.weights.copy()
        bad.weights[7] = np.nan
    elif kind == "wrong_dims":
        bad = make_policy(101, layers=(9, 16, 3))
    elif kind == "replayed":
        bad = make_policy(1, seed=5)
    elif kind == "expired":
        bad = make_policy(102, valid_for=1.0, stamp_ns=time.time_ns() - 10 * 10**9)
    else:
        bad = make_policy(103, stamp_ns=time.time_ns() + 10 * 10**9)
    before = harness.status()
    status = harness.send_and_wait(bad)
    assert status.swaps_rejected == before.swaps_rejected + 1
    assert status.swaps_accepted == before.swaps_accepted
    assert status.last_rejection_reason.startswith(reason + ":"), status.last_rejection_reason
    assert status_mode(status) == Mode.RUN and status.active_policy_id == 1
    assert_commands(harness.settled_commands(), expected_command(harness, make_policy(1)))


def test_an_action_that_cannot_be_computed_is_never_published(harness):
    """Finite float64 joint positions beyond float32 range overflow the policy: each such tick publishes
    the hold command and is counted, and nothing non-finite leaves the node."""
    before = int(diagnostic_values(harness.fresh_diagnostic())["nonfinite_actions"])
    harness.feed = feed({**Q, "elbow": 1e300})
    try:
        time.sleep(0.1)
        commands = harness.settled_commands()
        assert all(np.isfinite(c).all() for c in commands)
        assert_commands(commands, np.zeros(3), atol=0)
        diag = harness.fresh_diagnostic()
        values = diagnostic_values(diag)
        assert int(values["nonfinite_actions"]) > before and diag.level == diag.ERROR
    finally:
        harness.feed = NOMINAL
    assert_commands(harness.settled_commands(), expected_command(harness, make_policy(1)))


def test_stale_joint_states_hold_and_resume(harness):
    try:
        harness.feed = None
        time.sleep(0.03)
        stopped = harness.last_state_sent
        deadline = stopped + STALE_TIMEOUT_S + 0.15

        t_hold = harness.wait_command(lambda c: c.t > stopped and not c.data.any(), stopped, 3.0)
        assert t_hold is not None, "timed out after 3.0 s waiting for a zero command after joint states stopped"
        assert t_hold <= deadline, f"HOLD came {t_hold - stopped:.3f} s after the last joint state"
        assert t_hold - stopped >= STALE_TIMEOUT_S * 0.5  # not before the timeout
        status = harness.fresh_status(lambda s: status_mode(s) == Mode.HOLD)
        assert status.mode_reason == "joint states stale"
        diag = harness.fresh_diagnostic()
        assert diag.level == diag.ERROR, diag.message  # the controller is blind
        assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    finally:
        harness.feed = NOMINAL
    harness.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN after joint states resumed")
    assert_commands(harness.settled_commands(), expected_command(harness, make_policy(1)))


def test_policy_expiry_holds(harness):
    policy = make_policy(2, valid_for=0.6)
    status = harness.send_and_wait(policy)
    assert status.active_policy_id == 2 and status_mode(status) == Mode.RUN
    assert_commands(harness.settled_commands(10), expected_command(harness, policy))
    status = harness.fresh_status(lambda s: status_mode(s) == Mode.HOLD, timeout=3, what="HOLD after expiry")
    assert status.mode_reason == "policy expired" and status.active_policy_id == 2
    assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    forever = make_policy(3, valid_for=0.0)  # until replaced
    harness.send_and_wait(forever)
    harness.fresh_status(lambda s: status_mode(s) == Mode.RUN and s.active_policy_id == 3)
    assert_commands(harness.settled_commands(), expected_command(harness, forever))


def test_action_limit_is_a_live_parameter_with_a_range(harness):
    policy = make_policy(3, valid_for=0.0)
    unclipped = expected_command(harness, policy)
    limit = float(np.abs(unclipped).max()) / 2
    assert harness.set_param("action_limit", limit).successful
    commands = harness.settled_commands()
    assert_commands(commands, expected_command(harness, policy, limit))
    assert np.abs(commands[-1]).max() == pytest.approx(limit)
    refused = harness.set_param("action_limit", 50.0)
    assert not refused.successful
    assert_commands(harness.settled_commands(), expected_command(harness, policy, limit))
    assert harness.set_param("action_limit", harness.action_limit).successful
    assert_commands(harness.settled_commands(), unclipped)
    assert not harness.set_param("hold_mode", "freeze").successful
    assert not harness.set_param("joint_names", ["a", "b", "c"]).successful  # read-only


def test_control_rate_change_recreates_the_timer(harness):
    assert harness.set_param("control_rate_hz", 100.0).successful
    status = harness.fresh_status(lambda s: s.target_rate_hz == 100.0)
    status = harness.fresh_status()  # a full window at the new rate
    assert 70 < status.loop_rate_hz < 130
    assert harness.set_param("control_rate_hz", CONTROL_RATE_HZ).successful
    harness.fresh_status(lambda s: s.target_rate_hz == CONTROL_RATE_HZ)


def test_shadow_mode_compares_then_promote_switches(harness):
    active = make_policy(3, valid_for=0.0)
    assert not harness.call_trigger("promote_shadow").success  # nothing to promote yet
    assert harness.set_param("swap_mode", "shadow").successful
    candidate = make_policy(4, valid_for=0.0, seed=9)
    before = harness.status()
    status = harness.send_and_wait(candidate)
    assert status.swaps_accepted == before.swaps_accepted + 1
    status = harness.fresh_status(lambda s: status_mode(s) == Mode.SHADOW, what="SHADOW")
    status = harness.fresh_status()  # a full window of comparisons
    assert status.active_policy_id == 3 and status.shadow_policy_id == 4
    true_diff = np.abs(MLPPolicy(candidate).select_action(OBS) - MLPPolicy(active).select_action(OBS)).max()
    assert status.shadow_action_diff_max == pytest.approx(true_diff, abs=1e-6) and true_diff > 0
    assert_commands(harness.settled_commands(), expected_command(harness, active))  # the candidate is not actuated
    result = harness.call_trigger("promote_shadow")
    assert result.success, result.message
    status = harness.fresh_status(lambda s: s.active_policy_id == 4)
    assert status_mode(status) == Mode.RUN and status.shadow_policy_id == 0
    assert_commands(harness.settled_commands(), expected_command(harness, candidate))
    assert harness.set_param("swap_mode", "run").successful


def test_last_command_hold_bridges_an_expiry_briefly_but_never_moves_blind(harness):
    assert harness.set_param("hold_mode", "last_command").successful
    try:
        policy = make_policy(5, valid_for=0.5)
        harness.send_and_wait(policy)
        harness.fresh_status(lambda s: s.active_policy_id == 5 and status_mode(s) == Mode.RUN)
        expected = expected_command(harness, policy)
        expiry_ns = policy.stamp_ns + 500_000_000
        harness.fresh_status(lambda s: status_mode(s) == Mode.HOLD, what="HOLD after expiry")
        time.sleep(STALE_TIMEOUT_S + 0.2)
        received = [c for c in harness.commands_since(0.0) if c.wall_ns > expiry_ns]
        after = [(c.wall_ns - expiry_ns) * 1e-9 for c in received]
        cmds = [c.data for c in received]
        bridged = [c for dt, c in zip(after, cmds) if 0.03 < dt < STALE_TIMEOUT_S - 0.05]
        zeroed = [c for dt, c in zip(after, cmds) if dt > STALE_TIMEOUT_S + 0.1]
        assert bridged and zeroed
        assert_commands(bridged, expected)  # the last command, held through the expiry
        assert_commands(zeroed, np.zeros(3), atol=0)  # but not longer than stale_timeout_s
        # blind (joint states stale): zeros at once, even in last_command mode
        harness.send_and_wait(make_policy(6, valid_for=0.0))
        harness.fresh_status(lambda s: status_mode(s) == Mode.RUN and s.active_policy_id == 6)
        harness.feed = None
        harness.fresh_status(lambda s: status_mode(s) == Mode.HOLD and s.mode_reason == "joint states stale")
        assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    finally:
        harness.feed = NOMINAL
        assert harness.set_param("hold_mode", "zero_velocity").successful


def _command_changes_and_states(harness, seconds: float) -> tuple[int, int]:
    """Over `seconds` of joint states whose shoulder position moves with every state: how often the command
    changed, and how many states were sent."""

    stop, t0 = threading.Event(), time.monotonic()

    def move():
        k = 0
        while not stop.is_set():
            k += 1
            harness.feed = feed(q={**Q, "shoulder": Q["shoulder"] + 1e-4 * k})
            time.sleep(0.001)
    mover = threading.Thread(target=move)
    mover.start()
    try:
        time.sleep(0.2 + seconds)
    finally:
        stop.set()
        mover.join()
        harness.feed = NOMINAL
    window = (t0 + 0.2, t0 + 0.2 + seconds)
    commands = [c.data for c in harness.commands_between(*window)]
    changes = sum(not np.array_equal(a, b) for a, b in zip(commands, commands[1:]))
    return changes, sum(window[0] <= t < window[1] for t in harness.ticks)


def test_the_policy_is_evaluated_at_policy_rate_hz_on_faster_joint_states(harness):
    """States at 100 Hz, the policy at 50 Hz: the command changes at about every second state; at every tick
    (policy_rate_hz 0 without a checkpoint) with every state. Last in this file: its policy stays active."""
    harness.send_and_wait(policy_for(JOINTS, 40, action_scale=0.2, planner="policy_rate_test"))
    harness.fresh_status(lambda s: status_mode(s) == Mode.RUN and s.active_policy_id == 40, what="RUN")
    try:
        assert harness.set_param("policy_rate_hz", 50.0).successful
        thinned, states = _command_changes_and_states(harness, 1.5)
        assert 0.25 * states <= thinned <= 0.65 * states, (thinned, states)
        assert harness.set_param("policy_rate_hz", 0.0).successful
        every, states = _command_changes_and_states(harness, 1.5)
        assert every >= 0.7 * states and every > 1.3 * thinned, (every, thinned, states)
    finally:
        harness.set_param("policy_rate_hz", 0.0)

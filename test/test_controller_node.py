"""The warpd_controller node in a real process, driven from a real rclpy node in this one (loopback, private
domain; no mocks). One controller process is shared by the tests of this file, which run in order."""
import subprocess
import sys
import threading
import time
from collections import deque

import numpy as np
import pytest

from conftest import REPO
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.synthetic import synthetic_policy

pytestmark = pytest.mark.ros

JOINTS = ("shoulder", "elbow", "wrist")
LAYERS = (8, 16, 16, 3)
# A joint state is published in the driver's order (not the controller's), exercising JointIndex.
DRIVER_ORDER = ("wrist", "shoulder", "elbow")
Q = {"shoulder": 0.4, "elbow": -0.7, "wrist": 1.1}
QD = {"shoulder": 0.05, "elbow": -0.3, "wrist": 0.2}
TASK = (0.35, -0.12)
OBS = np.array([Q[j] for j in JOINTS] + [QD[j] for j in JOINTS] + list(TASK))
CONTROL_RATE_HZ = 250.0  # plenty for the checks here, and light on a shared 2-core machine
STALE_TIMEOUT_S = 0.2
HOLD, RUN, SHADOW = 0, 1, 2


def make_policy(policy_id, planner="test_planner", valid_for=30.0, stamp_ns=None, layers=LAYERS, seed=0):
    policy = synthetic_policy(layers, policy_id, seed=seed, task="reach_around", valid_for_s=valid_for)
    policy.planner_id = planner
    policy.joint_names = JOINTS if layers[0] == 8 else ()
    policy.stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
    # synthetic weights are small; scale the output so clipping at a small action_limit is visible
    policy.action_std = np.full(layers[-1], 2.0, np.float32)
    return policy


def expected_command(policy, limit=1.5):
    return np.clip(MLPPolicy(policy).select_action(OBS), -limit, limit)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Harness:
    """A test node that plays robot + planner: joint states and task features in, commands and status out."""

    def __init__(self, context):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.parameter_client import AsyncParameterClient
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from warpd_ros import topics
        from warpd_ros.conversions import float64_array_msg
        from warpd_ros.msg import ControllerStatus, PolicyWeights
        from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, policy_swap_qos

        self.node = rclpy.create_node("test_controller_harness", context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.commands = deque(maxlen=4000)  # (monotonic receive time, command)
        self.wall_commands = deque(maxlen=4000)  # (wall-clock receive time in ns, command)
        self.statuses = deque(maxlen=200)
        self.diagnostics = deque(maxlen=200)
        self.publishing = True
        self.override_q = None  # joint positions to publish instead of Q
        self.last_state_sent = 0.0
        self._joint_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        task_pub = self.node.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        task_pub.publish(float64_array_msg(TASK))  # latched: the controller gets it whenever it matches
        self.policy_pub = self.node.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, policy_swap_qos())
        self.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command, COMMAND_QOS)
        self.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, self._on_status, STATUS_QOS)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
        self.node.create_timer(0.01, self._publish_joint_state)  # ~100 Hz
        self.params = AsyncParameterClient(self.node, "warpd_controller")
        self.promote = self.node.create_client(Trigger, "/warpd_controller/promote_shadow")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()

    def _publish_joint_state(self):
        from warpd_ros.conversions import joint_state_msg

        if self.publishing:
            q = self.override_q or Q
            self._joint_pub.publish(joint_state_msg(DRIVER_ORDER, [q[j] for j in DRIVER_ORDER],
                                                    [QD[j] for j in DRIVER_ORDER], time.time_ns()))
            self.last_state_sent = time.monotonic()

    def _on_command(self, msg):
        with self.lock:
            self.commands.append((time.monotonic(), np.array(msg.data)))
            self.wall_commands.append((time.time_ns(), np.array(msg.data)))

    def _on_status(self, msg):
        with self.lock:
            self.statuses.append(msg)

    def _on_diagnostics(self, msg):
        with self.lock:
            self.diagnostics.extend((time.time_ns(), s) for s in msg.status if s.name == "warpd_controller")

    # ---------------------------------------------------------------- queries
    def fresh_diagnostic(self, timeout=3.0):
        t0 = time.time_ns()

        def check():
            with self.lock:
                return next((s for t, s in reversed(self.diagnostics) if t > t0), None)
        return wait_for(check, timeout, "a warpd_controller DiagnosticStatus")

    def status(self):
        with self.lock:
            return self.statuses[-1] if self.statuses else None

    def commands_since(self, t):
        with self.lock:
            return [c for ts, c in self.commands if ts >= t]

    def fresh_status(self, predicate=lambda s: True, timeout=5.0, what="a status"):
        """The first status assembled after now that satisfies `predicate`."""
        t0 = time.time_ns()

        def check():
            s = self.status()
            stamp = s and s.header.stamp.sec * 10**9 + s.header.stamp.nanosec
            return s if s is not None and stamp > t0 and predicate(s) else None
        return wait_for(check, timeout, what)

    def settled_commands(self, n=20, timeout=3.0):
        """`n` commands published after this call (so after any change made before it)."""
        t0 = time.monotonic() + 0.05
        return wait_for(lambda: (lambda cs: cs if len(cs) >= n else None)(self.commands_since(t0)),
                        timeout, f"{n} commands")

    # ---------------------------------------------------------------- actions
    def send(self, policy):
        """Publish a policy (unvalidated, so bad ones go out as they are) and wait until the controller
        has accepted or rejected it; returns that status."""
        from warpd_ros.conversions import policy_to_msg

        before = self.status()
        handled = before.swaps_accepted + before.swaps_rejected
        self.policy_pub.publish(policy_to_msg(policy, validate=False))
        return self.fresh_status(lambda s: s.swaps_accepted + s.swaps_rejected > handled,
                                 what=f"the controller to handle policy {policy.policy_id}")

    def set_param(self, name, value):
        from rclpy.parameter import Parameter

        future = self.params.set_parameters([Parameter(name, value=value)])
        wait_for(future.done, 5.0, f"set_parameters {name}")
        return future.result().results[0]

    def call_promote(self):
        from std_srvs.srv import Trigger

        assert self.promote.wait_for_service(timeout_sec=5)
        future = self.promote.call_async(Trigger.Request())
        wait_for(future.done, 5.0, "promote_shadow")
        return future.result()


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    import rclpy
    from rclpy.context import Context

    log_path = tmp_path_factory.mktemp("controller") / "controller.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "warpd_ros.nodes.controller", "--ros-args",
         "-p", f"control_rate_hz:={CONTROL_RATE_HZ}", "-p", f"stale_timeout_s:={STALE_TIMEOUT_S}"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    context = Context()
    rclpy.init(context=context)
    h = None
    try:
        h = Harness(context)
        assert h.params.wait_for_services(timeout_sec=15), "controller parameter services never appeared"
        wait_for(lambda: proc.poll() is not None or h.status(), 15, "the first ControllerStatus")
        assert proc.poll() is None, f"controller exited with {proc.returncode}: {log_path.read_text()}"
        time.sleep(2.0)  # warm-up: discovery stalls of a few hundred ms happen in the first seconds
        yield h
    finally:
        if h is not None:
            h.close()
        context.try_shutdown()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def assert_commands(commands, expected, atol=1e-6):
    assert commands, "no commands"
    for c in commands:
        np.testing.assert_allclose(c, expected, atol=atol, rtol=0)


def test_holds_with_zero_commands_before_any_policy(harness):
    status = harness.fresh_status()
    assert (status.mode, status.mode_reason) == (HOLD, "no valid policy")
    assert not status.has_active_policy and status.swaps_accepted == 0
    assert status.target_rate_hz == CONTROL_RATE_HZ and status.loop_rate_hz > 0.8 * CONTROL_RATE_HZ
    assert 0 <= status.period_error_p50 <= status.period_error_p99 <= status.period_error_max
    assert_commands(harness.settled_commands(), np.zeros(3), atol=0)
    diag = harness.fresh_diagnostic()
    values = {kv.key: kv.value for kv in diag.values}
    assert diag.level == diag.WARN and "no valid policy" in diag.message
    assert values["mode"] == "HOLD" and values["swaps_accepted"] == "0" and float(values["loop_rate_hz"]) > 0


def test_a_valid_policy_runs_with_the_exact_commands(harness):
    policy = make_policy(1)
    status = harness.send(policy)
    assert status.swaps_accepted == 1 and status.swaps_rejected == 0
    status = harness.fresh_status(lambda s: s.mode == RUN, what="RUN")
    assert status.has_active_policy and status.active_policy_id == 1 and status.active_task == "reach_around"
    assert 0 <= status.active_policy_age < 5
    expected = expected_command(policy)
    assert np.abs(expected).max() > 0.05  # a real, non-trivial action
    assert_commands(harness.settled_commands(), expected)
    diag = harness.fresh_diagnostic()
    assert diag.level == diag.OK and {kv.key: kv.value for kv in diag.values}["active_policy_id"] == "1"


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
    status = harness.send(bad)
    assert status.swaps_rejected == before.swaps_rejected + 1
    assert status.swaps_accepted == before.swaps_accepted
    assert status.last_rejection_reason.startswith(reason + ":"), status.last_rejection_reason
    assert status.mode == RUN and status.active_policy_id == 1
    assert_commands(harness.settled_commands(), expected_command(make_policy(1)))


def test_an_action_that_cannot_be_computed_is_never_published(harness):
    """Finite float64 joint positions beyond float32 range overflow the policy: each such tick publishes
    the hold command and is counted, and nothing non-finite leaves the node."""
    before = int({kv.key: kv.value for kv in harness.fresh_diagnostic().values}["nonfinite_actions"])
    harness.override_q = {**Q, "elbow": 1e300}
    try:
        time.sleep(0.1)
        commands = harness.settled_commands()
        assert all(np.isfinite(c).all() for c in commands)
        assert_commands(commands, np.zeros(3), atol=0)
        diag = harness.fresh_diagnostic()
        values = {kv.key: kv.value for kv in diag.values}
        assert int(values["nonfinite_actions"]) > before and diag.level == diag.ERROR
    finally:
        harness.override_q = None
    assert_commands(harness.settled_commands(), expected_command(make_policy(1)))


def test_stale_joint_states_hold_and_resume(harness):
    try:
        harness.publishing = False
        time.sleep(0.03)
        stopped = harness.last_state_sent
        deadline = stopped + STALE_TIMEOUT_S + 0.15

        def first_zero():
            for ts, c in list(harness.commands):
                if ts > stopped and not c.any():
                    return ts
        t_hold = wait_for(first_zero, 3.0, "a zero command after joint states stopped")
        assert t_hold <= deadline, f"HOLD came {t_hold - stopped:.3f} s after the last joint state"
        assert t_hold - stopped >= STALE_TIMEOUT_S * 0.5  # not before the timeout
        status = harness.fresh_status(lambda s: s.mode == HOLD)
        assert status.mode_reason == "joint states stale"
        diag = harness.fresh_diagnostic()
        assert diag.level == diag.ERROR, diag.message  # the controller is blind
        assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    finally:
        harness.publishing = True
    harness.fresh_status(lambda s: s.mode == RUN, what="RUN after joint states resumed")
    assert_commands(harness.settled_commands(), expected_command(make_policy(1)))


def test_policy_expiry_holds(harness):
    policy = make_policy(2, valid_for=0.6)
    status = harness.send(policy)
    assert status.active_policy_id == 2 and status.mode == RUN
    assert_commands(harness.settled_commands(10), expected_command(policy))
    status = harness.fresh_status(lambda s: s.mode == HOLD, timeout=3, what="HOLD after expiry")
    assert status.mode_reason == "policy expired" and status.active_policy_id == 2
    assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    forever = make_policy(3, valid_for=0.0)  # until replaced
    harness.send(forever)
    harness.fresh_status(lambda s: s.mode == RUN and s.active_policy_id == 3)
    assert_commands(harness.settled_commands(), expected_command(forever))


def test_action_limit_is_a_live_parameter_with_a_range(harness):
    policy = make_policy(3, valid_for=0.0)
    unclipped = expected_command(policy)
    limit = float(np.abs(unclipped).max()) / 2
    assert harness.set_param("action_limit", limit).successful
    commands = harness.settled_commands()
    assert_commands(commands, expected_command(policy, limit))
    assert np.abs(commands[-1]).max() == pytest.approx(limit)
    refused = harness.set_param("action_limit", 50.0)
    assert not refused.successful
    assert_commands(harness.settled_commands(), expected_command(policy, limit))
    assert harness.set_param("action_limit", 1.5).successful
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
    assert not harness.call_promote().success  # nothing to promote yet
    assert harness.set_param("swap_mode", "shadow").successful
    candidate = make_policy(4, valid_for=0.0, seed=9)
    before = harness.status()
    status = harness.send(candidate)
    assert status.swaps_accepted == before.swaps_accepted + 1
    status = harness.fresh_status(lambda s: s.mode == SHADOW, what="SHADOW")
    status = harness.fresh_status()  # a full window of comparisons
    assert status.active_policy_id == 3 and status.shadow_policy_id == 4
    true_diff = np.abs(MLPPolicy(candidate).select_action(OBS) - MLPPolicy(active).select_action(OBS)).max()
    assert status.shadow_action_diff_max == pytest.approx(true_diff, abs=1e-6) and true_diff > 0
    assert_commands(harness.settled_commands(), expected_command(active))  # the candidate is not actuated
    result = harness.call_promote()
    assert result.success, result.message
    status = harness.fresh_status(lambda s: s.active_policy_id == 4)
    assert status.mode == RUN and status.shadow_policy_id == 0
    assert_commands(harness.settled_commands(), expected_command(candidate))
    assert harness.set_param("swap_mode", "run").successful


def test_last_command_hold_bridges_an_expiry_briefly_but_never_moves_blind(harness):
    assert harness.set_param("hold_mode", "last_command").successful
    try:
        policy = make_policy(5, valid_for=0.5)
        harness.send(policy)
        harness.fresh_status(lambda s: s.active_policy_id == 5 and s.mode == RUN)
        expected = expected_command(policy)
        expiry_ns = policy.stamp_ns + 500_000_000
        harness.fresh_status(lambda s: s.mode == HOLD, what="HOLD after expiry")
        time.sleep(STALE_TIMEOUT_S + 0.2)
        with harness.lock:
            after = [(t - expiry_ns) * 1e-9 for t, c in harness.wall_commands if t > expiry_ns]
            cmds = [c for t, c in harness.wall_commands if t > expiry_ns]
        bridged = [c for dt, c in zip(after, cmds) if 0.03 < dt < STALE_TIMEOUT_S - 0.05]
        zeroed = [c for dt, c in zip(after, cmds) if dt > STALE_TIMEOUT_S + 0.1]
        assert bridged and zeroed
        assert_commands(bridged, expected)  # the last command, held through the expiry
        assert_commands(zeroed, np.zeros(3), atol=0)  # but not longer than stale_timeout_s
        # blind (joint states stale): zeros at once, even in last_command mode
        harness.send(make_policy(6, valid_for=0.0))
        harness.fresh_status(lambda s: s.mode == RUN and s.active_policy_id == 6)
        harness.publishing = False
        harness.fresh_status(lambda s: s.mode == HOLD and s.mode_reason == "joint states stale")
        assert_commands(harness.settled_commands(10), np.zeros(3), atol=0)
    finally:
        harness.publishing = True
        assert harness.set_param("hold_mode", "zero_velocity").successful

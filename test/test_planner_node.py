"""warpd_planner as a real process over loopback; this test process (a real rclpy node) plays the
robot: it publishes joint states and task features and receives the planner's PolicyWeights.

Uses the shipped checkpoint when it is there, otherwise a tiny one trained here in seconds.
"""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_module
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow]

JOINTS = ["shoulder", "elbow", "wrist"]
SHIPPED = REPO / "checkpoints" / "reach_around" / "checkpoint.safetensors"
PERIOD_S, VALID_FOR_S = 0.2, 2.5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    if SHIPPED.is_file():
        return SHIPPED
    import yaml
    from test_warpd_training import TINY

    root = tmp_path_factory.mktemp("planner_ckpt")
    proc = run_module("warpd_ros.cli", "collect", "--episodes", "6", "--out", str(root / "data"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    config = dict(TINY, data=dict(TINY["data"], path=str(root / "data")), output=str(root / "run"))
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = run_module("warpd_ros.cli", "train", "--config", str(root / "tiny.yaml"), "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    return root / "run" / "checkpoint.safetensors"


@pytest.fixture(scope="module")
def planner(checkpoint, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("planner") / "planner.log"
    proc = start_module("warpd_ros.nodes.planner", {"checkpoint": checkpoint, "replan_period_s": PERIOD_S,
                                                    "valid_for_s": VALID_FOR_S}, log_path=log_path, unbuffered=True)
    try:
        yield proc, log_path
    finally:
        stop_process(proc)


class Robot(TestNode):
    """Joint states at 50 Hz (once `publishing`), latched task features; records policies and diagnostics."""

    def __init__(self, context):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from warpd_core.tasks import make_task
        from warpd_ros import topics
        from warpd_ros.conversions import float64_array_msg
        from warpd_ros.msg import PolicyWeights
        from warpd_ros.qos import SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, policy_swap_qos
        from warpd_ros.srv import SetTask

        super().__init__(context, "test_planner_robot")
        self.obs = make_task("reach_around").reset(0).astype(np.float64)
        self.policies, self.diagnostics, self.publishing = [], [], False
        self.state_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        features_pub = self.node.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        features_pub.publish(float64_array_msg(self.obs[6:8]))
        self.node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS,
                                      lambda m: self.policies.append((time.monotonic(), m)), policy_swap_qos(depth=100))
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
        self.node.create_timer(0.02, self._publish_state)
        self.replan = self.node.create_client(Trigger, "/warpd_planner/replan")
        self.set_task = self.node.create_client(SetTask, "/warpd_planner/set_task")

    def _publish_state(self):
        if self.publishing:
            from warpd_ros.conversions import joint_state_msg

            self.state_pub.publish(joint_state_msg(JOINTS, self.obs[:3], self.obs[3:6], time.time_ns()))

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == "warpd_planner":
                self.diagnostics.append((time.monotonic(), status, {kv.key: kv.value for kv in status.values}))

    def set_param(self, name, value):
        return self.set_parameter("warpd_planner", name, value)

    def arrivals_since(self, t0):
        return [t for t, _ in self.policies if t >= t0]


@pytest.fixture(scope="module")
def robot(planner):
    with running(Robot) as robot:
        assert robot.spin_until(lambda: robot.diagnostics, 60), \
            "the planner never published diagnostics:\n" + planner[1].read_text()
        yield robot


def median_interval(times):
    return float(np.median(np.diff(times)))


def test_no_policy_without_joint_states(robot):
    robot.spin_for(1.0)
    assert robot.policies == []
    _, status, values = robot.diagnostics[-1]
    assert status.level == b"\x01" and "no joint state" in status.message  # WARN
    assert values["policies_published"] == "0"


def test_policies_arrive_periodically_valid_and_numbered(robot, planner):
    from warpd_ros.conversions import duration_to_s, msg_to_policy

    robot.publishing = True
    assert robot.spin_until(lambda: len(robot.policies) >= 8, 30), planner[1].read_text()
    msgs = [m for _, m in robot.policies]
    policies = [msg_to_policy(m) for m in msgs]  # validates every one
    ids = [p.policy_id for p in policies]
    assert all(b > a for a, b in zip(ids, ids[1:]))
    assert all(p.planner_id == "warpd_planner" and list(p.joint_names) == JOINTS and p.task == "reach_around"
               for p in policies)
    assert all(p.architecture.obs_dim == 8 and p.architecture.action_dim == 3 for p in policies)
    assert all(duration_to_s(m.valid_for) == pytest.approx(VALID_FOR_S) for m in msgs)
    stamps = [p.stamp_ns for p in policies]
    assert all(b > a for a, b in zip(stamps, stamps[1:])) and abs(stamps[-1] - time.time_ns()) < 5e9
    assert 0.12 <= median_interval([t for t, _ in robot.policies][2:]) <= 0.4  # replan_period_s = 0.2


def test_diagnostics_report_planning_latency(robot):
    assert robot.spin_until(lambda: robot.diagnostics[-1][1].level == b"\x00", 5)  # OK once planning
    values = robot.diagnostics[-1][2]
    latency = float(values["planner_latency_ms"])
    assert 0 < latency < 5000 and float(values["planner_latency_p95_ms"]) >= latency
    assert int(values["policies_published"]) >= 1 and values["task"] == "reach_around"


def test_replan_period_change_takes_effect(robot):
    assert robot.set_param("replan_period_s", 0.6).successful
    assert not robot.set_param("replan_period_s", 0.001).successful  # below the declared range
    robot.spin_for(0.8)
    t0 = time.monotonic()
    robot.spin_for(3.5)
    arrivals = robot.arrivals_since(t0)
    assert 4 <= len(arrivals) <= 7 and 0.45 <= median_interval(arrivals) <= 0.9


def test_replan_service_plans_at_once(robot):
    from std_srvs.srv import Trigger

    assert robot.set_param("replan_period_s", 30.0).successful  # the timer stays out of the way
    robot.spin_for(1.0)
    last_id = robot.policies[-1][1].policy_id
    t0 = time.monotonic()
    response = robot.call(robot.replan, Trigger.Request())
    assert response.success, response.message
    new_id = int(response.message.rsplit(" ", 1)[1])  # "published policy N"
    assert new_id > last_id
    assert robot.spin_until(lambda: any(m.policy_id == new_id for _, m in robot.policies), 2)
    assert time.monotonic() - t0 < 3


def test_set_task_refuses_tasks_the_checkpoint_does_not_know(robot):
    from warpd_ros.srv import SetTask

    response = robot.call(robot.set_task, SetTask.Request(task="metaworld/push-v3"))
    assert not response.success and "reach_around" in response.message
    assert not robot.set_param("task", "no_such_task").successful
    response = robot.call(robot.set_task, SetTask.Request(task="reach_around"))
    assert response.success, response.message


def test_planner_stops_cleanly_on_sigint(planner):
    proc, log = planner
    assert proc.poll() is None
    assert stop_process(proc, signal.SIGINT) == 0
    assert "Traceback" not in log.read_text()


def test_a_missing_checkpoint_is_a_readable_startup_error(tmp_path):
    missing = tmp_path / "nowhere" / "checkpoint.safetensors"
    proc = subprocess.run([sys.executable, "-m", "warpd_ros.nodes.planner", "--ros-args", "-p",
                           f"checkpoint:={missing}"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    assert f"checkpoint {missing} does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr

"""warpd_sim as a real process over loopback, driven from this test process (a real rclpy node).

The reach_around scripted expert closes the loop from here: it reads the sim's joint states and
task features, commands joint velocities, and the sim reports SUCCESS and then a RESET.
"""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow]

JOINTS = ["shoulder", "elbow", "wrist"]


def start_sim(log_path, **params):
    return start_module("warpd_ros.nodes.sim", params, log_path=log_path, unbuffered=True)


class Probe(TestNode):
    """The test's side of the graph: records what the sim publishes and can drive it."""

    def __init__(self, context):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from warpd_ros import topics
        from warpd_ros.conversions import JointIndex
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import COMMAND_QOS, EVENTS_QOS, SENSOR_QOS, TASK_FEATURES_QOS

        super().__init__(context, "test_sim_probe")
        self.index = JointIndex(JOINTS)
        self.states, self.events, self.features, self.expert = [], [], None, None
        self.cmd_pub = self.node.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_state, SENSOR_QOS)
        self.node.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_features, TASK_FEATURES_QOS)
        self.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self.events.append, EVENTS_QOS)
        self.reset_client = self.node.create_client(Trigger, "/warpd_sim/reset")
        self.perturb_client = self.node.create_client(Trigger, "/warpd_sim/perturb")

    def _on_features(self, msg):
        self.features = np.array(msg.data)

    def _on_state(self, msg):
        self.states.append((time.monotonic(), msg))
        if self.expert is not None and self.features is not None:
            from warpd_ros.conversions import float64_array_msg

            q, qd = self.index.read(msg)
            self.cmd_pub.publish(float64_array_msg(self.expert(np.concatenate([q, qd, self.features]))))

    def events_of(self, kind, since=0):
        return [e for e in self.events[since:] if e.event == kind]

    def qd_since(self, t0):
        return np.array([self.index.read(m)[1] for t, m in self.states if t >= t0])

    def q_since(self, t0):
        return np.array([self.index.read(m)[0] for t, m in self.states if t >= t0])


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    proc = start_sim(log, seed=0, reset_delay_s=0.5)
    try:
        yield proc, log
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def probe(sim):
    with running(Probe) as probe:
        assert probe.spin_until(lambda: probe.states and probe.features is not None, 30), \
            "no joint states / task features from the sim:\n" + sim[1].read_text()
        yield probe


def test_joint_states_arrive_at_50_hz_with_the_task_joint_names(probe):
    probe.spin_for(1.0)  # warm-up: the first seconds of a multi-process start may stall once
    t0 = time.monotonic()
    probe.spin_for(2.0)
    window = [m for t, m in probe.states if t >= t0]
    rate = len(window) / 2.0
    assert 35 <= rate <= 65, rate
    assert all(list(m.name) == JOINTS and len(m.position) == 3 and len(m.velocity) == 3 for m in window)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in window]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert probe.features.shape == (2,) and probe.features[1] > 0.1  # reach_around's goal, behind the pillar


def test_scripted_expert_reaches_the_goal_then_the_episode_resets(probe):
    from warpd_core.tasks import make_task
    from warpd_ros.msg import EpisodeEvent

    since = len(probe.events)
    probe.expert = make_task("reach_around").expert(mode="far")
    try:
        # joining mid-episode, the first episode may time out first: then the next one succeeds
        assert probe.spin_until(lambda: probe.events_of(EpisodeEvent.SUCCESS, since), 20), \
            [(e.event, e.detail) for e in probe.events[since:]]
    finally:
        probe.expert = None
    success = probe.events_of(EpisodeEvent.SUCCESS, since)[0]
    assert success.task == "reach_around" and success.mode == "far"
    assert success.distance < 0.03 and 0 < success.episode_time <= 5.0 and success.seed == success.episode
    after = probe.events.index(success)
    assert probe.spin_until(lambda: probe.events_of(EpisodeEvent.RESET, after), 5)
    reset = probe.events_of(EpisodeEvent.RESET, after)[0]
    assert reset.episode == success.episode + 1 and reset.seed == reset.episode and reset.episode_time == 0.0
    gap = (reset.header.stamp.sec - success.header.stamp.sec) + (reset.header.stamp.nanosec
                                                                   - success.header.stamp.nanosec) * 1e-9
    assert 0.3 <= gap <= 3.0  # reset_delay_s = 0.5 s


def test_a_wrong_length_or_nonfinite_command_is_ignored(probe, sim):
    from std_msgs.msg import Float64MultiArray

    t0 = time.monotonic()
    for _ in range(5):
        probe.cmd_pub.publish(Float64MultiArray(data=[1.0, 1.0]))
        probe.cmd_pub.publish(Float64MultiArray(data=[float("nan"), 1.0, 1.0]))
        probe.spin_for(0.1)
    probe.spin_for(0.5)
    assert sim[0].poll() is None
    assert len([t for t, _ in probe.states if t >= t0 + 0.5]) >= 15  # still stepping at ~50 Hz
    assert np.abs(probe.qd_since(t0)).max() < 0.05  # and nothing of them reached the arm
    assert probe.spin_until(lambda: "ignoring command with 2 values, expected 3" in sim[1].read_text(), 5)


def test_perturb_service_pushes_the_arm_and_reports_it(probe):
    from std_srvs.srv import Trigger

    from warpd_ros.msg import EpisodeEvent

    assert probe.call(probe.reset_client, Trigger.Request()).success  # a fresh 5 s episode, arm at rest
    probe.spin_for(0.5)
    t_rest = time.monotonic()
    probe.spin_for(0.3)
    assert np.abs(probe.qd_since(t_rest)).max() < 0.01
    q_rest = probe.q_since(t_rest)[-1]
    since, t_push = len(probe.events), time.monotonic()
    response = probe.call(probe.perturb_client, Trigger.Request())
    assert response.success and "push 20.0 N" in response.message  # level 0: the spec's force x 1
    assert probe.spin_until(lambda: probe.events_of(EpisodeEvent.PERTURBATION, since), 5)
    assert "push 20.0 N" in probe.events_of(EpisodeEvent.PERTURBATION, since)[0].detail
    probe.spin_for(0.6)
    assert np.abs(probe.qd_since(t_push)).max() > 0.05
    assert np.abs(probe.q_since(t_push) - q_rest).max() > 0.01


def test_perturbation_level_is_set_from_another_process_within_its_range(probe):
    from rcl_interfaces.srv import GetParameters
    from std_srvs.srv import Trigger

    from warpd_ros.msg import EpisodeEvent

    get_client = probe.node.create_client(GetParameters, "/warpd_sim/get_parameters")

    def set_param(name, value):
        return probe.set_parameter("warpd_sim", name, value)

    assert set_param("perturbation_level", 0.3).successful
    refused = set_param("perturbation_level", 1.5)
    assert not refused.successful and refused.reason
    assert not set_param("task", "metaworld/reach-v3").successful  # read-only: needs a restart
    values = probe.call(get_client, GetParameters.Request(names=["perturbation_level"])).values
    assert values[0].double_value == pytest.approx(0.3)
    since = len(probe.events)
    assert probe.call(probe.reset_client, Trigger.Request()).success  # the level applies from the next episode
    assert probe.spin_until(lambda: probe.events_of(EpisodeEvent.RESET, since), 5)
    assert "perturbation level 0.3" in probe.events_of(EpisodeEvent.RESET, since)[0].detail


def test_max_episodes_stops_the_sim_and_sigterm_ends_it_cleanly(tmp_path):
    log = tmp_path / "sim.log"
    proc = start_sim(log, real_time_factor=20.0, max_episodes=1, reset_delay_s=0.0)
    try:
        deadline = time.monotonic() + 30
        while "max_episodes=1 reached" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        assert "episode 0 (seed 0): TIMEOUT" in text and "max_episodes=1 reached" in text, text
        assert proc.poll() is None  # stopped stepping, still serving parameters and services
    finally:
        code = stop_process(proc, signal.SIGTERM)
    assert code == 0 and "Traceback" not in log.read_text()


def test_an_unknown_task_is_a_clear_startup_error():
    proc = subprocess.run([sys.executable, "-m", "warpd_ros.nodes.sim", "--ros-args", "-p", "task:=reach_arund"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 1
    assert "unknown task 'reach_arund'" in proc.stderr and "reach_around" in proc.stderr
    assert "Traceback" not in proc.stderr

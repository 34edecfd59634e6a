"""What warpd_sim applies when it has no command for this episode: never the previous episode's last
command, and never zeros to a position interface (that would send every joint to 0 rad).

Why: recording through ROS, the first steps of 4 in 5 episodes ran on the expert's last command of the
episode before (still within command_timeout_s), so the recorded episodes began already moving, a start
no deployment ever has.
"""
import time

import numpy as np
import pytest

from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]  # the sim's own stepping rule

REACH_AROUND_JOINTS = ["shoulder", "elbow", "wrist"]


class Probe(TestNode):
    """Records joint states (stamp, q, qd) and EpisodeEvents; publishes commands."""

    def __init__(self, context, joints):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from warpd_ros import topics
        from warpd_ros.conversions import JointIndex
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import COMMAND_QOS, EVENTS_QOS, SENSOR_QOS

        super().__init__(context, "test_sim_no_command_probe")
        self.index = JointIndex(joints)
        self.states, self.events = [], []
        self.cmd_pub = self.node.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_state, SENSOR_QOS)
        self.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self.events.append, EVENTS_QOS)
        self.reset_client = self.node.create_client(Trigger, "/warpd_sim/reset")

    def _on_state(self, msg):
        from warpd_ros.conversions import stamp_to_ns

        q, qd = self.index.read(msg)
        self.states.append((stamp_to_ns(msg.header.stamp), q, qd))

    def after(self, stamp_ns):
        return [(q, qd) for t, q, qd in self.states if t > stamp_ns]


def test_the_previous_episodes_command_is_not_applied_after_a_reset(tmp_path):
    from std_srvs.srv import Trigger

    from warpd_ros.conversions import float64_array_msg, stamp_to_ns
    from warpd_ros.msg import EpisodeEvent

    log = tmp_path / "sim.log"
    proc = start_module("warpd_ros.nodes.sim", {"seed": 0, "command_timeout_s": 0.5}, log_path=log, unbuffered=True)
    try:
        with running(Probe, REACH_AROUND_JOINTS) as probe:
            assert probe.spin_until(lambda: len(probe.states) > 10, 30), log.read_text()
            for _ in range(30):  # 0.3 s of a steady command: the arm moves
                probe.cmd_pub.publish(float64_array_msg([1.0, -1.0, 1.0]))
                probe.spin_for(0.01)
            assert np.abs(probe.states[-1][2]).max() > 0.5
            assert probe.call(probe.reset_client, Trigger.Request()).success  # within command_timeout_s
            assert probe.spin_until(lambda: [e for e in probe.events if e.event == EpisodeEvent.RESET], 5)
            reset_ns = stamp_to_ns([e for e in probe.events if e.event == EpisodeEvent.RESET][-1].header.stamp)
            assert probe.spin_until(lambda: len(probe.after(reset_ns)) >= 10, 5)
    finally:
        stop_process(proc)
    qd = np.array([qd for _, qd in probe.after(reset_ns)])
    assert np.abs(qd).max() < 0.01, f"the arm moved after the reset with no command sent since: {qd[:5]}"


def test_a_position_interface_without_commands_holds_where_it_is(tmp_path):
    from warpd_core.tasks.panda_reach_around import JOINTS

    log = tmp_path / "sim.log"
    proc = start_module("warpd_ros.nodes.sim", {"task": "panda_reach_around_position", "seed": 3},
                        log_path=log, unbuffered=True)
    try:
        with running(Probe, list(JOINTS)) as probe:
            assert probe.spin_until(lambda: len(probe.states) > 0, 60), log.read_text()
            probe.spin_for(1.0)  # no command at all: 50 steps of the no-command action
    finally:
        stop_process(proc)
    q = np.array([q for _, q, _ in probe.states])
    assert len(q) >= 30 and np.abs(q[0]).max() > 0.5  # the start posture is far from all-zeros
    assert np.abs(q - q[0]).max() < 0.02, f"the arm left its start posture: {np.abs(q - q[0]).max(0)}"


def test_lockstep_applies_each_command_to_the_state_it_answered(tmp_path):
    """step_on=command (recording): a sender 35 ms late, beyond the 20 ms step, still has its command applied
    to the state it answered: the next state's velocity is that command, not the one before."""
    from warpd_ros.conversions import float64_array_msg

    log = tmp_path / "sim.log"
    proc = start_module("warpd_ros.nodes.sim", {"seed": 0, "step_on": "command", "command_timeout_s": 0.5},
                        log_path=log, unbuffered=True)
    answered = []  # (index of the state answered, command)
    try:
        with running(Probe, REACH_AROUND_JOINTS) as probe:
            assert probe.spin_until(lambda: len(probe.states) > 0, 30), log.read_text()
            for k in range(40):
                n = len(probe.states)
                assert probe.spin_until(lambda: len(probe.states) > n, 2.0), "the sim stopped publishing"
                time.sleep(0.035)  # late: past the sim's next tick
                command = np.full(3, 0.4 if k % 2 else 0.1)
                answered.append((len(probe.states) - 1, command))
                probe.cmd_pub.publish(float64_array_msg(command))
            probe.spin_for(0.2)
    finally:
        stop_process(proc)
    # the velocity servo lags a step change a little: each next velocity must be nearer its own command than
    # the previous one (0.3 apart), which a step on a stale command is not
    pairs = [(probe.states[i + 1][2], c, previous) for (i, c), (_, previous) in zip(answered[2:], answered[1:])
             if i + 1 < len(probe.states)]
    nearer = [np.abs(qd - c).max() < np.abs(qd - previous).max() for qd, c, previous in pairs]
    assert len(pairs) >= 30 and all(nearer), f"steps on another command than the one answering them: {nearer}"


def test_commands_are_executed_within_the_controllers_limits(tmp_path):
    """With the controller's acceleration limit set, a 1 rad/s step from rest is ramped, as warpd_controller
    would ramp it: recorded demonstrations then visit the states a deployed policy meets."""
    from warpd_ros.conversions import float64_array_msg

    accel, dt = 2.0, 0.02  # rad/s^2; reach_around's control period
    log = tmp_path / "sim.log"
    proc = start_module("warpd_ros.nodes.sim", {"seed": 0, "command_timeout_s": 0.5, "acceleration_limit": [accel]},
                        log_path=log, unbuffered=True)
    try:
        with running(Probe, REACH_AROUND_JOINTS) as probe:
            assert probe.spin_until(lambda: len(probe.states) > 5, 30), log.read_text()
            first = len(probe.states)
            for _ in range(40):
                probe.cmd_pub.publish(float64_array_msg([1.0, -1.0, 1.0]))
                probe.spin_for(0.01)
    finally:
        stop_process(proc)
    qd = np.array([qd for _, _, qd in probe.states[first - 1:]])
    steps = np.abs(np.diff(qd, axis=0)).max()
    assert steps <= accel * dt * 1.5 + 0.01, f"a velocity step of {steps:.3f} rad/s in one control period"
    assert np.abs(qd[-1]).min() > 0.2, f"the arm did not ramp up: {qd[-1]}"

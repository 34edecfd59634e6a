"""hold_between_episodes: the controller (a real process) HOLDs from an episode's end until a policy planned
for the next episode is active, driven over loopback by a real rclpy node; the gate's rule itself in
warpd_core, without ROS."""
import time

import numpy as np
import pytest

from warpd_core.runtime.command_pipeline import Mode
from warpd_core.runtime.swap import REASON_EPISODE_ENDED, REASON_EPISODE_POLICY, EpisodeGate
from warpd_ros.modes import status_mode
from warpd_ros.testing.policies import clipping_policy
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import NOMINAL, RobotStandIn, running

pytestmark = [pytest.mark.ros, pytest.mark.once]  # distro-independent glue: the controller runs on both elsewhere


class _Policy:
    def __init__(self, stamp_ns):
        self.stamp_ns = stamp_ns


def test_gate_opens_only_for_a_policy_stamped_after_the_reset():
    gate = EpisodeGate()
    assert gate.hold_reason(_Policy(5)) is None  # no episode seen: nothing to hold for
    gate.end()
    assert gate.hold_reason(_Policy(5)) == REASON_EPISODE_ENDED
    gate.reset(100)
    assert gate.hold_reason(None) == REASON_EPISODE_POLICY
    assert gate.hold_reason(_Policy(99)) == REASON_EPISODE_POLICY  # the last episode's policy
    assert gate.hold_reason(_Policy(100)) is None
    assert gate.hold_reason(_Policy(5)) is None  # open until the next end: later swaps need no new reset


def _event(kind, stamp_ns):
    from warpd_ros.conversions import ns_to_stamp
    from warpd_ros.msg import EpisodeEvent

    msg = EpisodeEvent(event=kind, episode=1, task="reach_around")
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


def test_controller_holds_from_the_end_until_a_policy_planned_for_the_next_episode(tmp_path):
    from warpd_ros import topics
    from warpd_ros.msg import EpisodeEvent
    from warpd_ros.qos import EVENTS_QOS

    log = tmp_path / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": 250.0, "hold_between_episodes": True},
                        log_path=log)
    try:
        with running(RobotStandIn, NOMINAL, name="episode_hold_stand_in") as h:
            assert h.wait_for_controller(proc, 15) is not None, log.read_text()
            events = h.node.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, EVENTS_QOS)
            assert h.wait_until(lambda: events.get_subscription_count() > 0, 10)
            h.send_policy(clipping_policy(policy_id=1, valid_for_s=60.0))
            h.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN on policy 1")

            events.publish(_event(EpisodeEvent.SUCCESS, time.time_ns()))
            status = h.fresh_status(lambda s: status_mode(s) == Mode.HOLD, what="HOLD at the episode's end")
            assert status.mode_reason == REASON_EPISODE_ENDED and status.active_policy_id == 1
            assert np.allclose(h.settled_commands(), 0.0)  # the robot is not driven while it is put back

            reset_ns = time.time_ns()
            events.publish(_event(EpisodeEvent.RESET, reset_ns))
            h.fresh_status(lambda s: s.mode_reason == REASON_EPISODE_POLICY, what="waiting for this episode's plan")
            old = clipping_policy(policy_id=2, valid_for_s=60.0, stamp_ns=reset_ns - 10**9)  # planned before it
            assert h.send_and_wait(old).active_policy_id == 2
            time.sleep(0.2)
            status = h.fresh_status()
            assert status_mode(status) == Mode.HOLD and status.mode_reason == REASON_EPISODE_POLICY
            assert np.allclose(h.settled_commands(), 0.0)

            h.send_policy(clipping_policy(policy_id=3, valid_for_s=60.0))  # stamped now: after the RESET
            status = h.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN on this episode's policy")
            assert status.active_policy_id == 3
            assert not np.allclose(h.settled_commands()[-1], 0.0)
    finally:
        stop_process(proc)


def _position_controller(tmp_path):
    return start_module("warpd_ros.nodes.controller", {
        "control_rate_hz": 200.0, "hold_between_episodes": True, "command_interface": "position",
        "position_lower": [-2.0], "position_upper": [2.0], "velocity_limit": [0.5]}, log_path=tmp_path / "c.log")


def _end_a_position_episode(h, shoulder):
    """RUN a position policy with the arm at `shoulder`, then end the episode: HOLD between episodes."""
    from warpd_ros import topics
    from warpd_ros.msg import EpisodeEvent
    from warpd_ros.qos import EVENTS_QOS
    from warpd_ros.testing.policies import policy_for
    from warpd_ros.testing.standin import JOINTS, Q, feed

    events = h.node.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, EVENTS_QOS)
    assert h.wait_until(lambda: events.get_subscription_count() > 0, 10)
    policy = policy_for(JOINTS, 1, valid_for_s=60.0)
    policy.command_interface = "position"
    h.send_policy(policy)
    h.fresh_status(lambda s: status_mode(s) == Mode.RUN, what="RUN on a position policy")
    h.feed = feed({**Q, "shoulder": shoulder})  # where the episode ends
    time.sleep(0.3)
    events.publish(_event(EpisodeEvent.SUCCESS, time.time_ns()))
    h.fresh_status(lambda s: s.mode_reason == REASON_EPISODE_ENDED, what="HOLD at the episode's end")
    return events


def test_position_hold_between_episodes_follows_a_robot_put_back_at_its_start(tmp_path):
    """Position interface: a robot moved by a reset (further than hold_relatch_rad) is held where it now is. A
    target kept from the episode's end would drag a robot just put back at a start posture to where the last
    episode ended (seen on the emulator: from then on every episode started at the joint limits and timed out)."""
    from warpd_ros.testing.standin import JOINTS, Q, feed

    proc = _position_controller(tmp_path)
    try:
        with running(RobotStandIn, NOMINAL, name="episode_hold_position_stand_in") as h:
            assert h.wait_for_controller(proc, 15) is not None, (tmp_path / "c.log").read_text()
            _end_a_position_episode(h, 1.2)
            h.feed = feed({**Q, "shoulder": -0.4})  # an operator puts the arm back at a start posture
            time.sleep(0.3)
            start = np.array([{**Q, "shoulder": -0.4}[j] for j in JOINTS])
            np.testing.assert_allclose(h.settled_commands(10)[-1], start, atol=1e-9)
    finally:
        stop_process(proc)


def test_position_hold_between_episodes_does_not_follow_an_arm_that_sags(tmp_path):
    """An arm whose position servo sags under gravity sits a little below its target. A hold target that
    followed the measured position would walk down with it, tick after tick, and the arm with it; the target
    latched at the episode's end stays, and a RESET latches it once more, where the robot then is."""
    from warpd_ros.msg import EpisodeEvent
    from warpd_ros.testing.standin import JOINTS, Q, feed

    shoulder = JOINTS.index("shoulder")
    proc = _position_controller(tmp_path)
    try:
        with running(RobotStandIn, NOMINAL, name="episode_hold_sag_stand_in") as h:
            assert h.wait_for_controller(proc, 15) is not None, (tmp_path / "c.log").read_text()
            events = _end_a_position_episode(h, 1.2)
            held = h.settled_commands(10)[-1][shoulder]
            assert held == pytest.approx(1.2, abs=1e-9)
            for _ in range(50):  # 1 s of an arm that settles 0.01 rad below whatever it is commanded
                h.feed = feed({**Q, "shoulder": h.commands[-1].data[shoulder] - 0.01})
                time.sleep(0.02)
            assert h.settled_commands(10)[-1][shoulder] == pytest.approx(held, abs=1e-9), "the hold target crept"
            events.publish(_event(EpisodeEvent.RESET, time.time_ns()))  # latched once more, where the arm is
            time.sleep(0.3)
            assert h.settled_commands(10)[-1][shoulder] == pytest.approx(held - 0.01, abs=1e-9)
    finally:
        stop_process(proc)

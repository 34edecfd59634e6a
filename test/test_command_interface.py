"""Position and velocity command interfaces, and the robot contract that keeps a policy on the robot it
was trained for: position targets stay inside the limits and move no faster than the velocity limit,
a position HOLD holds where the joints were (never zeros, which a position controller executes as
"go to 0 rad"), and wrong joint orders or interfaces are refused with what differs."""
import math
import time

import numpy as np
import pytest

from warpd_core.errors import PolicyValidationError, WarpdError
from warpd_core.robot_contract import RobotContract, goal_features, read_checkpoint_contract
from warpd_core.runtime.command_limits import JointLimits, limits_from_urdf, tightest
from warpd_core.runtime.command_pipeline import CommandPipeline, Mode
from warpd_core.runtime.swap import ControllerSpec, check_policy

JOINTS = ("shoulder", "elbow", "wrist")
LIMITS = JointLimits.create(JOINTS, [-1.0, -1.0, -2.0], [1.0, 1.0, 2.0], [0.5, 1.0, 2.0])
DT = 0.01
Q = np.array([0.2, -0.3, 0.4])


def position_pipeline():
    return CommandPipeline(LIMITS, 1.5, DT, command_interface="position")


def test_position_targets_stay_inside_the_limits_and_move_at_most_the_velocity_limit_per_period():
    pipe = position_pipeline()
    previous = np.array([0.2, -0.3, 0.4])
    out = pipe.tick(Mode.RUN, "", np.array([5.0, -5.0, 0.41]), Q, previous, None, None, 0)
    # shoulder: +0.5 rad/s * 0.01 s; elbow: -1.0 * 0.01; wrist: within its 0.02 step, taken as asked
    np.testing.assert_allclose(out.command, [0.205, -0.31, 0.41])
    assert out.policy_command is not None
    # at a position limit the target goes no further, whatever the policy asks
    at_upper = np.array([1.0, 1.0, 2.0])
    out = pipe.tick(Mode.RUN, "", np.array([9.0, 9.0, 9.0]), at_upper, at_upper, None, None, 0)
    np.testing.assert_allclose(out.command, at_upper)
    # no previous target (the first after a HOLD without one): the step starts at the measured position
    out = pipe.tick(Mode.RUN, "", np.array([-9.0, 0.0, 0.0]), Q, None, None, None, 0)
    np.testing.assert_allclose(out.command, [0.195, -0.29, 0.38])


def test_a_position_hold_holds_the_latched_position_never_zeros():
    pipe = position_pipeline()
    latched = np.array([0.7, -0.2, 1.3])
    for reason in ("no valid policy", "joint states stale", "policy expired"):
        out = pipe.tick(Mode.HOLD, reason, None, Q, None, None, None, 0, hold_position=latched)
        np.testing.assert_array_equal(out.command, latched)
    # nothing latched yet: where the joints are now
    np.testing.assert_array_equal(pipe.tick(Mode.HOLD, "no valid policy", None, Q, None, None, None, 0).command, Q)
    # a non-finite target in RUN holds too (at the latched position), it is never published
    out = pipe.tick(Mode.RUN, "", np.array([np.nan, 0.0, 0.0]), Q, Q, None, None, 0, hold_position=latched)
    np.testing.assert_array_equal(out.command, latched)
    assert out.policy_command is None
    with pytest.raises(ValueError, match="measured joint position"):
        pipe.hold(None, None, None, 0, False)


def test_the_velocity_interface_is_unchanged():
    pipe = CommandPipeline(LIMITS, 1.5, DT)
    out = pipe.tick(Mode.HOLD, "no valid policy", None, Q, None, None, None, 0, hold_position=Q)
    np.testing.assert_array_equal(out.command, np.zeros(3))


URDF = """<robot name="arm">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="l1"/>
    <limit lower="-0.5" upper="2.0" velocity="0.3" effort="10"/></joint>
  <joint name="elbow" type="continuous"><parent link="l1"/><child link="l2"/>
    <limit velocity="4.0" effort="5"/></joint>
  <joint name="wrist" type="prismatic"><parent link="l2"/><child link="l3"/>
    <limit lower="-3" upper="3" velocity="0" effort="0"/></joint>
</robot>"""


def test_urdf_limits_and_the_tighter_of_two(tmp_path):
    urdf = limits_from_urdf(URDF, JOINTS)
    np.testing.assert_array_equal(urdf.position_lower, [-0.5, -math.inf, -3])
    np.testing.assert_array_equal(urdf.velocity_limit, [0.3, 4.0, math.inf])  # velocity 0 = unstated
    both = tightest(LIMITS, urdf)
    np.testing.assert_array_equal(both.position_lower, [-0.5, -1.0, -2.0])
    np.testing.assert_array_equal(both.position_upper, [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(both.velocity_limit, [0.3, 1.0, 2.0])
    path = tmp_path / "arm.urdf"
    path.write_text(URDF)
    assert limits_from_urdf(str(path), ("wrist",)).position_upper.tolist() == [3.0]
    with pytest.raises(WarpdError, match=r"no joint\(s\) \['gripper'\]"):
        limits_from_urdf(URDF, ("shoulder", "gripper"))
    with pytest.raises(WarpdError, match="not valid URDF"):
        limits_from_urdf("<robot><joint", JOINTS)


def test_the_contract_says_what_differs():
    contract = RobotContract.from_names(
        ("q_a", "q_b", "qd_a", "qd_b", "goal_x", "goal_y"), ("a_pos", "b_pos"), 0.02, "base_link")
    assert contract == RobotContract(("a", "b"), "position", 50.0, ("goal_x", "goal_y"), "base_link")
    assert contract.differences(("a", "b"), "position", 2) == []
    [order] = contract.differences(joint_names=("b", "a"))
    assert "joint order" in order and "[a, b]" in order and "[b, a]" in order
    [joints] = contract.differences(joint_names=("a", "c"))
    assert "missing b" in joints and "not trained on c" in joints
    assert contract.differences(command_interface="velocity") == [
        "command interface: trained for position, configured for velocity"]
    with pytest.raises(WarpdError, match="task features: trained with 2"):
        contract.require("checkpoint x", "hint", n_task_features=0)
    assert RobotContract.from_json(contract.to_json(), "x") == contract
    assert goal_features(("goal_x", "goal_z"), (1.0, 2.0, 3.0)) == [1.0, 3.0]
    with pytest.raises(WarpdError, match="cannot be filled in from a goal position"):
        goal_features(("goal_x", "speed"), (1.0, 2.0, 3.0))
    with pytest.raises(WarpdError, match="are not <joint>_vel or <joint>_pos"):
        RobotContract.from_names(("q_a", "qd_a"), ("a_torque",), 0.02)


def test_the_shipped_checkpoints_spell_out_their_contract_without_torch():
    panda = read_checkpoint_contract("checkpoints/panda_reach_around/checkpoint.safetensors")
    assert panda.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert panda.command_interface == "velocity" and panda.task_feature_names == ("goal_x", "goal_y", "goal_z")
    with pytest.raises(WarpdError, match="does not exist"):
        read_checkpoint_contract("checkpoints/nope.safetensors")


def test_a_policy_for_another_interface_is_refused():
    from warpd_ros.testing.policies import policy_for

    now = time.time_ns()
    velocity, position = ControllerSpec(JOINTS, 2), ControllerSpec(JOINTS, 2, command_interface="position")
    unstated = policy_for(JOINTS, 1, stamp_ns=now)
    check_policy(unstated, velocity, now, {})  # older planners state no interface: velocity, as before
    with pytest.raises(PolicyValidationError, match="unstated interface") as err:
        check_policy(unstated, position, now, {})
    assert err.value.reason == "command_interface"
    unstated.command_interface = "velocity"
    with pytest.raises(PolicyValidationError, match="policy commands velocity"):
        check_policy(unstated, position, now, {})
    unstated.command_interface = "position"
    check_policy(unstated, position, now, {})


# ---------------------------------------------------------------- the controller node, over loopback
RATE_HZ = 200.0


def _controller(tmp_path, name, **params):
    from warpd_ros.testing.processes import start_module

    log_path = tmp_path / f"{name}.log"
    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": RATE_HZ, "stale_timeout_s": 0.2,
                                                       "position_lower": [-2.0], "position_upper": [2.0],
                                                       "velocity_limit": [0.5], **params}, log_path=log_path)
    return proc, log_path


@pytest.mark.ros
def test_a_position_controller_holds_where_the_joints_are_and_never_commands_zeros(tmp_path):
    from warpd_ros.testing.policies import policy_for
    from warpd_ros.testing.processes import stop_process
    from warpd_ros.testing.standin import JOINTS as STANDIN_JOINTS, NOMINAL, Q as STANDIN_Q, RobotStandIn, feed, running

    proc, log_path = _controller(tmp_path, "position", command_interface="position")
    measured = np.array([STANDIN_Q[j] for j in STANDIN_JOINTS])
    try:
        with running(RobotStandIn, NOMINAL, name="test_position_stand_in") as h:
            h.wait_for_controller(proc, 15)
            time.sleep(0.5)
            # active, no policy: the hold command is the measured position, not zeros
            held = np.array(h.settled_commands(10))
            np.testing.assert_allclose(held, np.tile(measured, (len(held), 1)))
            # the joints move (someone pushes the arm) while holding: the target stays where the HOLD began
            h.feed = feed({**STANDIN_Q, "shoulder": 0.9})
            time.sleep(0.3)
            np.testing.assert_allclose(h.settled_commands(10)[-1], measured)
            # joint states stop: still that position, never zeros
            h.feed = None
            time.sleep(0.5)
            t = time.monotonic()
            time.sleep(0.3)
            stale = np.array([c.data for c in h.commands_since(t)])
            assert len(stale) > 10
            np.testing.assert_allclose(stale, np.tile(measured, (len(stale), 1)))
            # a velocity policy is refused with its reason; a position one drives from where the HOLD held
            h.feed = feed({**STANDIN_Q, "shoulder": 0.9})
            time.sleep(0.3)
            status = h.send_and_wait(policy_for(STANDIN_JOINTS, 1))
            assert status.swaps_rejected == 1 and status.last_rejection_reason.startswith("command_interface")
            policy = policy_for(STANDIN_JOINTS, 2)
            policy.command_interface = "position"
            t = time.monotonic()
            status = h.send_and_wait(policy)
            assert status.swaps_accepted == 1, status.last_rejection_reason
            time.sleep(0.3)
            driven = np.array([c.data for c in h.commands_since(t)])
            assert np.isfinite(driven).all() and np.abs(driven).max() <= 2.0
            steps = np.abs(np.diff(driven, axis=0))
            assert steps.max() <= 0.5 / RATE_HZ + 1e-9  # targets travel at most at the velocity limit
            assert not (np.abs(driven) < 1e-12).all(axis=1).any()  # never the all-zeros command
            # a live change of the swap checks keeps the interface: the next position policy is still accepted
            assert h.set_param("max_clock_skew_s", 0.4).successful
            policy = policy_for(STANDIN_JOINTS, 3)
            policy.command_interface = "position"
            status = h.send_and_wait(policy)
            assert (status.swaps_accepted, status.swaps_rejected) == (2, 1), status.last_rejection_reason
        log = log_path.read_text()
        assert "position interface" in log
    finally:
        stop_process(proc)


@pytest.mark.ros
def test_a_controller_refuses_a_checkpoint_trained_for_another_joint_order_or_interface(tmp_path):
    from warpd_ros.testing.processes import stop_process

    checkpoint = "checkpoints/reach_around/checkpoint.safetensors"
    cases = {"order": ({"joint_names": ["elbow", "shoulder", "wrist"]}, "joint order: trained as [shoulder, elbow, wrist]"),
             "interface": ({"command_interface": "position"}, "command interface: trained for velocity")}
    for name, (params, expected) in cases.items():
        proc, log_path = _controller(tmp_path, name, checkpoint=checkpoint, **params)
        try:
            assert proc.wait(timeout=30) != 0
        finally:
            stop_process(proc)
        log = log_path.read_text()
        assert "does not match this robot" in log and expected in log, log


@pytest.mark.ros
@pytest.mark.once  # plain pub/sub and a start-up check: distro-independent (the controller's position test runs on both)
def test_a_planner_plans_from_a_goal_pose_in_the_trained_frame_and_refuses_a_wrong_joint_order(tmp_path):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from warpd_ros import topics
    from warpd_ros.conversions import joint_state_msg
    from warpd_ros.msg import PolicyWeights
    from warpd_ros.qos import GOAL_QOS, SENSOR_QOS, policy_swap_qos
    from warpd_ros.testing.processes import start_module, stop_process
    from warpd_ros.testing.standin import Q as STANDIN_Q, QD, TestNode, running

    checkpoint = "checkpoints/reach_around/checkpoint.safetensors"
    log_path = tmp_path / "reversed.log"
    proc = start_module("warpd_ros.nodes.planner", {"checkpoint": checkpoint, "joint_names": ["wrist", "elbow", "shoulder"]},
                        log_path=log_path)
    try:
        assert proc.wait(timeout=60) != 0
    finally:
        stop_process(proc)
    assert "joint order: trained as [shoulder, elbow, wrist]" in log_path.read_text()

    log_path = tmp_path / "planner.log"
    proc = start_module("warpd_ros.nodes.planner", {"checkpoint": checkpoint, "replan_period_s": 0.2}, log_path=log_path)
    try:
        with running(TestNode, "test_goal_pose_robot") as robot:
            policies = []
            robot.node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, policies.append, policy_swap_qos())
            states = robot.node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
            goals = robot.node.create_publisher(PoseStamped, topics.GOAL_POSE, GOAL_QOS)
            joints = ("shoulder", "elbow", "wrist")
            robot.node.create_timer(0.02, lambda: states.publish(joint_state_msg(
                joints, [STANDIN_Q[j] for j in joints], [QD[j] for j in joints], time.time_ns())))

            def goal(frame):
                msg = PoseStamped()
                msg.header.frame_id = frame
                msg.pose.position.x, msg.pose.position.y = 0.4, 0.22
                return msg
            robot.spin_in_background()
            # a goal in another frame is not a goal in the trained one: no plan
            deadline = time.monotonic() + 30
            while proc.poll() is None and "planning for" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            # discovery first: a goal published before the planner's subscription matched is lost (on a loaded
            # machine that took longer than the second of goals below)
            assert robot.wait_until(lambda: goals.get_subscription_count() > 0, 20), log_path.read_text()
            for _ in range(10):
                goals.publish(goal("camera_link"))
                time.sleep(0.1)
            assert policies == []
            assert "ignoring goal on warpd/goal_pose: goal in frame 'camera_link'" in log_path.read_text()
            goals.publish(goal("world"))
            assert robot.wait_until(lambda: len(policies) >= 2, 10), log_path.read_text()
            assert policies[-1].command_interface == "velocity"
            assert list(policies[-1].joint_names) == list(joints)
    finally:
        stop_process(proc)

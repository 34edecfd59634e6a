"""From a rosbag to a robot, end to end and CI-sized, every step through the `warpd` command line: the
scripted expert drives the sim through ROS while `warpd record-bag` writes an MCAP bag of JointState,
commands, the goal PoseStamped and episode events -> `warpd import-bag` -> `warpd train` (a tiny config)
-> `warpd bringup hil` against the driver emulator, once with velocity and once with position commands.
The policy's skill is bench/from_bag.py's business; here every hand-over between the steps must hold."""
import numpy as np
import pytest

from warpd_core.robot_contract import read_checkpoint_contract
from warpd_ros.testing.from_bag import TINY_TRAINING, record, robot_for, run_pipeline

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]

EPISODES = 3


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """task -> one bag of it, recorded once: a robot recorded with a goal topic can be imported without it."""
    bags = {}

    def bag_of(task):
        if task not in bags:
            bags[task] = tmp_path_factory.mktemp("recording") / "bag"
            record(robot_for(task), bags[task], EPISODES)
        return bags[task]
    return bag_of


@pytest.mark.parametrize("task, goal", [("reach_around", True), ("panda_reach_around_position", True),
                                        ("reach_around", False)], ids=["velocity", "position", "no_task_features"])
def test_record_import_train_deploy(task, goal, tmp_path, recordings):
    robot = robot_for(task, goal)
    result = run_pipeline(robot, tmp_path, EPISODES, TINY_TRAINING, deploy_s=6.0, bag=recordings(task))

    counts = result["counts"]
    assert counts["/warpd/episode_events"] >= 2 * EPISODES and counts["/warpd/goal_pose"] >= EPISODES, counts
    assert counts["/joint_states"] > 100 and counts["/forward_velocity_controller/commands"] > 100, counts
    successful = int(result["import"].split("episodes: ")[1].split(" successful")[0])
    assert successful >= EPISODES, result["import"]  # the first recorded episode may be cut short, never lost

    contract = read_checkpoint_contract(result["checkpoint"])
    assert contract.joint_names == robot.joints and contract.command_interface == robot.interface
    assert contract.task_feature_names == tuple(robot.goal_features.split(",") if goal else ())
    assert contract.control_rate_hz == 50.0

    d = result["deployment"]
    assert "Traceback" not in d.log and "does not match" not in d.log, d.log[-3000:]
    last = d.statuses[-1]
    assert any(s.mode == 1 for s in d.statuses), d.log[-3000:]  # RUN: the controller drove the emulator
    assert last.swaps_accepted >= 2 and last.swaps_rejected == 0, last.last_rejection_reason
    assert len(d.commands) > 1000 and np.isfinite(d.commands).all()
    if robot.interface == "position":
        low, high = np.array(robot.limits["position_lower"]), np.array(robot.limits["position_upper"])
        assert ((d.commands >= low - 1e-9) & (d.commands <= high + 1e-9)).all()
        # the HOLD before the first policy holds the emulator's start posture; never the all-zeros command
        np.testing.assert_allclose(d.commands[0], robot.start, atol=1e-6)
        assert not (np.abs(d.commands) < 1e-12).all(axis=1).any()
    else:
        assert np.abs(d.commands).max() <= 1.5 + 1e-9
    assert np.ptp(d.joint_states, axis=0).max() > 1e-3  # the emulated arm moved under the policies

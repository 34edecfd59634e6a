"""The driver emulator's joint models: the first-order one, and a robot's own MuJoCo dynamics."""
import numpy as np
import pytest

from warpd_core.errors import WarpdError
from warpd_core.joint_models import FirstOrderJoints, ModelJoints
from warpd_core.tasks import make_task

PANDA = [f"panda_joint{i}" for i in range(1, 8)]


def run(joints, command, seconds, dt=0.002):
    for _ in range(int(round(seconds / dt))):
        q, qd = joints.step(np.asarray(command, dtype=np.float64), dt)
    return q, qd


def test_first_order_velocity_lags_then_follows_and_position_converges():
    joints = FirstOrderJoints(2, False, tau_s=0.02, position_gain=20.0, velocity_limit=1.0)
    joints.reset([0.0, 0.5])
    q, qd = run(joints, [0.5, 3.0], 0.02)  # one time constant: 63% of the way
    np.testing.assert_allclose(qd, [0.5 * (1 - np.exp(-1)), 1.0 * (1 - np.exp(-1))], rtol=1e-6)
    q, qd = run(joints, [0.5, 3.0], 0.5)
    np.testing.assert_allclose(qd, [0.5, 1.0], atol=1e-6)  # the second clipped at the velocity limit
    position = FirstOrderJoints(1, True, tau_s=0.0, position_gain=20.0, velocity_limit=10.0)
    position.reset([0.0])
    assert abs(run(position, [0.3], 1.0)[0][0] - 0.3) < 1e-6


def test_the_panda_model_tracks_velocity_commands_with_its_own_dynamics():
    joints = ModelJoints("task:panda_reach_around", PANDA)
    start = make_task("panda_reach_around").reset(0)[:7]
    joints.reset(start)
    command = np.array([0.3, -0.2, 0.0, 0.2, 0.0, 0.0, 0.5])
    q, qd = run(joints, command, 0.004)
    assert np.abs(qd - command).max() > 0.05  # it has inertia: not there within two steps
    q, qd = run(joints, command, 0.5)
    np.testing.assert_allclose(qd, command, atol=0.05)  # within its damping's steady-state error
    np.testing.assert_allclose(q - start, command * 0.504, atol=0.03)


def test_the_panda_position_model_holds_then_reaches_a_target():
    joints = ModelJoints("task:panda_reach_around_position", PANDA)
    start = make_task("panda_reach_around_position").reset(0)[:7]
    joints.reset(start)
    q, qd = run(joints, start, 0.2)
    np.testing.assert_allclose(q, start, atol=2e-3)  # holds where it was reset (gravity compensated)
    target = start + np.array([0.1, -0.1, 0.0, 0.1, 0.0, 0.05, 0.1])
    q, _ = run(joints, target, 1.0)
    np.testing.assert_allclose(q, target, atol=5e-3)


def test_a_model_without_the_joints_or_their_actuators_is_refused(tmp_path):
    with pytest.raises(WarpdError, match="not in the robot model"):
        ModelJoints("task:panda_reach_around", ["shoulder"])
    xml = tmp_path / "arm.xml"
    xml.write_text('<mujoco><worldbody><body><joint name="j1" type="hinge"/><geom size="0.1"/></body>'
                   '</worldbody></mujoco>')
    with pytest.raises(WarpdError, match="have no actuator"):
        ModelJoints(str(xml), ["j1"])

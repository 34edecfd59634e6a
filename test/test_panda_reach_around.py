"""The Franka Panda task: Franka's own model in place, ROS driver joint names, limits from the model,
an IK expert that succeeds in both modes on both command interfaces without touching the pillar, a
task that punishes averaging its modes, and perturbations that the open-loop replay cannot survive."""
import mujoco
import numpy as np
import pytest

from warpd_core.errors import WarpdError
from warpd_core.eval.runner import expert_policy, run_episode, summarize
from warpd_core.perturb.spec import PerturbationSpec
from warpd_core.tasks import make_task
from warpd_core.tasks import panda_reach_around as panda
from warpd_core.tasks.reach_around import SUCCESS_RADIUS

INTERFACES = {"panda_reach_around": "velocity", "panda_reach_around_position": "position"}
CONFIG = "config/perturbations.yaml"


@pytest.fixture(scope="module", params=list(INTERFACES))
def task(request):
    return make_task(request.param)


def test_model_is_frankas_in_place_with_ros_driver_names(task):
    spec = task.spec
    assert spec.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert spec.obs_dim == 17 and spec.action_dim == 7 and task.model.nu == 7
    # the meshes are read from the installed wheel, not from this repository
    mesh_dir = panda.franka_assets_dir() / "meshes"
    paths = task.model.paths.decode().split("\0")
    meshes = {paths_entry for paths_entry in paths if paths_entry.endswith(".stl")}
    assert meshes and all(str(mesh_dir) in m for m in meshes)
    assert {task.model.body(i).name for i in range(task.model.nbody)} >= {f"panda_link{i}" for i in range(8)}


def test_action_limits_come_from_the_model_and_frankas_velocity_limits(task):
    low, high = np.array(task.spec.action_low), np.array(task.spec.action_high)
    if INTERFACES[task.spec.name] == "velocity":
        assert np.allclose(high, panda.VELOCITY_LIMITS) and np.allclose(low, -panda.VELOCITY_LIMITS)
    else:
        ranges = np.array([task.model.joint(j).range for j in task.spec.joint_names])
        assert np.allclose(low, ranges[:, 0]) and np.allclose(high, ranges[:, 1])
        assert high[3] == pytest.approx(-0.4)  # Franka's joint 4 never straightens
    ctrl = task.model.actuator_ctrlrange
    assert np.allclose(ctrl[:, 0], low) and np.allclose(ctrl[:, 1], high)


def test_ik_reaches_targets_with_the_hand_down():
    ik = panda.DifferentialIK(panda.build_model())
    for target in (panda.START, panda.GOAL, [0.40, 0.1, 0.3]):
        q = ik.solve(np.asarray(target))
        assert np.linalg.norm(ik.position(q) - target) < 1e-3
        assert (ik.low <= q).all() and (q <= ik.high).all()
        hand_axis = ik.data.site_xmat[ik.site].reshape(3, 3)[:, 2]
        assert hand_axis[2] < -0.99  # pointing down


def test_reset_is_reproducible_from_the_seed(task):
    a, b, c = task.reset(3), task.reset(3), task.reset(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert task.mode_reached() is None and task.distance() > 0.4


def test_expert_succeeds_in_both_modes_without_touching_the_pillar(task):
    for mode in ("near", "far"):
        for seed in range(3):
            metrics, _ = run_episode(task, lambda t, s, m=mode: t.expert(mode=m), seed)
            assert metrics.success and metrics.mode == mode, (task.spec.name, mode, seed, metrics)
            assert task.contacts_with_pillar == 0


def test_averaging_the_two_modes_fails(task):
    """The mean of the near and far experts' commands drives the hand into the pillar."""
    interface = INTERFACES[task.spec.name]
    near, far = panda.PandaReachAroundExpert("near", interface), panda.PandaReachAroundExpert("far", interface)
    results = []
    for seed in range(4):
        results.append(run_episode(task, lambda t, s: (lambda o: 0.5 * (near(o) + far(o))), seed)[0])
        assert task.contacts_with_pillar > 0  # it ran into the pillar
    assert summarize(results)["success_rate"] == 0.0
    assert all(m.mode is None for m in results)  # and never got past it


def test_success_is_the_end_effector_within_3_cm(task):
    task.reset(0)
    result = task.step(task.observe()[:7] if INTERFACES[task.spec.name] == "position" else np.zeros(7))
    assert result.success == (result.info["distance"] < SUCCESS_RADIUS) and not result.success
    assert result.obs.shape == (17,) and result.obs.dtype == np.float32
    ee = task.effector_position()
    goal = task.scene_markers()[1]
    assert goal.name == "goal" and result.info["distance"] == pytest.approx(np.linalg.norm(ee - goal.position))


def test_level_one_defeats_open_loop_replay_but_not_the_closed_loop_expert():
    task = make_task("panda_reach_around")
    level_one = PerturbationSpec.from_yaml(CONFIG).at_level(1.0)
    replay_perturbed, expert_perturbed = [], []
    for seed in range(8):
        _, demo = run_episode(task, expert_policy, seed, record=True)
        replay = lambda t, s, a=demo.actions: (lambda o, it=iter(a): next(it, np.zeros(7)))  # noqa: E731
        assert run_episode(task, replay, seed)[0].success  # the replay is a faithful copy
        replay_perturbed.append(run_episode(task, replay, seed, level_one)[0])
        expert_perturbed.append(run_episode(task, expert_policy, seed, level_one)[0])
    assert summarize(replay_perturbed)["success_rate"] <= 0.5  # the world pushed back
    assert summarize(expert_perturbed)["success_rate"] >= 0.85  # reacting copes


def test_pushes_move_the_arm():
    task = make_task("panda_reach_around")
    task.reset(0)
    q0 = task.data.qpos[:7].copy()
    task.data.xfrc_applied[task.push_bodies()[-1], :3] = [0.0, 20.0, 0.0]
    for _ in range(10):
        task.step(np.zeros(7))
    assert np.abs(task.data.qpos[:7] - q0).max() > 0.02


def test_missing_franka_assets_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(panda.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WarpdError, match="Franka Panda model is not installed") as info:
        panda.franka_assets_dir()
    assert "gymnasium-robotics" in info.value.hint


def test_the_arm_touches_nothing_but_air_on_the_experts_path(task):
    # no contacts between the arm's own links or with the floor: each would cost solver work every
    # substep and slow the data collection down
    task.reset(1)
    for _ in range(20):
        task.step(task.expert(mode="far")(task.observe()))
    self_contacts = [c for c in task.data.contact[: task.data.ncon]
                     if task.model.geom_bodyid[c.geom1] != 0 and task.model.geom_bodyid[c.geom2] != 0]
    assert not self_contacts
    assert mujoco.mj_name2id(task.model, mujoco.mjtObj.mjOBJ_GEOM, "pillar") >= 0

"""The default task: kinematics, reproducibility, a successful bimodal expert, and a task that
really punishes averaging its two modes."""
import numpy as np
import pytest

from warpd_core.errors import WarpdError
from warpd_core.eval.runner import expert_policy, run_episode, summarize
from warpd_core.tasks import DEFAULT_TASK, make_task
from warpd_core.tasks.reach_around import (
    SPEC,
    SUCCESS_RADIUS,
    ReachAroundExpert,
    fingertip_jacobian,
    fingertip_xy,
)


@pytest.fixture(scope="module")
def task():
    return make_task("reach_around")


def test_default_task_is_reach_around_with_joint_space_io(task):
    assert DEFAULT_TASK == "reach_around"
    assert task.spec.obs_dim == 8 and task.spec.action_dim == 3
    assert task.spec.joint_names == ("shoulder", "elbow", "wrist") and task.model.nu == 3
    assert task.spec.max_steps * task.spec.control_dt <= 10.0
    assert set(task.spec.modes) == {"near", "far"}


def test_analytic_kinematics_match_mujoco(task):
    for seed in range(5):
        obs = task.reset(seed)
        assert np.allclose(fingertip_xy(obs[:3]), task.tip_xy(), atol=1e-5)
    q, eps = np.array([-0.9, 1.2, 0.7]), 1e-6
    numeric = np.stack([(fingertip_xy(q + eps * e) - fingertip_xy(q - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
    assert np.allclose(fingertip_jacobian(q), numeric, atol=1e-8)


def test_reset_is_reproducible_from_the_seed(task):
    a, b, c = task.reset(3), task.reset(3), task.reset(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert task.mode_reached() is None and task.distance() > SUCCESS_RADIUS


def test_expert_succeeds_in_both_modes_and_takes_the_mode_it_chose(task):
    for mode in ("near", "far"):
        for seed in range(4):
            metrics, _ = run_episode(task, lambda t, s, m=mode: t.expert(mode=m), seed)
            assert metrics.success and metrics.mode == mode, (mode, seed, metrics)


def test_expert_mode_frequencies_follow_the_configuration():
    biased = make_task("reach_around", mode_probs={"near": 0.8, "far": 0.2})
    modes = [biased.expert(rng=np.random.default_rng(s)).mode for s in range(400)]
    assert 0.74 < modes.count("near") / 400 < 0.86
    with pytest.raises(ValueError, match="sum to 1"):
        make_task("reach_around", mode_probs={"near": 0.8, "far": 0.8})


def test_success_predicate_is_a_distance_threshold(task):
    task.reset(0)
    result = task.step(np.zeros(3))
    assert result.success == (result.info["distance"] < SUCCESS_RADIUS) and not result.success
    assert result.obs.shape == (8,) and result.obs.dtype == np.float32


def test_averaging_the_two_modes_fails(task):
    """The mean of the near and far experts' commands drives the finger into the pillar."""
    near, far = ReachAroundExpert("near"), ReachAroundExpert("far")
    results = [run_episode(task, lambda t, s: (lambda o: 0.5 * (near(o) + far(o))), seed)[0] for seed in range(6)]
    assert summarize(results)["success_rate"] == 0.0
    assert all(m.mode is None for m in results)  # it never gets past the pillar


def test_unknown_task_name_is_a_clear_error():
    with pytest.raises(WarpdError, match="unknown task 'reach_arund'") as info:
        make_task("reach_arund")
    assert "did you mean reach_around" in info.value.hint


def test_expert_over_many_seeds(task):
    results = [run_episode(task, expert_policy, seed)[0] for seed in range(40)]
    summary = summarize(results)
    assert summary["success_rate"] >= 0.95
    assert set(summary["mode_counts"]) == {"near", "far"}
    assert SPEC.name == "reach_around"


@pytest.mark.parametrize("task", ["reach_around", "panda_reach_around"])
def test_the_mode_of_an_effector_path_is_the_mode_the_episode_reached(task):
    """What warpd_episodes computes on a robot (the path by forward kinematics) agrees with the sim's own rule."""
    from warpd_core.tasks import make_task

    env = make_task(task)
    for seed, mode in ((3, "near"), (4, "far")):
        obs = env.reset(seed)
        expert = env.expert(mode)
        path = [env.effector_position()]
        for _ in range(env.spec.max_steps):
            result = env.step(expert(obs))
            obs = result.obs
            path.append(env.effector_position())
            if result.done:
                break
        assert env.mode_reached() == mode
        assert env.mode_of_path(np.array(path)) == mode
        assert env.mode_of_path(np.array(path[:2])) is None  # not past the pillar yet

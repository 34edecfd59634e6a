"""Metaworld MT10 tasks behave like any other warpd task: reproducible resets, solvable by their
experts, perturbable through the task hooks, and listed by the registry without importing Metaworld."""
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from conftest import REPO, run_module
from warpd_core.errors import WarpdError
from warpd_core.tasks import make_task, task_names
from warpd_core.tasks.metaworld_tasks import MT10

NAMES = ("metaworld/reach-v3", "metaworld/push-v3", "metaworld/door-open-v3", "metaworld/drawer-open-v3")
GOAL = slice(36, 39)


@pytest.fixture(scope="module", params=NAMES)
def task(request):
    task = make_task(request.param)
    yield task
    task.close()


def _run_expert(task, seed):
    obs = task.reset(seed)
    expert = task.expert(rng=np.random.default_rng(seed))
    for _ in range(task.spec.max_steps):
        result = task.step(expert(obs))
        obs = result.obs
        if result.done:
            return result


def test_all_mt10_names_registered_without_importing_metaworld():
    assert len(MT10) == 10 and set(MT10) <= set(task_names())
    assert "metaworld/push-v3" in MT10 and "metaworld/window-close-v3" in MT10 and "mt10" not in task_names()
    script = "import sys, warpd_core.tasks.registry as r; r.task_names(); print('metaworld' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_unknown_metaworld_task_names_the_known_ones():
    with pytest.raises(WarpdError) as err:
        make_task("metaworld/nope-v3")
    assert "metaworld/push-v3" in err.value.hint and "reach_around" in err.value.hint


def test_spec_and_model(task):
    spec = task.spec
    assert spec.name in NAMES and "metaworld" in spec.version
    assert (spec.obs_dim, spec.action_dim) == (39, 4) and len(task.observe()) == 39
    assert spec.obs_names[:3] == ("hand_x", "hand_y", "hand_z") and spec.obs_names[GOAL] == ("goal_x", "goal_y", "goal_z")
    assert spec.action_names == ("dx", "dy", "dz", "grip")
    assert spec.joint_names[:7] == tuple(f"right_j{i}" for i in range(7))
    assert all(task.model.joint(name).id >= 0 for name in spec.joint_names)
    assert spec.control_dt == pytest.approx(0.0125) and spec.max_steps == 500 and spec.modes == ("default",)
    assert isinstance(task.model, mujoco.MjModel) and isinstance(task.data, mujoco.MjData)


def test_reset_is_reproducible_from_the_seed(task):
    first = task.reset(3)
    _run_expert(task, 8)  # history must not matter
    assert np.array_equal(task.reset(3), first)
    assert not np.allclose(task.reset(4)[GOAL], first[GOAL])


def test_reset_observation_matches_the_layout_just_drawn(task):
    """Metaworld's own first observation shows moved furniture (drawer, window) where it was before."""
    task.reset(5)
    obs = task.reset(6)
    after_still_step = task.step(np.zeros(4)).obs
    assert np.array_equal(obs[4:7], obs[22:25])  # previous-frame copy starts equal to the current frame
    assert np.linalg.norm(after_still_step[4:7] - obs[4:7]) < 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_expert_solves_the_task(task, seed):
    task.reset(seed)
    assert task.mode_reached() is None
    result = _run_expert(task, seed)
    assert result.success and result.done
    assert result.info["distance"] == pytest.approx(task.distance()) and task.distance() < 0.1
    assert task.mode_reached() == "default"


def test_expert_action_and_name(task):
    obs = task.reset(0)
    expert = task.expert()
    action = expert(obs)
    assert action.dtype == np.float64 and action.shape == (4,) and np.all(np.abs(action) <= 1.0)
    assert np.array_equal(obs, task.observe())  # the policy must not edit the caller's observation
    assert expert.name.startswith("Sawyer") and expert.name.endswith("V3Policy")
    with pytest.raises(WarpdError):
        task.expert(mode="far")


def test_displace_target_moves_the_goal_in_the_observation(task):
    obs = task.reset(2)
    distance = task.distance()
    task.displace_target(np.array([0.05, -0.04, 0.0]))
    moved = task.observe()
    assert moved[GOAL] == pytest.approx(obs[GOAL] + [0.05, -0.04, 0.0])
    if task.spec.name in ("metaworld/door-open-v3", "metaworld/drawer-open-v3"):  # furniture moves with its goal
        assert moved[4:7] == pytest.approx(obs[4:7] + [0.05, -0.04, 0.0])
        assert task.distance() == pytest.approx(distance)
    else:
        assert moved[4:7] == pytest.approx(obs[4:7]) and task.distance() != pytest.approx(distance)
    assert task.step(np.zeros(4)).obs[GOAL] == pytest.approx(moved[GOAL])


def test_displaced_goal_outside_the_sampling_box_is_not_clipped():
    task = make_task("metaworld/push-v3")
    goal = task.reset(0)[GOAL]
    task.displace_target([0.0, 0.3, 0.2])  # beyond the env's goal box in y; z ignored for push
    assert task.step(np.zeros(4)).obs[GOAL] == pytest.approx(goal + [0.0, 0.3, 0.0])
    task.close()


def test_push_bodies_and_plot_xy(task):
    bodies = task.push_bodies()
    assert bodies[0] == task.model.body("hand").id
    assert all(0 < b < task.model.nbody for b in bodies)
    obs = np.stack([task.reset(0), task.step(np.ones(4)).obs])
    assert np.array_equal(task.plot_xy(obs), obs[:, :2])


def test_expert_benchmark_tiny_run(tmp_path):
    out = tmp_path / "B.md"
    proc = run_module("bench.experts", "--tasks", "reach_around", "metaworld/reach-v3", "--seeds", "2",
                      "--default-seeds", "10", "--out", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "<!-- bench:experts:start -->" in text
    assert "| reach_around | 10 |" in text and "| metaworld/reach-v3 | 2 |" in text
    assert "reach_around expert ≥ 95% over 10 seeds" in text

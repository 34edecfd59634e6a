"""The perturbation spec: YAML in, clear errors for bad YAML, reproducible events, real effects,
and a task that needs reactivity (the acceptance check of the tasks issue)."""
from dataclasses import replace

import numpy as np
import pytest

from conftest import REPO
from warpd_core.errors import WarpdError
from warpd_core.eval.runner import expert_policy, run_episode, summarize
from warpd_core.perturb import PerturbationSpec, Perturber
from warpd_core.tasks import make_task

CONFIG = REPO / "config" / "perturbations.yaml"


@pytest.fixture(scope="module")
def task():
    return make_task("reach_around")


def test_shipped_yaml_is_the_level_one_default():
    assert PerturbationSpec.from_yaml(CONFIG) == PerturbationSpec(level=1.0)


@pytest.mark.parametrize("text, message", [
    ("level: 2", "level must be a number in [0, 1]"),
    ("level: high", "level must be a number in [0, 1]"),
    ("pushes: {force: 1}", "unknown key(s) ['pushes']"),
    ("push: {strength: 1}", "unknown key(s) ['strength'] in push"),
    ("push: {force: -3}", "push.force must be a finite number >= 0"),
    ("push: 5", "push must be a mapping, null or false"),
    ("target_shift: {at_fraction: [0.8, 0.2]}", "at_fraction must be [low, high]"),
    ("action_delay: {max_steps: 1.5}", "max_steps must be an integer"),
    ("seed: 1.5", "seed must be an integer"),
    ("[1, 2]", "expected a mapping at the top level"),
    ("level: [", "is not valid YAML"),
])
def test_bad_yaml_gets_a_clear_error(yaml_file, text, message):
    with pytest.raises(WarpdError) as info:
        PerturbationSpec.from_yaml(yaml_file(text))
    assert message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(WarpdError, match="cannot read perturbation spec"):
        PerturbationSpec.from_yaml(tmp_path / "nope.yaml")


def test_components_can_be_switched_off():
    spec = PerturbationSpec.from_dict({"level": 0.5, "push": None, "dynamics": False, "obs_noise": True})
    assert spec.push is None and spec.dynamics is None and spec.obs_noise is not None


def _trajectory(task, seed, spec):
    metrics, traj = run_episode(task, expert_policy, seed, spec, record=True)
    return metrics, traj


def test_rollouts_are_reproducible_from_task_level_and_seed(task):
    spec = PerturbationSpec(level=0.7, seed=5)
    m1, t1 = _trajectory(task, 11, spec)
    m2, t2 = _trajectory(task, 11, spec)
    assert np.array_equal(t1.observations, t2.observations) and m1 == m2
    _, t3 = _trajectory(task, 11, replace(spec, seed=6))
    assert not np.array_equal(t1.observations, t3.observations)


def test_level_zero_changes_nothing(task):
    _, plain = _trajectory(task, 2, None)
    _, zero = _trajectory(task, 2, PerturbationSpec(level=0.0, seed=9))
    assert np.array_equal(plain.observations, zero.observations)


def test_event_timing_does_not_depend_on_level(task):
    low, high = Perturber(task, PerturbationSpec(level=0.2)), Perturber(task, PerturbationSpec(level=1.0))
    task.reset(4)
    low.reset(4)
    high.reset(4)
    assert [(e.start_step, e.body) for e in low.pushes] == [(e.start_step, e.body) for e in high.pushes]
    assert np.allclose(high.pushes[0].force, 5 * low.pushes[0].force)
    assert low.shift_step == high.shift_step


@pytest.mark.parametrize("component", ["push", "target_shift", "obs_noise", "action_noise", "action_delay",
                                       "dynamics"])
def test_each_component_alone_changes_the_rollout(task, component):
    only = PerturbationSpec.from_dict({"level": 1.0, **{c: None for c in
                                        ("push", "target_shift", "obs_noise", "action_noise", "action_delay",
                                         "dynamics") if c != component}})
    _, plain = _trajectory(task, 1, None)
    _, perturbed = _trajectory(task, 1, only)
    n = min(len(plain.true_observations), len(perturbed.true_observations))
    assert not np.allclose(plain.true_observations[:n], perturbed.true_observations[:n])


def test_dynamics_are_restored_after_an_episode(task):
    mass = task.model.body_mass.copy()
    run_episode(task, expert_policy, 0, PerturbationSpec(level=1.0))
    assert np.array_equal(task.model.body_mass, mass)
    assert not task.data.xfrc_applied.any()


class OpenLoopReplay:
    """Replays recorded commands, ignoring observations: the naive non-reactive baseline."""

    def __init__(self, actions):
        self.actions, self.i = actions, 0

    def __call__(self, obs):
        action = self.actions[self.i] if self.i < len(self.actions) else np.zeros_like(self.actions[0])
        self.i += 1
        return action


def test_level_one_defeats_open_loop_replay_but_not_the_closed_loop_expert(task):
    level_one = PerturbationSpec.from_yaml(CONFIG).at_level(1.0)
    seeds = range(20)
    replay_plain, replay_perturbed, expert_perturbed = [], [], []
    for seed in seeds:
        _, demo = run_episode(task, expert_policy, seed, record=True)
        replay = lambda t, s, a=demo.actions: OpenLoopReplay(a)  # noqa: E731
        replay_plain.append(run_episode(task, replay, seed)[0])
        replay_perturbed.append(run_episode(task, replay, seed, level_one)[0])
        expert_perturbed.append(run_episode(task, expert_policy, seed, level_one)[0])
    assert summarize(replay_plain)["success_rate"] == 1.0  # the replay is a faithful copy
    assert summarize(replay_perturbed)["success_rate"] <= 0.5  # the world pushed back
    assert summarize(expert_perturbed)["success_rate"] >= 0.85  # reacting copes

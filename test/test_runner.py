"""The episode runner: metrics, re-planning, batched lockstep and multi-process sweeps agree."""
import math

import numpy as np
import pytest

from warpd_core.eval.runner import expert_policy, run_batch, run_episode, run_sweep, summarize
from warpd_core.perturb import PerturbationSpec
from warpd_core.tasks import make_task
from warpd_core.tasks.reach_around import ReachAroundExpert


@pytest.fixture(scope="module")
def task():
    return make_task("reach_around")


def test_metrics_of_a_successful_episode(task):
    metrics, traj = run_episode(task, expert_policy, 0, record=True)
    assert metrics.success and metrics.steps == len(traj.actions)
    assert metrics.time_to_success == pytest.approx(metrics.steps * task.spec.control_dt)
    assert metrics.min_distance <= metrics.final_distance < 0.03
    assert metrics.mode in ("near", "far") and metrics.action_smoothness > 0


def test_metrics_of_a_failed_episode(task):
    metrics, _ = run_episode(task, lambda t, s: (lambda o: np.zeros(3)), 0)
    assert not metrics.success and metrics.steps == task.spec.max_steps
    assert math.isnan(metrics.time_to_success) and metrics.mode is None and metrics.action_smoothness == 0


class PlanEveryK:
    """A re-planner that hands out the expert for the mode it was built with, counting plans."""

    def __init__(self, mode):
        self.mode, self.plans = mode, 0

    def plan(self, obs):
        self.plans += 1
        return ReachAroundExpert(self.mode)


def test_replanning_every_k_steps(task):
    planner = PlanEveryK("far")
    metrics, _ = run_episode(task, lambda t, s: planner, 0, replan_every=16)
    assert metrics.success and metrics.replans == planner.plans == math.ceil(metrics.steps / 16)
    with pytest.raises(ValueError, match="replan_every"):
        run_episode(task, lambda t, s: PlanEveryK("far"), 0)


def _batched_far_expert(obs_batch):
    expert = ReachAroundExpert("far")
    return np.stack([expert(o) for o in obs_batch])


def test_batched_lockstep_matches_one_by_one(task):
    seeds = [0, 1, 2, 3]
    spec = PerturbationSpec(level=0.5)
    batch = run_batch("reach_around", _batched_far_expert, seeds, spec)
    single = [run_episode(task, lambda t, s: ReachAroundExpert("far"), s, spec)[0] for s in seeds]
    assert batch == single


def test_sweep_in_two_processes_matches_in_process():
    kwargs = dict(seeds=range(4), levels=(0.0, 1.0))
    serial = run_sweep("reach_around", expert_policy, workers=1, **kwargs)
    parallel = run_sweep("reach_around", expert_policy, workers=2, **kwargs)
    assert serial == parallel and len(serial) == 8
    assert {m.level for m in serial} == {0.0, 1.0}
    assert summarize(serial)["success_rate"] >= 0.75


def test_an_execution_applies_a_controllers_limits_to_every_action(task):
    """In-process evaluation beside a deployment: the actions run through the deployed controller's limits."""
    from warpd_core.runtime.command_limits import JointLimits
    from warpd_core.runtime.command_pipeline import CommandPipeline, LimitedExecution

    limits = JointLimits.create(task.spec.joint_names, acceleration_limit=2.0)
    execution = LimitedExecution(CommandPipeline(limits, action_limit=1.5, dt=task.spec.control_dt))
    _, traj = run_episode(task, expert_policy, 0, record=True, execution=execution)
    _, free_traj = run_episode(task, expert_policy, 0, record=True)
    step = 2.0 * task.spec.control_dt
    assert np.abs(traj.actions[0]).max() <= step + 1e-12  # from rest
    assert np.abs(np.diff(traj.actions, axis=0)).max() <= step + 1e-12
    assert np.abs(np.diff(free_traj.actions, axis=0)).max() > 5 * step  # the expert alone is not this smooth

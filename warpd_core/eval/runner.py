"""Rolling policies out in tasks under perturbations, and measuring what happened.

Three ways to run, one set of metrics:
- `run_episode`: one task, one policy, one seed. The policy is either a callable obs -> action,
  or a *re-planner* (an object with `plan(obs) -> callable`, like WARPD's planner) that is asked
  for a fresh closed-loop policy every `replan_every` steps.
- `run_batch`: B copies of a task in lockstep with one *batched* policy (B, obs) -> (B, action),
  so a torch policy makes one call per step for the whole batch.
- `run_sweep`: many (seed, level) episodes spread over worker processes, for evaluation sweeps;
  `iter_jobs` runs any mix of tasks, policies and horizons that way and yields episodes as they end.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from warpd_core.perturb.perturber import Perturber
from warpd_core.perturb.spec import PerturbationSpec
from warpd_core.runtime.command_pipeline import LimitedExecution
from warpd_core.tasks.base import Task
from warpd_core.tasks.registry import make_task


class Replanner(Protocol):
    def plan(self, obs: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        ...


# A policy factory builds the policy for one episode: (task right after reset, seed) -> policy.
PolicyFactory = Callable[[Task, int], "Callable[[np.ndarray], np.ndarray] | Replanner"]


@dataclass
class EpisodeMetrics:
    task: str
    seed: int
    level: float
    success: bool
    steps: int
    time_to_success: float  # seconds of task time; nan when not successful
    mode: str | None  # task.mode_reached() at the end
    min_distance: float  # closest the task's distance() came to 0
    final_distance: float
    action_smoothness: float  # mean squared change between consecutive commands (lower = smoother)
    replans: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Trajectory:
    observations: np.ndarray  # (T, obs_dim), what the policy saw (after observation noise)
    actions: np.ndarray  # (T, action_dim), what the policy commanded (before noise and delay)
    true_observations: np.ndarray  # (T, obs_dim), noise-free


def expert_policy(task: Task, seed: int):
    """Policy factory for the task's scripted expert (mode drawn from the seed)."""
    return task.expert(rng=np.random.default_rng(seed))


class _Tracker:
    """Accumulates the metrics of one episode."""

    def __init__(self, task: Task):
        self.task, self.min_distance, self.success_step = task, task.distance(), None
        self.prev_action, self.sq_changes, self.steps = None, [], 0

    def update(self, action, result) -> None:
        self.steps += 1
        self.min_distance = min(self.min_distance, float(result.info.get("distance", self.task.distance())))
        if self.prev_action is not None:
            self.sq_changes.append(float(np.sum((action - self.prev_action) ** 2)))
        self.prev_action = np.asarray(action, dtype=np.float64)
        if result.success and self.success_step is None:
            self.success_step = self.steps

    def metrics(self, seed, level, replans=0) -> EpisodeMetrics:
        dt = self.task.spec.control_dt
        return EpisodeMetrics(
            task=self.task.spec.name, seed=int(seed), level=float(level), success=self.success_step is not None,
            steps=self.steps, time_to_success=self.success_step * dt if self.success_step else math.nan,
            mode=self.task.mode_reached(), min_distance=self.min_distance, final_distance=self.task.distance(),
            action_smoothness=float(np.mean(self.sq_changes)) if self.sq_changes else 0.0, replans=replans)


def run_episode(task: Task, make_policy: PolicyFactory, seed: int,
                perturbation: PerturbationSpec | None = None, replan_every: int | None = None,
                perturber: Perturber | None = None, record: bool = False,
                execution: LimitedExecution | None = None) -> tuple[EpisodeMetrics, Trajectory | None]:
    """Roll out one episode. Pass a `perturber` to reuse one across episodes of the same task, an `execution`
    to execute each action within a deployed controller's limits (at the observed joint positions)."""
    spec = perturbation or PerturbationSpec.none()
    perturber = perturber or Perturber(task, spec)
    true_obs = task.reset(seed)
    perturber.reset(seed)
    if execution is not None:
        execution.reset()
        n_joints = execution.pipeline.n_joints  # obs = [q, qd, ...] on a joint-space task
    policy = make_policy(task, seed)
    replanner = policy if hasattr(policy, "plan") else None
    if replanner is not None and not replan_every:
        raise ValueError("a re-planning policy needs replan_every (steps between plans)")
    tracker, replans, seen, acts, trues = _Tracker(task), 0, [], [], []
    for step in range(task.spec.max_steps):
        obs = perturber.observe(true_obs)
        if replanner is not None and step % replan_every == 0:
            policy_now, replans = replanner.plan(obs), replans + 1
        action = np.asarray((policy_now if replanner is not None else policy)(obs), dtype=np.float64)
        if execution is not None:
            executed = execution.execute(action, obs[:n_joints])
            action = action if executed is None else executed  # None: not finite, left for the metrics to show
        if record:
            seen.append(obs), acts.append(action), trues.append(true_obs)
        perturber.before_step(step)
        result = task.step(perturber.act(action))
        tracker.update(action, result)
        true_obs = result.obs
        if result.done:
            break
    perturber.restore()
    trajectory = Trajectory(np.array(seen), np.array(acts), np.array(trues)) if record else None
    return tracker.metrics(seed, spec.level, replans), trajectory


def run_batch(task_name: str, batch_policy: Callable[[np.ndarray], np.ndarray], seeds: Iterable[int],
              perturbation: PerturbationSpec | None = None, task_kwargs: dict | None = None) -> list[EpisodeMetrics]:
    """Run len(seeds) episodes in lockstep; `batch_policy` maps (B, obs_dim) -> (B, action_dim).

    The batch keeps its shape (row i is always episode i, as a torch policy wants); rows of
    finished episodes carry their last observation and their actions are ignored.
    """
    seeds = list(seeds)
    spec = perturbation or PerturbationSpec.none()
    tasks = [make_task(task_name, **(task_kwargs or {})) for _ in seeds]
    perturbers = [Perturber(t, spec) for t in tasks]
    obs = [t.reset(s) for t, s in zip(tasks, seeds)]
    for p, s in zip(perturbers, seeds):
        p.reset(s)
    trackers = [_Tracker(t) for t in tasks]
    live = np.ones(len(seeds), dtype=bool)
    for step in range(tasks[0].spec.max_steps if tasks else 0):
        if not live.any():
            break
        seen = np.stack([perturbers[i].observe(obs[i]) if live[i] else obs[i] for i in range(len(seeds))])
        actions = np.asarray(batch_policy(seen), dtype=np.float64)
        for i in np.flatnonzero(live):
            perturbers[i].before_step(step)
            result = tasks[i].step(perturbers[i].act(actions[i]))
            trackers[i].update(actions[i], result)
            obs[i] = result.obs
            live[i] = not result.done
    for p in perturbers:
        p.restore()
    return [tr.metrics(s, spec.level) for tr, s in zip(trackers, seeds)]


# ---- process-parallel sweeps -------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run, possibly in another process: everything in it must be picklable."""

    task: str
    make_policy: PolicyFactory
    seed: int
    perturbation: PerturbationSpec | None = None
    replan_every: int | None = None
    task_kwargs: dict | None = None


_TASKS: dict = {}  # per process: each (task, kwargs) is built once and reused by its episodes


def run_job(job: EpisodeJob) -> EpisodeMetrics:
    key = (job.task, repr(sorted((job.task_kwargs or {}).items())))
    if key not in _TASKS:
        _TASKS[key] = make_task(job.task, **(job.task_kwargs or {}))
    metrics, _ = run_episode(_TASKS[key], job.make_policy, job.seed, job.perturbation, job.replan_every)
    return metrics


def _run_indexed(item):
    index, job = item
    return index, run_job(job)


def _init_worker():
    # Ctrl-C is the parent's to handle (it stops the pool); workers just stop, without tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Workers already split the cores between them: one torch thread each avoids oversubscription.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def iter_jobs(jobs: Iterable[EpisodeJob], workers: int = 1,
              ordered: bool = True) -> Iterator[tuple[int, EpisodeMetrics]]:
    """Run `jobs` over `workers` processes (1 = in this process), yielding (index, metrics) per episode.

    With ordered=False results come as soon as each episode ends, so a caller can save every
    finished episode before the sweep is over (what makes `warpd eval` resumable).
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_run_indexed, enumerate(jobs))
        return
    ctx = mp.get_context("spawn")  # MuJoCo and torch are not fork-safe with threads running
    with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
        if ordered:
            yield from pool.imap(_run_indexed, enumerate(jobs), chunksize=max(1, len(jobs) // (8 * workers)))
        else:
            yield from pool.imap_unordered(_run_indexed, enumerate(jobs))


def run_sweep(task_name: str, make_policy: PolicyFactory, seeds: Iterable[int], levels: Iterable[float] = (0.0,),
              base_spec: PerturbationSpec | None = None, replan_every: int | None = None, workers: int = 1,
              task_kwargs: dict | None = None, progress: bool = False) -> list[EpisodeMetrics]:
    """Every (level, seed) pair once, over `workers` processes (1 = in this process).

    `make_policy` must be picklable (a module-level function or class) when workers > 1.
    """
    base = base_spec or PerturbationSpec()
    jobs = [EpisodeJob(task_name, make_policy, seed, base.at_level(level), replan_every, task_kwargs)
            for level in levels for seed in seeds]
    results = _maybe_progress(iter_jobs(jobs, workers), len(jobs), progress, task_name)
    return [metrics for _, metrics in results]


def _maybe_progress(iterator, total, progress, label):
    if not progress:
        return iterator
    from tqdm import tqdm

    return tqdm(iterator, total=total, desc=label, unit="ep")


def summarize(metrics: list[EpisodeMetrics]) -> dict:
    """Success rate, mean time to success, and mode shares of a list of episodes."""
    n = len(metrics)
    successes = [m for m in metrics if m.success]
    modes: dict[str, int] = {}
    for m in successes:
        modes[str(m.mode)] = modes.get(str(m.mode), 0) + 1
    return {
        "episodes": n,
        "success_rate": len(successes) / n if n else math.nan,
        "mean_time_to_success": float(np.mean([m.time_to_success for m in successes])) if successes else math.nan,
        "mode_counts": modes,
    }

"""Collecting demonstrations: roll out a task's scripted expert and append the episodes to a dataset.

`collect_dataset` is what `warpd collect` and training (for a missing dataset) both call.

Episode i is fully determined by the seed S+i (start pose, goal, and the expert's mode draw), so
a run can be interrupted and resumed: calling again with the same settings skips the episode
indices the dataset already holds and produces exactly the dataset an uninterrupted run would
have.

SIGINT (Ctrl-C) and SIGTERM only set a flag; the rollout stops at the next step, the unfinished
episode is dropped, and the writer flushes every finished one before returning. Nothing is
interrupted halfway through a file write, so no finished episode is lost. A second signal gives
up at once.

Perturbed demonstrations (`perturbations`, a PerturbationSpec): the expert is closed loop, so
when pushes, a moving goal, action noise or other masses knock it off its nominal path it shows
how to recover; a policy learned from clean demonstrations only ever sees that path, and under
the same perturbations at deployment it meets states (and goals) it was never shown. Episode i
runs at a level drawn uniformly in [0, spec.level] from its seed, so the dataset mixes calm and
hard episodes. The expert acts on, and the dataset records, the true observation (observation
noise is a sensing effect, not something to demonstrate), and each row's action is the one the
expert commanded; what the arm executed may differ by the action noise and delay.
"""
from __future__ import annotations

import json
import signal
import sys
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.perturb.perturber import Perturber
from warpd_core.perturb.spec import PerturbationSpec


@dataclass
class CollectResult:
    task: str
    seeds: range  # seeds of the episodes asked for
    new: int  # episodes this call added
    records: list  # the records of every episode the dataset now holds
    path: Path
    signum: int | None  # the signal that stopped the call early, or None

    def report(self) -> str:
        """What `warpd collect` prints when done: counts, success, modes, where the dataset is."""
        from warpd_core.data.stats import modes_line, success_line

        steps = sum(r.length for r in self.records)
        return "\n".join([f"collected {self.new} new episodes of {self.task} (seeds {self.seeds.start}.."
                          f"{self.seeds.stop - 1})", success_line(self.records), modes_line(self.records),
                          f"dataset: {self.path.resolve()} ({len(self.records)} episodes, {steps} steps)"])

    def interruption(self) -> str | None:
        if self.signum is None:
            return None
        return (f"interrupted by {signal.Signals(self.signum).name}: saved all {self.new} finished episodes of "
                "this run; run the same command again to continue")


def collect_dataset(task: str, out: str | Path, episodes: int, seed: int = 0,
                    mode_probs: dict[str, float] | None = None, hold_steps: int = 0, flush_every: int = 10,
                    successful_only: bool = False, created_by: str = "warpd collect",
                    perturbations: PerturbationSpec | None = None) -> CollectResult:
    """Make sure episodes 0..episodes-1 of `task` are in the dataset at `out` (created or continued);
    with `perturbations`, each episode under its own level in [0, perturbations.level]."""
    from tqdm import tqdm

    from warpd_core.data import DatasetInfo, DatasetWriter

    env = _make_task(task, mode_probs)
    settings = {"seed": seed, "mode_probs": mode_probs, "hold_steps": hold_steps}
    recorded = recorded_perturbations(perturbations)
    if recorded is not None:
        settings["perturbations"] = recorded
    stop = StopRequest()
    info = DatasetInfo.from_task_spec(env.spec, created_by)
    with closing(env), stop.handling(), DatasetWriter(out, info, flush_every=flush_every) as writer:
        _check_same_settings(writer.records, settings, out)
        todo = [i for i in range(episodes) if i not in writer.episode_indices]
        with tqdm(total=episodes, initial=episodes - len(todo), desc="collect", unit="ep", file=sys.stderr) as bar:
            new = _collect(env, todo, settings, successful_only, writer, stop, bar)
    return CollectResult(task, range(seed, seed + episodes), new, writer.records, writer.path, stop.signum)


def _collect(task, todo, settings, successful_only, writer, stop, bar) -> int:
    kept = 0
    for index in todo:
        episode = rollout(task, index, settings, stop)
        if episode is None:  # stop requested mid-episode: drop it
            break
        if episode[2].success or not successful_only:
            writer.add_episode(*episode)
            kept += 1
        bar.update()
    return kept


def recorded_perturbations(spec: PerturbationSpec | None) -> dict | None:
    """How an episode's collect settings record `spec`: as JSON reads it back (lists, not tuples), so a
    resumed run and training's dataset check compare equal; None when unperturbed, so datasets collected
    before perturbed demonstrations existed resume as before."""
    if spec is None or spec.level <= 0:
        return None
    return json.loads(json.dumps(spec.to_dict()))


def rollout(task, index: int, settings: dict, stop: StopRequest):
    """Run the expert closed-loop for episode `index`; (obs, actions, record), or None if stopped.

    Each observation is the one the action was computed from (before the step)."""
    seed = settings["seed"] + index
    obs = task.reset(seed)
    perturber = episode_perturber(task, settings, seed)
    try:
        return _expert_episode(task, index, seed, obs, settings, perturber, stop)
    finally:
        perturber.restore()


def episode_perturber(task, settings: dict, seed: int) -> Perturber:
    """The perturbations of episode `seed` (none without settings["perturbations"]), reset for it:
    its level is uniform in [0, spec.level], from a stream of its own."""
    if "perturbations" not in settings:
        spec = PerturbationSpec.none()
    else:
        spec = PerturbationSpec.from_dict(settings["perturbations"])
        spec = spec.at_level(spec.level * np.random.default_rng([seed, 2]).uniform())
    perturber = Perturber(task, spec)
    perturber.reset(seed)
    return perturber


def _expert_episode(task, index, seed, obs, settings, perturber, stop):
    from warpd_core.data import EpisodeRecord

    expert = task.expert(rng=np.random.default_rng([seed, 1]))  # own stream: mode independent of start pose
    observations, actions, success_at, final = [], [], None, None
    while not stop.requested:
        action = np.asarray(expert(obs), dtype=np.float32)
        observations.append(obs)
        actions.append(action)
        perturber.before_step(len(actions) - 1)
        result = task.step(perturber.act(action))
        obs = result.obs
        if result.success and success_at is None:
            success_at, final = len(actions), result
        held_enough = success_at is not None and len(actions) - success_at >= settings["hold_steps"]
        failed = success_at is None and result.done
        if held_enough or failed or len(actions) >= task.spec.max_steps:  # hold steps stop at the time limit
            final = final or result
            record = EpisodeRecord(
                index, task.spec.name, len(actions), success=bool(final.success), mode=task.mode_reached(),
                task_version=task.spec.version, seed=seed, expert=expert.name,
                perturbation=perturber.spec.level,
                metadata={"intended_mode": expert.mode, "final_distance": float(final.info["distance"]),
                          "steps_to_success": success_at, "collect": settings})
            return np.stack(observations), np.stack(actions), record
    return None


def _make_task(name: str, probs: dict[str, float] | None):
    from warpd_core.tasks import make_task

    if probs is None:
        return make_task(name)
    try:
        return make_task(name, mode_probs=probs)
    except TypeError:
        raise WarpdError(f"task {name} takes no --mode-probs", "it has a single mode; drop --mode-probs") from None
    except ValueError as exc:
        raise WarpdError(f"--mode-probs: {exc}", "give every mode once, with probabilities summing to 1") from None


def _check_same_settings(records, settings: dict, out: str) -> None:
    """Resuming is only exact with the settings the dataset was started with."""
    for record in records:
        earlier = record.metadata.get("collect")
        if earlier != settings:
            raise WarpdError(f"{out} holds episodes collected with {_flags(earlier)}, this run uses {_flags(settings)}",
                             "rerun with the same --seed, --mode-probs and --perturbations to continue it, or use "
                             "another --out")


def _flags(settings: dict | None) -> str:
    if not settings:
        return "other settings (not by warpd collect)"
    probs = settings["mode_probs"]
    flags = f"--seed {settings['seed']} " + (f"--mode-probs {','.join(f'{m}={p:g}' for m, p in probs.items())}"
                                             if probs else "and default mode probabilities")
    if "perturbations" in settings:
        flags += f" and perturbations up to level {settings['perturbations']['level']:g}"
    return flags


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the rollout checks every step (see the module docstring)."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @contextmanager
    def handling(self):
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt  # second signal: stop now, even mid-flush
        self.signum = signum

"""`warpd collect`: roll out a task's scripted expert and save the demonstrations as a dataset.

Episode i is fully determined by the seed S+i (start pose, goal, and the expert's mode draw), so
a run can be interrupted and resumed: rerunning the same command skips the episode indices the
dataset already holds and produces exactly the dataset an uninterrupted run would have.

SIGINT (Ctrl-C) and SIGTERM only set a flag; the rollout stops at the next step, the unfinished
episode is dropped, and the writer flushes every finished one before the process exits. Nothing
is interrupted halfway through a file write, so no finished episode is lost. A second signal
gives up at once.
"""
from __future__ import annotations

import argparse
import signal
import sys
from contextlib import closing, contextmanager

import numpy as np

from warpd_core.commands.argtypes import non_negative_int, positive_int
from warpd_core.errors import WarpdError
from warpd_core.tasks.registry import DEFAULT_TASK

HELP = "roll out a task's scripted expert and record the demonstrations as a dataset (resumable)"


def mode_probs(text: str) -> dict[str, float]:
    """'near=0.7,far=0.3' -> {'near': 0.7, 'far': 0.3}."""
    try:
        pairs = [item.split("=") for item in text.split(",")]
        probs = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODE=PROB pairs like near=0.7,far=0.3, got {text!r}") from None
    if len(probs) != len(pairs):
        raise argparse.ArgumentTypeError(f"a mode appears twice in {text!r}")
    return probs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=DEFAULT_TASK,
                        help=f"task to demonstrate, by registry name (default {DEFAULT_TASK}); a wrong name lists "
                             "the known ones")
    parser.add_argument("--episodes", type=positive_int, default=100,
                        help="episodes to roll out, indices 0..N-1 (default 100); a rerun only adds the missing "
                             "ones")
    parser.add_argument("--out", required=True,
                        help="dataset directory; created if missing, continued if it holds an earlier run")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="episode i is seeded with SEED+i, so a dataset is reproducible (default 0)")
    parser.add_argument("--mode-probs", type=mode_probs, metavar="MODE=P,...",
                        help="how often the expert picks each mode, e.g. near=0.7,far=0.3 (default: equal); only "
                             "for tasks with several modes")
    parser.add_argument("--flush-every", type=positive_int, default=10, metavar="K",
                        help="write a new shard every K episodes (default 10); an interruption flushes anyway")
    parser.add_argument("--hold-steps", type=non_negative_int, default=0, metavar="N",
                        help="after success, keep recording the expert for N more steps (it holds at the goal), so "
                             "learned policies also see how to stay there (default 0)")
    parser.add_argument("--successful-only", action="store_true",
                        help="drop episodes in which the expert failed (default: keep them, flagged in the record)")


def run(args) -> int:
    from tqdm import tqdm

    from warpd_core.data import DatasetInfo, DatasetWriter
    from warpd_core.data.stats import modes_line, success_line

    task = _make_task(args.task, args.mode_probs)
    settings = {"seed": args.seed, "mode_probs": args.mode_probs, "hold_steps": args.hold_steps}
    stop = StopRequest()
    info = DatasetInfo.from_task_spec(task.spec, "warpd collect")
    with closing(task), stop.handling(), DatasetWriter(args.out, info, flush_every=args.flush_every) as writer:
        _check_same_settings(writer.records, settings, args.out)
        todo = [i for i in range(args.episodes) if i not in writer.episode_indices]
        with tqdm(total=args.episodes, initial=args.episodes - len(todo), desc="collect", unit="ep",
                  file=sys.stderr) as bar:
            new = _collect(task, todo, settings, args.successful_only, writer, stop, bar)
    steps = sum(r.length for r in writer.records)
    print(f"collected {new} new episodes of {args.task} (seeds {args.seed}..{args.seed + args.episodes - 1})")
    print(success_line(writer.records))
    print(modes_line(writer.records))
    print(f"dataset: {writer.path.resolve()} ({len(writer.records)} episodes, {steps} steps)")
    if stop.signum is None:
        return 0
    print(f"interrupted by {signal.Signals(stop.signum).name}: saved all {new} finished episodes of this run; "
          "run the same command again to continue", file=sys.stderr)
    return 128 + stop.signum


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


def rollout(task, index: int, settings: dict, stop: StopRequest):
    """Run the expert closed-loop for episode `index`; (obs, actions, record), or None if stopped.

    Each observation is the one the action was computed from (before the step)."""
    from warpd_core.data import EpisodeRecord

    seed = settings["seed"] + index
    obs = task.reset(seed)
    expert = task.expert(rng=np.random.default_rng([seed, 1]))  # own stream: mode independent of start pose
    observations, actions, success_at, final = [], [], None, None
    while not stop.requested:
        action = np.asarray(expert(obs), dtype=np.float32)
        observations.append(obs)
        actions.append(action)
        result = task.step(action)
        obs = result.obs
        if result.success and success_at is None:
            success_at, final = len(actions), result
        held_enough = success_at is not None and len(actions) - success_at >= settings["hold_steps"]
        failed = success_at is None and result.done
        if held_enough or failed or len(actions) >= task.spec.max_steps:  # hold steps stop at the time limit
            final = final or result
            record = EpisodeRecord(
                index, task.spec.name, len(actions), success=bool(final.success), mode=task.mode_reached(),
                task_version=task.spec.version, seed=seed, expert=expert.name, perturbation=0.0,
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
                             "rerun with the same --seed and --mode-probs to continue it, or use another --out")


def _flags(settings: dict | None) -> str:
    if not settings:
        return "other settings (not by warpd collect)"
    probs = settings["mode_probs"]
    return f"--seed {settings['seed']} " + (f"--mode-probs {','.join(f'{m}={p:g}' for m, p in probs.items())}"
                                            if probs else "and default mode probabilities")


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

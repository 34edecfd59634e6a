"""`warpd collect`: roll out a task's scripted expert and save the demonstrations as a dataset.

Resumable, and safe to interrupt with Ctrl-C or SIGTERM: every finished episode is kept and
rerunning the same command continues (see warpd_core.data.collect, which does the work).
"""
from __future__ import annotations

import argparse
import sys

from warpd_core.commands.argtypes import mode_probs, non_negative_int, positive_int
from warpd_core.tasks.registry import DEFAULT_TASK

HELP = "roll out a task's scripted expert and record the demonstrations as a dataset (resumable)"


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
    parser.add_argument("--perturbations", metavar="YAML",
                        help="perturb the demonstrations with this spec (e.g. config/perturbations_demos.yaml): "
                             "each episode runs at a level drawn uniformly in [0, the file's level], so the expert "
                             "also shows how it recovers from pushes, a moving goal, noisy actions; the dataset "
                             "keeps true observations and the commanded actions (default: none)")
    parser.add_argument("--successful-only", action="store_true",
                        help="drop episodes in which the expert failed (default: keep them, flagged in the record)")


def run(args) -> int:
    from warpd_core.data.collect import collect_dataset
    from warpd_core.perturb.spec import PerturbationSpec

    spec = PerturbationSpec.from_yaml(args.perturbations) if args.perturbations else None
    result = collect_dataset(args.task, args.out, args.episodes, seed=args.seed, mode_probs=args.mode_probs,
                             hold_steps=args.hold_steps, flush_every=args.flush_every,
                             successful_only=args.successful_only, perturbations=spec)
    print(result.report())
    if result.signum is None:
        return 0
    print(result.interruption(), file=sys.stderr)
    return 128 + result.signum

"""`warpd eval`: sweep methods x tasks x perturbation levels x action horizons x seeds.

Episodes run in parallel worker processes. Each finished episode is appended at once to
OUT/episodes.csv (one tidy row per episode), so Ctrl-C loses nothing finished, and rerunning the
same command runs only the missing episodes. Widening a sweep (more seeds, levels, methods) into
the same directory reuses every row it already has. At the end it prints success % with 95%
Wilson intervals per method, horizon and level, and draws into OUT: success vs perturbation
level, success vs action horizon, success vs FLOPs per control step, and the mode shares of
successful episodes next to the demonstrations'.

Defaults (methods and their checkpoints, levels, horizons, seeds) come from config/eval.yaml.

    warpd eval --methods expert,warpd,dp --seeds 50 --out runs/eval
    warpd eval --methods warpd,mine=runs/mine/checkpoint.safetensors --levels 0,1 --horizons 16
"""
from __future__ import annotations

import sys
from pathlib import Path

from warpd_core.commands.argtypes import (horizon_list, level_list, name_list, name_path, positive_int,
                                         seed_count_or_range)
from warpd_core.commands.standalone import standalone_main
from warpd_core.errors import WarpdError

HELP = "sweep methods x tasks x perturbation levels x action horizons x seeds; CSV, summary, plots; resumable"
DEFAULT_CONFIG = "config/eval.yaml"


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"defaults and named methods (default {DEFAULT_CONFIG})")
    parser.add_argument("--methods", type=name_list, metavar="M1,M2,...",
                        help="methods to evaluate: names from the config (expert, warpd, dp, warpd_no_wm) or "
                             "NAME=CHECKPOINT pairs (default: the config's default_methods)")
    parser.add_argument("--checkpoint", type=name_path, action="append", default=[], metavar="NAME=PATH",
                        help="use this checkpoint for method NAME (repeatable)")
    parser.add_argument("--tasks", type=name_list, metavar="T1,T2,...", help="tasks (default: the config's)")
    parser.add_argument("--levels", type=level_list, metavar="L1,L2,...",
                        help="perturbation levels in [0, 1] (default: the config's, 0,0.2,0.4,0.6,0.8,1.0)")
    parser.add_argument("--horizons", type=horizon_list, metavar="K1,K2,...",
                        help="action horizons: control steps between plans (default: the config's, 16,32,64,128)")
    parser.add_argument("--seeds", type=seed_count_or_range, metavar="N|A-B",
                        help="episodes per point: a count N (seeds from --seed-start) or an inclusive range A-B "
                             "(default: the config's, 50)")
    parser.add_argument("--seed-start", type=int, metavar="SEED",
                        help="first seed when --seeds is a count (default: the config's, 10000)")
    parser.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory: episodes.csv, settings.json, plots "
                                                 "(default runs/eval); rerunning into it resumes")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help="diffusion steps (default: each checkpoint's own)")
    parser.add_argument("--perturbations", metavar="YAML",
                        help="perturbation spec YAML (default config/perturbations.yaml)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_config(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise WarpdError(f"cannot read eval config {path}: {exc.strerror}",
                         "run from the repository root, or pass --config") from None
    except yaml.YAMLError as exc:
        raise WarpdError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WarpdError(f"{path}: expected a mapping at the top level")
    return data


def build_plan(args, config: dict):
    """The SweepPlan the arguments (falling back on the config) describe, every name checked."""
    from warpd_core.eval.methods import registry_from_config, resolve_methods
    from warpd_core.eval.sweep import SweepPlan
    from warpd_core.perturb import PerturbationSpec
    from warpd_core.tasks.registry import task_names, unknown_task_error

    registry = registry_from_config(config, args.config)
    methods = resolve_methods(args.methods or config.get("default_methods", list(registry)), registry,
                              dict(args.checkpoint))
    tasks = tuple(args.tasks or config.get("tasks", ["reach_around"]))
    for task in tasks:
        if task not in task_names():
            raise unknown_task_error(task)
    for method in methods:
        method.check(tasks)
    seeds = args.seeds if args.seeds is not None else int(config.get("seeds", 50))
    if isinstance(seeds, int):
        start = args.seed_start if args.seed_start is not None else int(config.get("seed_start", 10_000))
        seeds = (start, start + seeds - 1)
    levels = args.levels or level_list(",".join(str(v) for v in config.get("levels", [0.0])))
    horizons = args.horizons or horizon_list(",".join(str(v) for v in config.get("horizons", [16])))
    spec = PerturbationSpec.from_yaml(args.perturbations or config.get("perturbations", "config/perturbations.yaml"))
    return SweepPlan(tuple(methods), tasks, levels, horizons, tuple(range(seeds[0], seeds[1] + 1)), spec, args.steps)


def demonstration_modes(plan) -> dict[str, dict[str, int]]:
    """task -> mode counts of the demonstrations the first learned method was trained on."""
    from warpd_core.eval.sweep import demo_mode_counts

    from warpd_core.tasks.registry import make_task

    demos = {}
    for task in plan.tasks:
        for method in plan.methods:
            path = method.dataset_path(task)
            if path is not None and (Path(path) / "dataset.json").exists():
                demos[task] = demo_mode_counts(path)
                break
        else:  # no dataset here (e.g. a fresh clone with shipped checkpoints): the task's modes, no counts (n=0)
            demos[task] = dict.fromkeys(make_task(task).spec.modes, 0)
    return demos


def flops_lookup(plan, log=print):
    """(method, task, horizon) -> FLOPs per control step, or None when no FLOPs counter is available."""
    try:
        from warpd_core.eval.flops import method_flops
    except ImportError as exc:
        log(f"note: FLOPs counter unavailable ({exc})")
        return None
    by_name = {m.name: m for m in plan.methods}
    cache: dict = {}

    def lookup(name, task, horizon):
        method = by_name.get(name)
        if method is None or not method.replans or horizon is None:
            return None
        if (name, task) not in cache:
            cache[name, task] = method_flops(method.checkpoint, task, steps=plan.steps)
        return cache[name, task].flops_per_step(horizon)

    return lookup


def run(args) -> int:
    from warpd_core.eval.sweep import CSV_NAME, run_sweep_to_csv, summary_table

    config = load_config(args.config)
    plan = build_plan(args, config)
    out = args.out or Path(config.get("out", "runs/eval"))
    workers = args.workers or int(config.get("workers", 2))
    try:
        rows = run_sweep_to_csv(plan, out, workers=workers, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted: every finished episode is in {out / CSV_NAME}; rerun the same command to go on",
              file=sys.stderr)
        raise
    order = [m.name for m in plan.methods]
    table = summary_table(rows, order)
    print("\nsuccess % (95% Wilson interval) per method and action horizon K, by perturbation level:\n")
    print(table)
    (out / "summary.txt").write_text(table + "\n")
    if not args.no_plots:
        from warpd_core.eval.sweep_plots import write_sweep_plots

        for path in write_sweep_plots(rows, out, demonstration_modes(plan), flops_lookup(plan), order):
            print(f"plot: {path}")
    print(f"episodes: {out / CSV_NAME}")
    return 0


main = standalone_main("warpd eval", __doc__, add_arguments, run, __name__)

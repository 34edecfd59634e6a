"""`warpd rollout`: run WARPD-generated policies in their task and report what happened.

Every `--replan-every` steps the planner samples a new latent for the current state, decodes a
policy and hands it to the numpy runtime, which runs it closed-loop until the next plan. Episodes
can be perturbed (`--level`, with the spec in config/perturbations.yaml). Prints success, time to
success and mode shares; `--plot` draws the rollouts coloured by the mode they took.
"""
from __future__ import annotations

from warpd_core.commands.argtypes import level, non_negative_int, positive_int

HELP = "roll out generated policies in the task (optionally perturbed), print success and mode shares"
DEFAULT_SPEC = "config/perturbations.yaml"


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors written by `warpd train`")
    parser.add_argument("--task", help="task to run (default: the checkpoint's first task)")
    parser.add_argument("--episodes", type=positive_int, default=20, help="episodes to run (default 20)")
    parser.add_argument("--seed", type=non_negative_int, default=1000,
                        help="episode i uses seed SEED+i; the default 1000 keeps clear of training seeds")
    parser.add_argument("--replan-every", type=positive_int, default=16, metavar="K",
                        help="steps between plans, the action horizon (default 16)")
    parser.add_argument("--level", type=level, default=0.0, help="perturbation level 0..1 (default 0: none)")
    parser.add_argument("--perturbations", default=DEFAULT_SPEC, help=f"perturbation spec YAML (default {DEFAULT_SPEC})")
    parser.add_argument("--steps", type=positive_int, help="denoising steps (default: the checkpoint's config)")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes to spread episodes over (default 1)")
    parser.add_argument("--plot", metavar="PNG", help="draw the rollouts (fingertip/hand paths by mode) to this file")


def run(args) -> int:
    from warpd_core.eval.runner import run_episode, run_sweep, summarize
    from warpd_core.perturb import PerturbationSpec
    from warpd_core.policies.warpd.checkpoint import read_metadata
    from warpd_core.policies.warpd.planner import PlannerFactory
    from warpd_core.tasks.registry import make_task

    task_name = args.task or read_metadata(args.checkpoint)["task_names"][0]
    spec = PerturbationSpec.from_yaml(args.perturbations).at_level(args.level)
    factory = PlannerFactory(args.checkpoint, task_name, steps=args.steps)
    seeds = range(args.seed, args.seed + args.episodes)
    if args.plot:
        task = make_task(task_name)
        runs = [run_episode(task, factory, s, spec, args.replan_every, record=True) for s in seeds]
        metrics = [m for m, _ in runs]
        from warpd_core.eval.plots import plot_rollouts

        plot_rollouts(task, [(t.true_observations, m.mode, m.success) for m, t in runs], args.plot,
                      title=f"WARPD rollouts on {task_name}, K={args.replan_every}, level {args.level}")
    else:
        metrics = run_sweep(task_name, factory, seeds, levels=(args.level,), base_spec=spec,
                            replan_every=args.replan_every, workers=args.workers, progress=True)
    summary = summarize(metrics)
    successes = max(1, sum(m.success for m in metrics))
    modes = ", ".join(f"{m} {n} ({100 * n / successes:.0f}%)" for m, n in sorted(summary["mode_counts"].items()))
    print(f"{task_name}: {sum(m.success for m in metrics)}/{len(metrics)} successful "
          f"({100 * summary['success_rate']:.1f}%), replanning every {args.replan_every} steps, level {args.level}")
    print(f"mean time to success {summary['mean_time_to_success']:.2f} s; modes among successes: {modes or 'none'}")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0

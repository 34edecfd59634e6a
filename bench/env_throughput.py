"""How fast do the tasks step? Single env, lockstep batches, and process-parallel sweeps.

Measured side by side in one run for each task: raw `task.step` with a constant command, the
scripted expert in the loop, the expert under level-1 perturbations (the perturbation overhead),
a lockstep batch of B envs with one batched policy call per step, and a 2-process sweep.

    .venv/bin/python -m bench.env_throughput            # table + BENCHMARKS.md section + plot
    .venv/bin/python -m bench.env_throughput --quick    # a smoke run, nothing written
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import PLOTS, image_lines, machine_info, pyplot, save_figure, update_section
from warpd_core.eval.runner import expert_policy, run_batch, run_episode, run_sweep
from warpd_core.perturb import PerturbationSpec
from warpd_core.tasks import make_task, task_names

DEFAULT_TASKS = ("reach_around", "metaworld/push-v3")


def _raw_steps(task, steps: int) -> float:
    task.reset(0)
    action = np.zeros(task.spec.action_dim)
    start, done = time.perf_counter(), 0
    while done < steps:
        result = task.step(action)
        done += 1
        if result.done:
            task.reset(done)
    return steps / (time.perf_counter() - start)


def _episodes(task, seeds, spec) -> float:
    start = time.perf_counter()
    steps = sum(run_episode(task, expert_policy, s, spec)[0].steps for s in seeds)
    return steps / (time.perf_counter() - start)


class _BatchedExperts:
    """One call per step for the whole batch (the shape a torch policy has); experts inside."""

    def __init__(self, task_name, seeds):
        probe = make_task(task_name)
        self.experts = []
        for s in seeds:
            probe.reset(s)
            self.experts.append(expert_policy(probe, s))

    def __call__(self, obs_batch):
        return np.stack([expert(o) for expert, o in zip(self.experts, obs_batch)])


def _batched(task_name, seeds) -> float:
    policy = _BatchedExperts(task_name, seeds)
    start = time.perf_counter()
    steps = sum(m.steps for m in run_batch(task_name, policy, seeds))
    return steps / (time.perf_counter() - start)


def _sweep(task_name, seeds, workers) -> float:
    start = time.perf_counter()
    steps = sum(m.steps for m in run_sweep(task_name, expert_policy, seeds, workers=workers))
    return steps / (time.perf_counter() - start)


def measure(task_name: str, episodes: int, batch: int) -> list[dict]:
    task = make_task(task_name)
    seeds = range(episodes)
    perturbed = PerturbationSpec(level=1.0)
    rows = [
        ("raw step, constant command", _raw_steps(task, 2000)),
        ("expert in the loop", _episodes(task, seeds, None)),
        ("expert, level-1 perturbations", _episodes(task, seeds, perturbed)),
        (f"lockstep batch of {batch}, one policy call per step (incl. building the {batch} envs)",
         _batched(task_name, range(batch))),
        ("2-process sweep, expert", _sweep(task_name, range(2 * episodes), workers=2)),
    ]
    return [{"task": task_name, "mode": mode, "steps_per_s": rate} for mode, rate in rows]


def plot(rows, path: Path) -> Path:
    plt = pyplot()

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(tasks)
    for k, task in enumerate(tasks):
        rates = [next(r["steps_per_s"] for r in rows if r["task"] == task and r["mode"] == m) for m in modes]
        ax.barh(np.arange(len(modes)) + k * width, rates, height=width, label=task)
    ax.set_yticks(np.arange(len(modes)) + width * (len(tasks) - 1) / 2, modes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("env steps per second (higher is better)")
    ax.set_title("Task throughput on this machine")
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return save_figure(fig, path)


def to_markdown(rows, picture, args) -> str:
    lines = ["## Env throughput", "",
             f"`python -m bench.env_throughput --episodes {args.episodes} --batch {args.batch}` on {machine_info()}.",
             "Env steps per second (control steps; reach_around steps 10 MuJoCo substeps each, Metaworld 5), "
             "all rows measured in this run.", "",
             "| task | how | steps/s |", "|---|---|---:|"]
    lines += [f"| {r['task']} | {r['mode']} | {r['steps_per_s']:,.0f} |" for r in rows]
    lines += image_lines("env throughput", picture)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=None, help=f"tasks to measure (default: {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per single-env row (default 20)")
    parser.add_argument("--batch", type=int, default=16, help="envs in the lockstep batch (default 16)")
    parser.add_argument("--quick", action="store_true", help="4 episodes, batch 4, nothing written")
    parser.add_argument("--out", type=Path, default=None, help="write the section to this file instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.batch = 4, 4
    tasks = args.tasks or [t for t in DEFAULT_TASKS if t in task_names()]
    rows = [row for name in tasks for row in measure(name, args.episodes, args.batch)]
    for r in rows:
        print(f"{r['task']:<22} {r['mode']:<48} {r['steps_per_s']:>10,.0f} steps/s")
    if args.quick and args.out is None:
        return 0
    picture = plot(rows, PLOTS / "env_throughput.png") if args.out is None else None
    written = update_section("env_throughput", to_markdown(rows, picture, args),
                             **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

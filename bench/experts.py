"""How often do the scripted experts succeed? They produce the demonstrations WARPD learns from, so
a task whose expert fails often gives few or biased demonstrations.

Runs each task's expert from reset(seed) for seeds 0..N-1 until the task reports done, and counts
success, steps to success and the mode each episode took (task.mode_reached()). The default task
reach_around draws its mode 50/50 from the seed; the MT10 tasks have one mode. Tasks are spread
over worker processes.

    .venv/bin/python -m bench.experts                    # all tasks; prints the table, updates BENCHMARKS.md
    .venv/bin/python -m bench.experts --tasks reach_around metaworld/reach-v3 --seeds 2 --out /tmp/B.md
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from bench.report import image_lines, machine_info, publish, pyplot, save_figure, verdict
from warpd_core.eval.runner import expert_policy, run_episode
from warpd_core.tasks import DEFAULT_TASK, make_task, task_names
from warpd_core.tasks.metaworld_tasks import MT10

DEFAULT_GOAL = 0.95  # default-task expert success over its seeds (acceptance of the task issue)


def measure(name: str, n_seeds: int) -> dict:
    """Run the expert of task `name` on seeds 0..n_seeds-1; one result row."""
    task = make_task(name)
    metrics = [run_episode(task, expert_policy, seed)[0] for seed in range(n_seeds)]
    task.close()
    successes = [m for m in metrics if m.success]
    modes = Counter(m.mode or "none" for m in metrics)
    return {"task": name, "episodes": n_seeds, "successes": len(successes),
            "success_pct": 100.0 * len(successes) / n_seeds,
            "mean_steps": float(np.mean([m.steps for m in successes])) if successes else float("nan"),
            "modes": " · ".join(f"{m} {100.0 * c / n_seeds:.0f}%" for m, c in sorted(modes.items()))}


def _measure_job(job: tuple[str, int]) -> dict:
    return measure(*job)


def run(tasks: list[str], seeds: int, default_seeds: int, workers: int) -> list[dict]:
    jobs = [(name, default_seeds if name == DEFAULT_TASK else seeds) for name in tasks]
    jobs_longest_first = sorted(jobs, key=lambda job: -job[1])  # keeps both workers busy to the end
    with mp.Pool(min(workers, len(jobs))) as pool:
        rows = {row["task"]: row for row in pool.imap_unordered(_measure_job, jobs_longest_first)}
    return [rows[name] for name in tasks]


def format_table(rows: list[dict]) -> str:
    lines = [f"{'task':<36} {'episodes':>8} {'success %':>9} {'steps':>7}  modes"]
    for r in rows:
        lines.append(f"{r['task']:<36} {r['episodes']:>8} {r['success_pct']:>9.1f} {r['mean_steps']:>7.1f}  {r['modes']}")
    return "\n".join(lines)


def to_markdown(rows: list[dict], plot: Path | None, command: str) -> str:
    lines = [
        "## Scripted experts",
        "",
        f"`{command}` on {machine_info()}.",
        "Each expert runs from `reset(seed)` for seeds 0..N-1 until the task reports done (success or "
        "max_steps). Steps: mean steps to success over the successful episodes. Modes: share of episodes "
        "per `task.mode_reached()`.",
        "",
        "| task | episodes | success % | mean steps to success | modes |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r['task']} | {r['episodes']} | {r['success_pct']:.1f} | {r['mean_steps']:.1f} | {r['modes']} |"
              for r in rows]
    default = next((r for r in rows if r["task"] == DEFAULT_TASK), None)
    if default is not None:
        met = default["success_pct"] >= 100 * DEFAULT_GOAL
        lines += ["", f"- {DEFAULT_TASK} expert ≥ {100 * DEFAULT_GOAL:.0f}% over {default['episodes']} seeds: "
                      f"{default['success_pct']:.1f}% — **{verdict(met)}**"]
    lines += image_lines("expert success per task", plot)
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    names = [f"{r['task']} (n={r['episodes']})" for r in rows][::-1]
    values = [r["success_pct"] for r in rows][::-1]
    bars = ax.barh(names, values, color=["tab:green" if v >= 100 * DEFAULT_GOAL else "tab:orange" for v in values])
    ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], padding=3, fontsize=8)
    ax.axvline(100 * DEFAULT_GOAL, color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 112)
    ax.set_xlabel(f"success (%); dotted line: {100 * DEFAULT_GOAL:.0f}%")
    ax.set_title("Scripted expert success per task")
    return save_figure(fig, path)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.experts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=[DEFAULT_TASK, *MT10], metavar="TASK",
                        help=f"registry names (default: {DEFAULT_TASK} and the ten MT10 tasks)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per task other than the default task (default 20)")
    parser.add_argument("--default-seeds", type=int, default=100,
                        help=f"seeds for {DEFAULT_TASK} (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the section to this file instead of BENCHMARKS.md (and draw no plot)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.tasks if name not in task_names()]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(task_names())}")
    if min(args.seeds, args.default_seeds, args.workers) < 1:
        parser.error("--seeds, --default-seeds and --workers must be at least 1")
    rows = run(args.tasks, args.seeds, args.default_seeds, args.workers)
    print(format_table(rows))
    command = " ".join(["python -m bench.experts", *argv])
    publish("experts", args.out, lambda picture: to_markdown(rows, picture, command), lambda path: plot(rows, path),
            picture_name="expert_success")
    return 0


if __name__ == "__main__":
    sys.exit(main())

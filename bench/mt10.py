"""MT10 multitask: per-task success of one task-conditioned WARPD checkpoint, next to the scripted
expert that made its demonstrations and (once trained) the Diffusion Policy baseline.

Every method runs the same unperturbed episodes: seeds EVAL_SEED.. (disjoint from the training
seeds, which the checkpoint's config records and this script checks), re-planning every K steps
(default 16, the `warpd rollout` default). WARPD and DP are asked for each task by name, so a
checkpoint that was not trained on a task fails clearly instead of being scored.

    .venv/bin/python -m bench.mt10                       # WARPD, expert, DP if trained; updates BENCHMARKS.md
    .venv/bin/python -m bench.mt10 --seeds 5 --out /tmp/B.md   # quick look, no plot
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.report import PLOTS, image_lines, machine_info, pyplot, save_figure, update_section, verdict
from warpd_core.errors import WarpdError, print_error
from warpd_core.eval.runner import expert_policy, run_sweep, summarize
from warpd_core.policies.warpd.checkpoint import read_metadata
from warpd_core.policies.warpd.planner import PlannerFactory

WARPD_CHECKPOINT = "checkpoints/mt10/checkpoint.safetensors"  # shipped copy of config/train_mt10.yaml's run
DP_CHECKPOINT = "checkpoints/dp_mt10/checkpoint.safetensors"  # of config/train_dp_mt10.yaml
EVAL_SEED = 10_000  # far above the training seeds (data.seed .. data.seed + data.episodes - 1)
GOAL = 0.81  # WARPD mean MT10 success reported in the paper
MEAN_GOAL, TASK_FLOOR = 0.85, 0.60  # issue 16: mean, and every task
METHODS = ("WARPD", "expert", "DP")


def eval_seeds(meta: dict, first: int, count: int) -> range:
    """`count` seeds from `first`, refused if they overlap the checkpoint's training seeds."""
    data = meta["config"]["data"]
    train = range(data["seed"], data["seed"] + data["episodes"])
    seeds = range(first, first + count)
    if set(seeds) & set(train):
        raise WarpdError(f"evaluation seeds {first}..{first + count - 1} overlap the training seeds "
                         f"{train.start}..{train.stop - 1}", "pick --first-seed above them")
    return seeds


def dp_factory_class(checkpoint: Path):
    """The DP policy factory when a DP checkpoint exists, else None (the table says 'not trained')."""
    if not checkpoint.is_file():
        return None
    # imported lazily: the baseline is optional for this benchmark
    from warpd_core.policies.dp.planner import DPPlannerFactory

    return DPPlannerFactory


def evaluate(tasks, warpd_checkpoint, dp_checkpoint: Path | None, seeds, replan_every, workers) -> list[dict]:
    """One row per task: success rate of each method (None where a method was not run)."""
    dp_factory = dp_factory_class(dp_checkpoint) if dp_checkpoint is not None else None
    rows = []
    for task in tasks:
        policies = {"WARPD": (PlannerFactory(warpd_checkpoint, task), replan_every),
                    "expert": (expert_policy, None)}
        if dp_factory is not None:
            policies["DP"] = (dp_factory(dp_checkpoint, task), replan_every)
        row = {"task": task, "episodes": len(seeds), **{m: None for m in METHODS}}
        for method, (factory, k) in policies.items():
            metrics = run_sweep(task, factory, seeds, replan_every=k, workers=workers, progress=True)
            row[method] = summarize(metrics)["success_rate"]
        print(f"{task:<36} " + "  ".join(f"{m} {_pct(row[m]):>6}" for m in METHODS), flush=True)
        rows.append(row)
    return rows


def means(rows: list[dict]) -> dict:
    return {m: (float(np.mean([r[m] for r in rows])) if all(r[m] is not None for r in rows) else None)
            for m in METHODS}


def _pct(value, missing: str = "not trained") -> str:
    return missing if value is None else f"{100 * value:.1f}%"


def plot(rows: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    x, width = np.arange(len(rows)), 0.27
    for k, method in enumerate(METHODS):
        values = [100 * r[method] if r[method] is not None else np.nan for r in rows]
        ax.bar(x + (k - 1) * width, values, width, label=method if not np.isnan(values).all() else f"{method} (not run)")
    ax.axhline(100 * GOAL, color="grey", linestyle="--", linewidth=1, label="paper WARPD mean (81%)")
    ax.set_xticks(x, [r["task"].removeprefix("metaworld/").removesuffix("-v3") for r in rows], rotation=30,
                  ha="right")
    ax.set_ylabel("success %")
    ax.set_ylim(0, 105)
    ax.set_title("MT10: success per task (unperturbed)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: no bar hidden
    return save_figure(fig, path)


def flops_lines(args, task: str) -> list[str]:
    """FLOPs per control step of the MT10 checkpoints (one task's cost: the task only selects an embedding)."""
    from warpd_core.eval.flops import method_flops

    checkpoints = {"WARPD": args.checkpoint}
    if args.dp_checkpoint.is_file():
        checkpoints["DP"] = args.dp_checkpoint
    cost = {name: method_flops(path, task) for name, path in checkpoints.items()}
    k = args.replan_every
    lines = ["", f"Inference FLOPs (torch FlopCounterMode, as in the default-task section), one plan every K={k} steps:",
             "", "| method | plan FLOPs | step FLOPs | FLOPs per control step |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {c.planner_flops:,} | {c.step_flops:,} | {c.flops_per_step(k):,.0f} |"
              for name, c in cost.items()]
    if "DP" in cost:
        lines += ["", f"DP / WARPD FLOPs per control step on MT10: "
                      f"{cost['DP'].flops_per_step(k) / cost['WARPD'].flops_per_step(k):.1f}× (CPU-sized DP, "
                      "U-Net down_dims 32/64/128; the default-task section also counts the DP-medium size)."]
    return lines


def to_markdown(rows, meta, args, seeds, picture: Path | None) -> str:
    extra, cfg = meta.get("extra", {}), meta["config"]
    data, mean = cfg["data"], means(rows)
    train_seeds = f"{data['seed']}..{data['seed'] + data['episodes'] - 1}"
    dp_missing = "not run" if args.skip_dp else "not trained"
    dp_note = (" (not run in this invocation: --skip-dp; its sampling is most of this benchmark's ~40 min)"
               if args.skip_dp else " (not trained yet)" if rows[0]["DP"] is None else "")
    lines = [
        "## MT10 multitask",
        "",
        f"`python -m bench.mt10 --seeds {len(seeds)} --replan-every {args.replan_every}` on {machine_info()}.",
        (f"One task-conditioned WARPD checkpoint (`{args.checkpoint}`, config `{cfg['name']}`) for all "
         f"{len(meta['task_names'])} tasks; {data['episodes']} expert episodes per task (seeds {train_seeds}, "
         f"successful ones only), stage 1 {cfg['stage1']['steps']} steps, stage 2 {cfg['stage2']['steps']} steps, "
         f"generated policy {meta['architecture']['layer_sizes']}; plans sample {cfg['diffusion']['sample_steps']} "
         f"{cfg['diffusion']['sampler']} steps with guidance scale {cfg['diffusion']['guidance_scale']:g}."),
        (f"Each cell: success over seeds {seeds.start}..{seeds.stop - 1} (disjoint from training), unperturbed, "
         f"re-planning every {args.replan_every} steps. Expert: Metaworld's scripted policy on the same seeds. "
         f"DP: `{args.dp_checkpoint}`{dp_note}."),
        "",
        "| task | WARPD success | expert success | DP success |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['task']} | {_pct(r['WARPD'])} | {_pct(r['expert'])} | {_pct(r['DP'], dp_missing)} |" for r in rows]
    lines.append(f"| **mean of {len(rows)} tasks** | **{_pct(mean['WARPD'])}** | {_pct(mean['expert'])} | "
                 f"{_pct(mean['DP'], dp_missing)} |")
    episodes = len(rows) * len(seeds)
    stderr = 100 * np.sqrt(mean["WARPD"] * (1 - mean["WARPD"]) / episodes)
    goal = (f"- Goal: WARPD mean ≥ {100 * GOAL:.0f}% (paper) — {_pct(mean['WARPD'])} ± {stderr:.1f} points "
            f"(binomial standard error over {episodes} episodes) **{verdict(mean['WARPD'] >= GOAL)}**")
    worst = min(rows, key=lambda r: r["WARPD"])
    lines += ["", goal,
              f"- Goal (issue 16): mean ≥ {100 * MEAN_GOAL:.0f}% — {_pct(mean['WARPD'])} "
              f"**{verdict(mean['WARPD'] >= MEAN_GOAL)}**"
              + ("" if mean["WARPD"] >= MEAN_GOAL else f" by {100 * (MEAN_GOAL - mean['WARPD']):.1f} points")
              + f"; no task below {100 * TASK_FLOOR:.0f}% — lowest {worst['task']} {_pct(worst['WARPD'])} "
              f"**{verdict(worst['WARPD'] >= TASK_FLOOR)}**"
              + ("" if worst["WARPD"] >= TASK_FLOOR else f" by {100 * (TASK_FLOOR - worst['WARPD']):.1f} points")]
    if mean["DP"] is not None:
        lines.append(f"- WARPD − DP, mean: {100 * (mean['WARPD'] - mean['DP']):+.1f} points (same seeds).")
    if "train_seconds" in extra:
        t = extra["train_seconds"]
        lines.append(f"- Training time recorded by `warpd train` (CPU, this machine, shared with other jobs): "
                     f"stage 1 {t['stage1'] / 60:.1f} min, stage 2 {t['stage2'] / 60:.1f} min"
                     + (" (resumed run: this invocation only)" if extra.get("resumed") else ""))
    lines += flops_lines(args, rows[0]["task"])
    lines += image_lines("MT10 success per task", picture)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=WARPD_CHECKPOINT,
                        help=f"multitask WARPD checkpoint (default {WARPD_CHECKPOINT})")
    parser.add_argument("--dp-checkpoint", type=Path, default=Path(DP_CHECKPOINT),
                        help=f"DP MT10 checkpoint; its column says 'not trained' if missing (default {DP_CHECKPOINT})")
    parser.add_argument("--seeds", type=int, default=20, help="episodes per task and method (default 20)")
    parser.add_argument("--first-seed", type=int, default=EVAL_SEED, help=f"first evaluation seed (default {EVAL_SEED})")
    parser.add_argument("--replan-every", type=int, default=16, help="re-plan every K steps (default 16)")
    parser.add_argument("--tasks", nargs="+", help="subset of the checkpoint's tasks (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="processes per sweep (default 1)")
    parser.add_argument("--skip-dp", action="store_true", help="do not evaluate DP (its column says 'not run'; "
                        "its FLOPs are still counted)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plot)")
    args = parser.parse_args(argv)
    try:
        meta = read_metadata(args.checkpoint)
        seeds = eval_seeds(meta, args.first_seed, args.seeds)
        tasks = args.tasks or meta["task_names"]
        rows = evaluate(tasks, args.checkpoint, None if args.skip_dp else args.dp_checkpoint, seeds,
                        args.replan_every, args.workers)
    except WarpdError as exc:
        print_error("bench.mt10", exc)
        return 2
    mean = means(rows)
    print("mean: " + "  ".join(f"{m} {_pct(mean[m])}" for m in METHODS))
    picture = plot(rows, PLOTS / "mt10.png") if args.out is None else None
    written = update_section("mt10", to_markdown(rows, meta, args, seeds, picture),
                             **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

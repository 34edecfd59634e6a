"""The Franka Panda task in one run (issue 14): expert, shipped checkpoint, WARPD vs Diffusion Policy
sweep, training time — one BENCHMARKS.md section, so the figures come from the same run.

1. The IK expert over 100 seeds on both command interfaces: success, mode shares, pillar contacts.
2. The shipped WARPD checkpoint on unseen seeds (10000..), unperturbed, re-planning every K = 16..128
   steps: success and mode shares against the demonstrations'; plan and act latency (torch on one
   thread, as warpd_planner runs it); training time from the checkpoint's metadata.
3. WARPD vs Diffusion Policy through `warpd eval`'s machinery: perturbation levels 0..1 at K=16 and
   K = 16..128 at levels 0 and 1, the same seeds and perturbation events for every method; FLOPs per
   control step. The episode table is resumable (runs/bench_panda/).

    .venv/bin/python -m bench.panda                    # 100 expert seeds, 100 eval episodes, 30 sweep seeds
    .venv/bin/python -m bench.panda --quick --out /tmp/panda.md
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench import warpd_eval
from bench.report import PLOTS, image_lines, machine_info, update_section
from warpd_core.eval.runner import expert_policy, run_episode
from warpd_core.eval.sweep import format_rate, run_sweep_to_csv, success_by
from warpd_core.policies.warpd.checkpoint import read_metadata
from warpd_core.tasks import make_task

TASK = "panda_reach_around"
WARPD = Path("checkpoints/panda_reach_around/checkpoint.safetensors")
DP = Path("checkpoints/dp_panda_reach_around/checkpoint.safetensors")
SWEEP_DIR = Path("runs/bench_panda")
SECTION = "panda"
K_REF = 16
TRAIN_GOAL_S = 30 * 60


# ---------------------------------------------------------------------------------------------- 1. expert
def expert_rows(seeds: int) -> list[dict]:
    rows = []
    for name in (TASK, f"{TASK}_position"):
        task = make_task(name)
        metrics, contacts = [], 0
        for seed in range(seeds):
            metrics.append(run_episode(task, expert_policy, seed)[0])
            contacts += task.contacts_with_pillar > 0
        ok = [m for m in metrics if m.success]
        modes = Counter(m.mode or "none" for m in metrics)
        rows.append({"task": name, "episodes": seeds, "success": len(ok) / seeds,
                     "steps": float(np.mean([m.steps for m in ok])) if ok else float("nan"),
                     "modes": modes, "contact_episodes": contacts})
        print(f"expert {name}: {100 * len(ok) / seeds:.0f}% success, modes {dict(modes)}, "
              f"{contacts} episodes touching the pillar", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------- 3. sweep
def sweep(args) -> tuple[list[dict], dict, list[str]]:
    """Rows of the episode table and the FLOPs of each learned method."""
    from warpd_core.commands import eval as eval_command
    from warpd_core.eval.flops import method_flops

    methods = ["expert", "warpd"] + (["dp"] if DP.is_file() else [])
    argv = ["--methods", ",".join(methods), "--checkpoint", f"warpd={WARPD}", "--checkpoint", f"dp={DP}",
            "--tasks", TASK, "--seeds", str(args.sweep_seeds)]
    if args.quick:
        argv += ["--levels", "0,1", "--horizons", f"{K_REF},128"]
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    eval_args = parser.parse_args(argv)
    plan = eval_command.build_plan(eval_args, eval_command.load_config(eval_command.DEFAULT_CONFIG))
    rows = run_sweep_to_csv(plan, args.sweep_dir, workers=args.workers)
    cost = {m.name: method_flops(m.checkpoint, TASK, steps=plan.steps, timing=False)
            for m in plan.methods if m.replans}
    return rows, cost, [m.name for m in plan.methods]


# ---------------------------------------------------------------------------------------------- report
def _modes(counts: Counter) -> str:
    n = max(1, sum(counts.values()))
    return ", ".join(f"{m} {100 * c / n:.0f}%" for m, c in sorted(counts.items()))


def _verdict(ok: bool | None) -> str:
    return "met" if ok else "MISSED" if ok is not None else "not measured"


def to_markdown(args, experts, evals, demo, lat, meta, rows, cost, names, picture, command) -> str:
    total = max(1, sum(demo.values()))
    demo_share = {m: n / total for m, n in demo.items()}
    lines = ["## Franka Panda: panda_reach_around", "",
             f"`{command}` on {machine_info()}. Franka's Panda MJCF and meshes from the gymnasium-robotics wheel, "
             "7 joints (`panda_joint1..7`); the hand must reach a goal behind a pillar round its near or far side "
             "(`warpd_core/tasks/panda_reach_around.py`). Velocity interface unless named `_position`.", "",
             "### Scripted expert (differential IK)", "",
             "| task | episodes | success % | mean steps to success | modes | episodes touching the pillar |",
             "|---|---:|---:|---:|---|---:|"]
    for r in experts:
        lines.append(f"| {r['task']} | {r['episodes']} | {100 * r['success']:.1f} | {r['steps']:.1f} | "
                     f"{_modes(r['modes'])} | {r['contact_episodes']} |")
    both = all(len([m for m in r["modes"] if m in ("near", "far")]) == 2 for r in experts)
    lines += ["", f"- Expert ≥ 95% over {experts[0]['episodes']} seeds with both modes used, on both interfaces: "
              + ", ".join(f"{100 * r['success']:.0f}%" for r in experts)
              + f" — **{_verdict(all(r['success'] >= 0.95 for r in experts) and both)}**"]
    lines += ["", "### The shipped checkpoint", "",
              f"`{WARPD}`; evaluation seeds {warpd_eval.EVAL_SEED}..{warpd_eval.EVAL_SEED + args.episodes - 1} "
              f"(training used 0..{total - 1}); no perturbation.", "",
              *warpd_eval.horizon_table(evals, demo)]
    k16 = evals[0]
    n16 = max(1, sum(k16["modes"].values()))
    gap16 = max(abs(k16["modes"].get(m, 0) / n16 - s) for m, s in demo_share.items()) if demo_share else None
    size_mb = WARPD.stat().st_size / 1e6
    extra = meta.get("extra", {})
    lines += ["", f"Demonstrations: {_modes(demo) or 'dataset not found'}.", "",
              f"- ≥ 90% success at K=16 on unseen seeds: {100 * k16['success']:.1f}% — "
              f"**{_verdict(k16['success'] >= 0.9)}**",
              "- Modes within ±15 points of the demonstrations at K=16: largest gap "
              + (f"{100 * gap16:.0f} points — **{_verdict(gap16 <= 0.15)}**" if gap16 is not None
                 else "not measured (dataset not found)"),
              f"- Checkpoint size {size_mb:.1f} MB — ≤ 20 MB **{_verdict(size_mb <= 20)}**",
              f"- One plan ({lat['steps']} {lat['sampler']} steps + decode, torch on 1 thread): {lat['plan_ms'][0]:.1f} ms median, "
              f"{lat['plan_ms'][1]:.1f} ms p95; generated policy select_action {lat['act_us'][0]:.1f} µs median"]
    if "train_seconds" in extra:
        t = extra["train_seconds"]
        total_s = t["stage1"] + t["stage2"]
        lines.append(f"- Training time recorded by `warpd train --config config/train_panda_reach_around.yaml`: "
                     f"stage 1 {t['stage1'] / 60:.1f} min, stage 2 {t['stage2'] / 60:.1f} min, total "
                     f"{total_s / 60:.1f} min on 2 CPU cores (data collection excluded; the machine was shared with "
                     f"other jobs) — target ≤ 30 min **{_verdict(total_s <= TRAIN_GOAL_S)}**")
    else:
        lines.append("- Training time: not in the checkpoint's metadata — **not measured**")
    lines += image_lines("panda_reach_around: WARPD success and modes by K", picture)
    levels = sorted({r["level"] for r in rows})
    horizons = sorted({r["horizon"] for r in rows if r["horizon"] is not None})
    by = success_by(rows, "method", "horizon", "level")

    def cell(key):
        s, n = by.get(key, (0, 0))
        return format_rate(s, n)

    seeds = sorted({r["seed"] for r in rows})
    lines += ["", "### WARPD vs Diffusion Policy", "",
              f"Through `warpd eval`: {len(seeds)} seeds per point ({seeds[0]}..{seeds[-1]}), perturbations "
              "`config/perturbations.yaml` scaled by the level, the same seeds and events for every method; success % "
              "with its 95% Wilson interval. `dp`: `config/train_dp_panda_reach_around.yaml` (the CPU-sized U-Net of "
              "dp_reach_around, 2000 steps on the same demonstrations)."
              + ("" if "dp" in names else f" **dp not evaluated**: no checkpoint at `{DP}`."), "",
              "| method | " + " | ".join(f"level {lv:g}" for lv in levels) + " |", "|---|" + "---:|" * len(levels)]
    for name in names:
        k = None if name == "expert" else K_REF
        lines.append(f"| {name} (K={k or '–'}) | " + " | ".join(cell((name, k, lv)) for lv in levels) + " |")
    lines += ["", "| method | level | " + " | ".join(f"K={k}" for k in horizons) + " |",
              "|---|---:|" + "---:|" * len(horizons)]
    for name in (n for n in names if n != "expert"):
        for lv in (levels[0], levels[-1]):
            lines.append(f"| {name} | {lv:g} | " + " | ".join(cell((name, k, lv)) for k in horizons) + " |")
    if cost:
        lines += ["", "| method | plan FLOPs | step FLOPs | " + " | ".join(f"FLOPs/step K={k}" for k in horizons) + " |",
                  "|---|---:|---:|" + "---:|" * len(horizons)]
        for name, c in cost.items():
            lines.append(f"| {name} | {c.planner_flops:,} | {c.step_flops:,} | "
                         + " | ".join(f"{c.flops_per_step(k):,.0f}" for k in horizons) + " |")
        if "dp" in cost and "warpd" in cost:
            lines += ["", "dp / WARPD FLOPs per control step at the same K: "
                      + ", ".join(f"K={k}: {cost['dp'].flops_per_step(k) / cost['warpd'].flops_per_step(k):.1f}×"
                                  for k in horizons) + "."]
    return "\n".join(lines)


def plot(evals, demo, path: Path) -> Path:
    return warpd_eval.plot(evals, demo, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expert-seeds", type=int, default=100, help="expert episodes per interface (default 100)")
    parser.add_argument("--episodes", type=int, default=100, help="checkpoint episodes per K (default 100)")
    parser.add_argument("--sweep-seeds", type=int, default=30, help="sweep seeds per point (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--sweep-dir", type=Path, default=SWEEP_DIR, help=f"episode table (default {SWEEP_DIR})")
    parser.add_argument("--quick", action="store_true", help="a few seeds, 2 levels, 2 horizons (smoke test)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plot)")
    args = parser.parse_args(argv)
    if args.quick:
        args.expert_seeds, args.episodes, args.sweep_seeds = 2, 2, 2
        args.sweep_dir = Path(tempfile.mkdtemp(prefix="bench_panda_quick_"))
    if not WARPD.is_file():
        print(f"no checkpoint at {WARPD}: `warpd train --config config/train_panda_reach_around.yaml` first",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    experts = expert_rows(args.expert_seeds)
    meta = read_metadata(WARPD)
    lat = warpd_eval.latency(WARPD, TASK, 50 if args.quick else 200)
    evals = warpd_eval.success_by_horizon(WARPD, TASK, args.episodes, args.workers)
    demo = warpd_eval.demo_modes(WARPD)
    rows, cost, names = sweep(args)
    picture = plot(evals, demo, PLOTS / "panda_eval.png") if args.out is None else None
    command = "python -m bench.panda" + (" --quick" if args.quick else "")
    body = to_markdown(args, experts, evals, demo, lat, meta, rows, cost, names, picture, command)
    print(body)
    written = update_section(SECTION, body, **({"path": args.out} if args.out else {}))
    print(f"wrote {written} in {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
